{#-
    Per RFM segment (every segment of the map, plus Others): customers, revenue,
    average order value, revenue at risk and opportunity gap, and the BG/NBD + Gamma-
    Gamma expected value of the segment's customers. Definitions in the doc blocks
    revenue_at_risk and opportunity_gap.
-#}
{%- set no_value = "0" if python_models_enabled() else "null" -%}

with

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

segment_map as (
    select * from {{ ref('rfm_segment_map') }}
),

-- From a dbt Python model; with those off (var python_models, e.g. on Spark) the
-- expected_* columns are null rather than 0.
lifetime_value as (
    {{ python_model_or_empty('ml_customer_lifetime_value', {
        "customer_id": dbt.type_string(),
        "expected_spend": "double",
        "expected_discounted_value": "double",
    }) }}
),

segments as (
    select
        rfm_segment,
        priority,
        is_lapsing
    from segment_map
    union all
    select
        'Others' as rfm_segment,
        cast(null as integer) as priority,
        false as is_lapsing
    from (select 1 as one) as single_row
    where 'Others' not in (select segment_map.rfm_segment from segment_map)
),

by_segment as (
    select
        rfm.rfm_segment,
        count(*) as customers,
        sum(rfm.frequency) as purchase_receipts,
        sum(rfm.monetary) as revenue,
        sum(lifetime_value.expected_spend) as expected_spend,
        sum(lifetime_value.expected_discounted_value) as expected_discounted_value
    from rfm
    left join lifetime_value
        on rfm.customer_id = lifetime_value.customer_id
    group by rfm.rfm_segment
),

filled as (
    select
        segments.rfm_segment,
        segments.priority,
        segments.is_lapsing,
        coalesce(by_segment.customers, 0) as customers,
        coalesce(by_segment.purchase_receipts, 0) as purchase_receipts,
        coalesce(by_segment.revenue, 0) as revenue,
        coalesce(by_segment.expected_spend, {{ no_value }}) as expected_spend,
        coalesce(by_segment.expected_discounted_value, {{ no_value }})
            as expected_discounted_value
    from segments
    left join by_segment
        on segments.rfm_segment = by_segment.rfm_segment
),

totals as (
    select
        sum(customers) as all_customers,
        sum(revenue) as all_revenue
    from filled
),

benchmark as (
    select max(cast(revenue as double) / nullif(customers, 0)) as revenue_per_customer
    from filled
    where rfm_segment = '{{ var("rfm_benchmark_segment") | replace("'", "''") }}'
),

final as (
    select
        cast(filled.rfm_segment as {{ dbt.type_string() }}) as rfm_segment,
        cast(filled.priority as integer) as segment_priority,
        cast(filled.is_lapsing as boolean) as is_lapsing,
        cast(filled.customers as bigint) as customers,
        cast(filled.customers as double) / nullif(totals.all_customers, 0) as customer_share,
        cast(filled.purchase_receipts as bigint) as purchase_receipts,
        cast(filled.revenue as double) as revenue,
        cast(filled.revenue as double) / nullif(totals.all_revenue, 0) as revenue_share,
        cast(filled.revenue as double) / nullif(filled.purchase_receipts, 0) as avg_order_value,
        cast(filled.revenue as double) / nullif(filled.customers, 0) as revenue_per_customer,
        case
            when filled.is_lapsing then cast(filled.revenue as double) else 0
        end as revenue_at_risk,
        case
            when filled.is_lapsing or filled.customers = 0 then 0
            else greatest(
                coalesce(benchmark.revenue_per_customer, 0)
                - cast(filled.revenue as double) / filled.customers,
                0
            ) * filled.customers
        end as opportunity_gap,
        cast(filled.expected_spend as double) as expected_spend,
        cast(filled.expected_discounted_value as double) as expected_discounted_value
    from filled
    cross join totals
    cross join benchmark
)

select * from final
where {{ analysis_is_applicable('revenue_at_risk') }}
