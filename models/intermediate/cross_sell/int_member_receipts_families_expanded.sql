{#-
    Member purchase receipts with their restaurant match (int_receipts_restaurant_matched),
    one row per receipt and anchor family on it; NO_ANCHOR for a receipt without an
    anchor. What the restaurant conversion marts count per family.
-#}
with

matched as (
    select * from {{ ref('int_receipts_restaurant_matched') }}
),

anchors as (
    select
        receipt_key,
        anchor_family
    from {{ ref('int_anchor_receipts_attached') }}
),

final as (
    select
        coalesce(anchors.anchor_family, 'NO_ANCHOR') as anchor_family,
        matched.receipt_key,
        matched.receipt_id,
        matched.store_id,
        matched.sold_date,
        matched.has_restaurant_visit,
        matched.restaurant_amount,
        matched.minutes_from_checkout
    from matched
    left join anchors
        on matched.receipt_key = anchors.receipt_key
)

select * from final
