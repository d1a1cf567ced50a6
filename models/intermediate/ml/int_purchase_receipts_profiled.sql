{{ config(materialized="table") }}
{#-
    Every purchase receipt (members and anonymous) with the member's profile: the one
    receipt-level input of the ML intermediates, so the receipts are read once. A table,
    as five models read it.
-#}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
    where is_purchase
),

customers as (
    select * from {{ ref('stg_pos__customers') }}
),

final as (
    select
        receipts.receipt_key,
        receipts.receipt_id,
        receipts.customer_id,
        receipts.store_id,
        receipts.is_member,
        receipts.sold_at,
        receipts.sold_date,
        receipts.sold_hour,
        receipts.sold_weekday,
        receipts.revenue,
        receipts.item_count,
        receipts.addon_line_count,
        receipts.anchor_line_count,
        receipts.has_anchor,
        coalesce(receipts.anchor_families, '') as anchor_families,
        customers.household_size,
        customers.distance_km
    from receipts
    left join customers
        on receipts.customer_id = customers.customer_id
)

select * from final
