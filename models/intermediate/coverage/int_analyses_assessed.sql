{#-
    One row per analysis and scope: whether the data can support it and, when not,
    why, in a retailer's words (the rules of macro analysis_rules, evaluated on
    int_data_profiled). The revenue forecast is assessed per store (store_id); every
    other analysis covers all stores (store_id = 'ALL'). The models of an analysis
    return no rows when it is not applicable (macro analysis_is_applicable).
-#}
{%- set rules = xsell.analysis_rules() -%}
{%- set min_days = var("forecast_min_history_days") | int -%}
{%- set min_share = var("forecast_min_active_share") | float -%}

with

profile as (
    select * from {{ ref('int_data_profiled') }}
),

store_days as (
    select * from {{ ref('int_store_days_aggregated') }}
),

whole_store as (
    {%- for rule in rules %}
    select
        '{{ rule.analysis }}' as analysis,
        'ALL' as store_id,
        case
            {%- for need in rule.needs %}
            when not ({{ need[0] }}) then {{ need[1] }}
            {%- endfor %}
        end as reason
    from profile as p
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

-- The forecast of a store: its days from its first sale to the last day of the data,
-- and the share of them with sales (xsell.ml.forecast)
store_history as (
    select
        store_days.store_id,
        {{ dbt.datediff("min(store_days.sold_date)", "max(p.last_sold_date)", "day") }} + 1  -- noqa: LT05
            as history_days,
        sum(case when store_days.revenue > 0 then 1 else 0 end) as active_days,
        max(p.priced_line_count) as priced_line_count
    from store_days
    cross join profile as p
    group by store_days.store_id
),

per_store as (
    select
        'revenue_forecast' as analysis,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        case
            when priced_line_count = 0
                then 'the data has no prices (unit_price is empty on every line)'
            when history_days < {{ min_days }}
                then {{ xsell.coverage_text([
                    "'the store has '", xsell.coverage_count("history_days", "day", "days"),
                    "' of history; the forecast needs " ~ min_days
                    ~ " (var forecast_min_history_days)'",
                ]) }}
            when active_days < {{ min_share }} * history_days
                then {{ xsell.coverage_text([
                    "'the store sold on '", "active_days", "' of its '", "history_days",
                    "' days; the forecast needs sales on " ~ (min_share * 100) | round | int
                    ~ " % of them (var forecast_min_active_share)'",
                ]) }}
        end as reason
    from store_history
),

final as (
    select
        analysis,
        store_id,
        reason is null as is_applicable,
        reason
    from whole_store
    union all
    select
        analysis,
        store_id,
        reason is null as is_applicable,
        reason
    from per_store
)

select * from final
