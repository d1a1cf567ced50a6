{#-
    The calendar: one row per day from the first day of the data (receipt lines and
    restaurant orders) to the last day plus the revenue forecast's horizon
    (var forecast_horizon_days). Weekday, ISO week and year, month and quarter, and the
    holidays exactly as the revenue forecast uses them (macro holiday_dates, the rule of
    xsell.ml.forecast.holiday_calendar). It is also MetricFlow's time spine. Empty
    without data.
-#}
with

profile as (
    select * from {{ ref('int_data_profiled') }}
),

restaurant as (
    select * from {{ ref('int_restaurant_orders_aggregated') }}
),

data_days as (
    select
        first_sold_date as first_day,
        last_sold_date as last_day
    from profile
    union all
    select
        min(ordered_date) as first_day,
        max(ordered_date) as last_day
    from restaurant
),

bounds as (
    select
        min(first_day) as first_day,
        max(last_day) as last_day,
        cast(
            {{ dbt.dateadd("day", var("forecast_horizon_days") | int, "max(last_day)") }}
            as date
        ) as horizon_last_day
    from data_days
),

days as (
    {{ day_series("first_day", "horizon_last_day", "bounds") }}
),

weekdays as (
    select
        days.date_day,
        {{ iso_weekday("days.date_day") }} as iso_weekday,
        days.date_day > bounds.last_day as is_forecast_horizon
    from days
    cross join bounds
),

-- ISO 8601: a week belongs to the year of its Thursday, and is numbered from the week
-- holding that year's first Thursday
thursdays as (
    select
        weekdays.*,
        cast({{ dbt.dateadd("day", "4 - iso_weekday", "date_day") }} as date) as week_thursday,
        cast({{ dbt.dateadd("day", "1 - iso_weekday", "date_day") }} as date) as week_start_date
    from weekdays
),

years as (
    select distinct cast(extract(year from date_day) as integer) as year
    from days
),

holidays as (
    {{ holiday_dates("years") }}
),

final as (
    select
        thursdays.date_day,
        cast(extract(year from thursdays.date_day) as integer) as year,
        cast(extract(quarter from thursdays.date_day) as integer) as quarter,
        cast(extract(month from thursdays.date_day) as integer) as month,
        cast(case cast(extract(month from thursdays.date_day) as integer)
            {%- for name in ["January", "February", "March", "April", "May", "June", "July",
                             "August", "September", "October", "November", "December"] %}
            when {{ loop.index }} then '{{ name }}'
            {%- endfor %}
        end as {{ dbt.type_string() }}) as month_name,
        cast({{ dbt.date_trunc("month", "thursdays.date_day") }} as date) as month_start_date,
        cast(extract(year from thursdays.week_thursday) as integer) as iso_year,
        cast(
            {{ floor_div("extract(doy from thursdays.week_thursday) - 1", 7) }} + 1 as integer
        ) as iso_week,
        thursdays.week_start_date,
        cast(thursdays.iso_weekday as integer) as iso_weekday,
        cast(case cast(thursdays.iso_weekday as integer)
            {%- for name in ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                             "Sunday"] %}
            when {{ loop.index }} then '{{ name }}'
            {%- endfor %}
        end as {{ dbt.type_string() }}) as weekday_name,
        thursdays.iso_weekday >= 6 as is_weekend,
        holidays.holiday_date is not null as is_holiday,
        holidays.holiday_name,
        thursdays.is_forecast_horizon
    from thursdays
    left join holidays
        on thursdays.date_day = holidays.holiday_date
)

select * from final
