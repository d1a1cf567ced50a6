with

checked as (
    select * from {{ ref('base_pos__customers') }}
),

final as (
    select
        customer_id,
        household_size,
        distance_km,
        joined_at,
        cast(joined_at as date) as joined_date
    from checked
    where rejection_reason is null
)

select * from final
