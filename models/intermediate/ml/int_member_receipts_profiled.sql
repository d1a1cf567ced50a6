{#-
    Member purchase receipts with what the restaurant model may know at checkout: the
    basket, the member's profile and the moment, and the label: a restaurant visit of
    the member in the same store on the same day ({{ doc("restaurant_conversion") }}).
-#}
with

receipts as (
    select * from {{ ref('int_purchase_receipts_profiled') }}
    where is_member
),

visits as (
    select * from {{ ref('int_receipts_restaurant_matched') }}
),

final as (
    select
        receipts.receipt_id,
        receipts.customer_id,
        receipts.store_id,
        receipts.sold_at,
        receipts.sold_date,
        receipts.sold_hour,
        receipts.sold_weekday,
        receipts.revenue,
        receipts.item_count,
        receipts.addon_line_count,
        receipts.anchor_line_count,
        receipts.has_anchor,
        receipts.anchor_families,
        receipts.household_size,
        receipts.distance_km,
        coalesce(visits.has_restaurant_visit, false) as has_restaurant_visit
    from receipts
    left join visits
        on receipts.receipt_key = visits.receipt_key
)

select * from final
