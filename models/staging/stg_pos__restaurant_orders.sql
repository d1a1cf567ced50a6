with

checked as (
    select * from {{ ref('base_pos__restaurant_orders') }}
),

final as (
    select
        restaurant_order_id,
        store_id,
        customer_id,
        ordered_at,
        cast(ordered_at as date) as ordered_date,
        amount
    from checked
    where rejection_reason is null
)

select * from final
