{#-
    One row per known customer: every loyalty profile and every customer id on a
    receipt line (the line and receipt facts reference them all: ids that only return
    goods, or only buy after the as-of date, have has_purchase false). Profile columns
    are null for ids without a profile; purchase, RFM, lifetime-value and segment
    columns are null for customers without a purchase up to the as-of date.
-#}
with

profiled as (
    select * from {{ ref('int_customers_profiled') }}
),

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
),

-- customer ids on lines but without a purchase up to the as-of date
other_ids as (
    select distinct lines.customer_id
    from lines
    left join profiled
        on lines.customer_id = profiled.customer_id
    where lines.customer_id is not null
        and profiled.customer_id is null
),

customers as (
    select * from profiled
    union all
    select
        customer_id,
        false as has_profile,
        false as has_purchase,
        cast(null as integer) as household_size,
        cast(null as double) as distance_km,
        cast(null as {{ dbt.type_timestamp() }}) as joined_at
    from other_ids
),

summary as (
    select * from {{ ref('int_customers_summarised') }}
),

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

-- The ML columns come from dbt Python models; with those off (var python_models, e.g.
-- on Spark) they are null.
lifetime_value as (
    {{ python_model_or_empty('ml_customer_lifetime_value', {
        "customer_id": dbt.type_string(),
        "probability_alive": "double",
        "expected_purchases": "double",
        "expected_spend": "double",
        "expected_discounted_value": "double",
    }) }}
),

segments as (
    {{ python_model_or_empty('ml_customer_segments', {
        "customer_id": dbt.type_string(),
        "segment_id": "integer",
        "segment_name": dbt.type_string(),
    }) }}
),

final as (
    select
        cast(customers.customer_id as {{ dbt.type_string() }}) as customer_id,
        customers.has_profile,
        customers.has_purchase,
        customers.household_size,
        customers.distance_km,
        customers.joined_at,
        summary.first_purchase_date,
        summary.last_purchase_date,
        summary.purchase_receipts,
        summary.purchase_days,
        summary.revenue,
        summary.avg_order_value,
        summary.anchor_receipt_share,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,
        rfm.rfm_cell,
        rfm.rfm_segment,
        lifetime_value.probability_alive,
        lifetime_value.expected_purchases,
        lifetime_value.expected_spend,
        lifetime_value.expected_discounted_value as lifetime_value,
        cast(segments.segment_id as integer) as ml_segment_id,
        cast(segments.segment_name as {{ dbt.type_string() }}) as ml_segment_name
    from customers
    left join summary
        on customers.customer_id = summary.customer_id
    left join rfm
        on customers.customer_id = rfm.customer_id
    left join lifetime_value
        on customers.customer_id = lifetime_value.customer_id
    left join segments
        on customers.customer_id = segments.customer_id
)

select * from final
where {{ analysis_is_applicable('customer_profiles') }}
