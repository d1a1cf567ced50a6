{#-
    Member purchase receipts with the restaurant visit of the same member in the same
    store on the same day, if any: {{ doc("restaurant_conversion") }}
    When there are several orders that day, the one closest to checkout is kept.
-#}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
    where is_purchase and is_member
),

orders as (
    select * from {{ ref('stg_pos__restaurant_orders') }}
    where customer_id is not null
),

matches as (
    select
        receipts.receipt_key,
        orders.restaurant_order_id,
        {{ money("orders.amount") }} as amount,
        {{ seconds_between("receipts.sold_at", "orders.ordered_at") }} / 60.0
            as minutes_from_checkout
    from receipts
    inner join orders
        on receipts.customer_id = orders.customer_id
        and receipts.store_id = orders.store_id
        and receipts.sold_date = orders.ordered_date
),

closest as (
    select
        matches.*,
        row_number() over (
            partition by receipt_key
            order by abs(minutes_from_checkout), restaurant_order_id
        ) as closeness_rank
    from matches
),

final as (
    select
        receipts.receipt_key,
        receipts.receipt_id,
        receipts.store_id,
        receipts.customer_id,
        receipts.sold_at,
        receipts.sold_date,
        receipts.has_anchor,
        receipts.anchor_families,
        closest.restaurant_order_id is not null as has_restaurant_visit,
        closest.restaurant_order_id,
        closest.amount as restaurant_amount,
        closest.minutes_from_checkout
    from receipts
    left join closest
        on receipts.receipt_key = closest.receipt_key
        and closest.closeness_rank = 1
)

select * from final
