{#-
    One row per store that has a staged receipt line or a restaurant order: its first
    and last day with a sale, its selling days, and whether it has restaurant orders.
    The raw contract has no stores table, so these are the only store attributes.
-#}
with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
),

restaurant as (
    select * from {{ ref('int_restaurant_orders_aggregated') }}
),

store_lines as (
    select
        store_id,
        min(sold_date) as first_sale_date,
        max(sold_date) as last_sale_date,
        count(distinct sold_date) as selling_days
    from lines
    group by store_id
),

store_restaurant as (
    select
        store_id,
        sum(orders) as restaurant_orders
    from restaurant
    group by store_id
),

store_ids as (
    select store_id from store_lines
    union
    select store_id from store_restaurant
),

final as (
    select
        cast(store_ids.store_id as {{ dbt.type_string() }}) as store_id,
        store_lines.first_sale_date,
        store_lines.last_sale_date,
        cast(coalesce(store_lines.selling_days, 0) as bigint) as selling_days,
        coalesce(store_restaurant.restaurant_orders, 0) > 0 as has_restaurant
    from store_ids
    left join store_lines
        on store_ids.store_id = store_lines.store_id
    left join store_restaurant
        on store_ids.store_id = store_restaurant.store_id
)

select * from final
