{#-
    One row per known customer: every loyalty profile and every customer id with a
    purchase up to the as-of date (a purchase may carry an id the customers table
    lacks, and a member may never have bought). The customers table is optional:
    without it every profile column is null.

    The buyers come straight from the member orders (the customers int_customers_summarised
    summarises), not from the summary: two models fewer upstream, so dbt schedules the
    models reading this one (ml_recommendations, the longest) earlier.
-#}
with

profiles as (
    select * from {{ ref('stg_pos__customers') }}
),

orders as (
    select * from {{ ref('int_customer_orders_filtered') }}
),

buyers as (
    select distinct customer_id from orders
),

customer_ids as (
    select customer_id from profiles
    union
    select customer_id from buyers
),

final as (
    select
        customer_ids.customer_id,
        profiles.customer_id is not null as has_profile,
        buyers.customer_id is not null as has_purchase,
        profiles.household_size,
        profiles.distance_km,
        profiles.joined_at
    from customer_ids
    left join profiles
        on customer_ids.customer_id = profiles.customer_id
    left join buyers
        on customer_ids.customer_id = buyers.customer_id
)

select * from final
