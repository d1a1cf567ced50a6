{#-
    One row per member and purchase day: the unit the BG/NBD model counts (several
    receipts on one day are one purchase), and what the Python models read to
    summarise customers at any cutoff.
-#}
with

orders as (
    select * from {{ ref('int_customer_orders_filtered') }}
),

final as (
    select
        customer_id,
        sold_date,
        cast(count(*) as bigint) as receipts,
        cast(sum(item_count) as bigint) as item_count,
        cast(sum(case when has_anchor then 1 else 0 end) as bigint) as anchor_receipts,
        sum(revenue) as revenue,
        sum(anchor_revenue) as anchor_revenue,
        max(as_of_date) as as_of_date
    from orders
    group by customer_id, sold_date
)

select * from final
