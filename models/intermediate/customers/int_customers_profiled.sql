{#-
    One row per known customer: every loyalty profile and every customer id with a
    purchase up to the as-of date (a purchase may carry an id the customers table
    lacks, and a member may never have bought). The customers table is optional:
    without it every profile column is null.
-#}
with

profiles as (
    select * from {{ ref('stg_pos__customers') }}
),

summary as (
    select * from {{ ref('int_customers_summarised') }}
),

customer_ids as (
    select customer_id from profiles
    union
    select customer_id from summary
),

final as (
    select
        customer_ids.customer_id,
        profiles.customer_id is not null as has_profile,
        summary.customer_id is not null as has_purchase,
        profiles.household_size,
        profiles.distance_km,
        profiles.joined_at
    from customer_ids
    left join profiles
        on customer_ids.customer_id = profiles.customer_id
    left join summary
        on customer_ids.customer_id = summary.customer_id
)

select * from final
