{#-
    One row per member with a purchase up to the as-of date: the RFM inputs and the
    BG/NBD / Gamma-Gamma summary in days, plus behaviour features
    for segmentation. xsell.ml.clv.summarise_transactions is the pandas reference of
    the BG/NBD columns; a test holds the two equal.
-#}
with

customer_days as (
    select * from {{ ref('int_customer_days_aggregated') }}
),

first_days as (
    select
        customer_id,
        min(sold_date) as first_purchase_date
    from customer_days
    group by customer_id
),

days_flagged as (
    select
        customer_days.*,
        first_days.first_purchase_date,
        customer_days.sold_date > first_days.first_purchase_date as is_repeat_day
    from customer_days
    inner join first_days
        on customer_days.customer_id = first_days.customer_id
),

aggregated as (
    select
        customer_id,
        max(as_of_date) as as_of_date,
        min(first_purchase_date) as first_purchase_date,
        max(sold_date) as last_purchase_date,
        sum(receipts) as purchase_receipts,
        count(*) as purchase_days,
        sum(revenue) as revenue,
        sum(item_count) as item_count,
        sum(anchor_receipts) as anchor_receipts,
        sum(anchor_revenue) as anchor_revenue,
        sum(case when is_repeat_day then revenue when revenue is not null then 0 end)
            as repeat_revenue
    from days_flagged
    group by customer_id
),

final as (
    select
        customer_id,
        as_of_date,
        first_purchase_date,
        last_purchase_date,
        cast({{ dbt.datediff('last_purchase_date', 'as_of_date', 'day') }} as integer)  -- noqa: LT05
            as recency_days,
        cast({{ dbt.datediff('first_purchase_date', 'as_of_date', 'day') }} as integer)  -- noqa: LT05
            as tenure_days,
        cast(purchase_receipts as bigint) as purchase_receipts,
        cast(purchase_days as bigint) as purchase_days,
        cast(revenue as double) as revenue,
        cast(revenue as double) / purchase_receipts as avg_order_value,
        cast(item_count as double) / purchase_receipts as items_per_receipt,
        cast(anchor_receipts as double) / purchase_receipts as anchor_receipt_share,
        case
            when revenue > 0 then cast(anchor_revenue as double) / revenue
            when revenue is not null then 0
        end as anchor_revenue_share,
        cast(purchase_days - 1 as bigint) as repeat_purchase_days,
        cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} as integer)  -- noqa: LT05
            as purchase_span_days,
        case
            when purchase_days > 1 then cast(repeat_revenue as double) / (purchase_days - 1)
            when revenue is not null then 0
        end as repeat_day_value
    from aggregated
)

select * from final
