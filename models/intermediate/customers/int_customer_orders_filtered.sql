{#-
    One row per purchase receipt of a loyalty member up to the customer-value as-of
    date (var rfm_as_of_date, default the last receipt date). Revenue is the receipt's purchase revenue
    (positive lines); returns are separate receipts and not orders. Anonymous receipts
    have no customer to attribute them to: fct_customer_coverage counts them.
-#}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
),

data_window as (
    {{ customer_value_as_of_date('receipts') }}
),

member_purchases as (
    select
        receipts.receipt_id,
        receipts.customer_id,
        receipts.store_id,
        receipts.sold_at,
        receipts.sold_date,
        receipts.item_count,
        receipts.has_anchor,
        receipts.revenue,
        receipts.anchor_revenue,
        receipts.addon_revenue,
        data_window.as_of_date
    from receipts
    cross join data_window
    where receipts.is_purchase
        and receipts.is_member
        and receipts.sold_date <= data_window.as_of_date
),

final as (
    select
        receipt_id,
        customer_id,
        store_id,
        sold_at,
        sold_date,
        cast(item_count as bigint) as item_count,
        has_anchor,
        revenue,
        anchor_revenue,
        addon_revenue,
        row_number() over (
            partition by customer_id order by sold_at, store_id, receipt_id
        ) as order_number,
        as_of_date
    from member_purchases
)

select * from final
