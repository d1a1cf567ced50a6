{#- Restaurant orders per store and day (all orders, members or not). -#}
with

orders as (
    select * from {{ ref('stg_pos__restaurant_orders') }}
),

final as (
    select
        store_id,
        ordered_date,
        count(*) as orders,
        sum({{ money("amount") }}) as revenue
    from orders
    group by store_id, ordered_date
)

select * from final
