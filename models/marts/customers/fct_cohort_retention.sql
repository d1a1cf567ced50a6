{#-
    Monthly acquisition cohorts of members by months since their first purchase.
    Definitions in the cohort_retention doc block.
-#}
with

orders as (
    select * from {{ ref('int_customer_orders_filtered') }}
),

summary as (
    select * from {{ ref('int_customers_summarised') }}
),

cohorts as (
    select
        {{ dbt.date_trunc('month', 'first_purchase_date') }} as cohort_month,
        count(*) as cohort_customers
    from summary
    group by 1
),

as_of as (
    select
        max(as_of_date) as as_of_date,
        {{ dbt.date_trunc('month', 'max(as_of_date)') }} as as_of_month
    from summary
),

-- Calendar months come from the orders themselves, so the grid needs no date spine;
-- a month without a single member purchase would be missing (and shows as a gap).
calendar_months as (
    select distinct {{ dbt.date_trunc('month', 'sold_date') }} as activity_month
    from orders
),

grid as (
    select
        cohorts.cohort_month,
        cohorts.cohort_customers,
        calendar_months.activity_month
    from cohorts
    inner join calendar_months
        on calendar_months.activity_month >= cohorts.cohort_month
),

activity as (
    select
        {{ dbt.date_trunc('month', 'summary.first_purchase_date') }} as cohort_month,
        {{ dbt.date_trunc('month', 'orders.sold_date') }} as activity_month,
        count(distinct orders.customer_id) as active_customers,
        count(*) as purchase_receipts,
        sum(orders.revenue) as revenue
    from orders
    inner join summary
        on orders.customer_id = summary.customer_id
    group by 1, 2
),

filled as (
    select
        grid.cohort_month,
        grid.activity_month,
        grid.cohort_customers,
        coalesce(activity.active_customers, 0) as active_customers,
        coalesce(activity.purchase_receipts, 0) as purchase_receipts,
        coalesce(activity.revenue, 0) as revenue
    from grid
    left join activity
        on grid.cohort_month = activity.cohort_month
        and grid.activity_month = activity.activity_month
),

final as (
    select
        cast(filled.cohort_month as date) as cohort_month,
        cast({{ dbt.datediff('filled.cohort_month', 'filled.activity_month', 'month') }} as integer)  -- noqa: LT05
            as months_since_first_purchase,
        cast(filled.activity_month as date) as activity_month,
        cast(filled.cohort_customers as bigint) as cohort_customers,
        cast(filled.active_customers as bigint) as active_customers,
        cast(filled.active_customers as double) / filled.cohort_customers as retention_rate,
        cast(filled.purchase_receipts as bigint) as purchase_receipts,
        cast(filled.revenue as double) as revenue,
        sum(cast(filled.revenue as double)) over (
            partition by filled.cohort_month
            order by filled.activity_month
            rows between unbounded preceding and current row
        ) / filled.cohort_customers as cumulative_revenue_per_customer,
        filled.activity_month = as_of.as_of_month
        and as_of.as_of_date < cast({{ dbt.last_day('as_of.as_of_month', 'month') }} as date)
            as is_partial_month
    from filled
    cross join as_of
)

select * from final
where {{ analysis_is_applicable('cohort_retention') }}
