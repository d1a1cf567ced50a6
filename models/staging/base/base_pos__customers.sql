{#- Every raw loyalty-member row, cast and checked; see base_pos__transactions. -#}
{%- set columns = {
    "customer_id": "text",
    "household_size": dbt.type_int(),
    "distance_km": "double",
    "joined_at": dbt.type_timestamp(),
} -%}

with

source as (
    {{ raw_source('pos', 'customers') }}
),

typed as (
    select
        raw_row_number as raw_row_id,
        {{ typed_and_raw_columns(columns) }}
    from source
),

row_checked as (
    select
        typed.*,
        case
            when customer_id is null then 'missing_customer_id'
            {{ optional_value('household_size', columns) }}
            when household_size < 1 then 'invalid_household_size'
            {{ optional_value('distance_km', columns) }}
            when distance_km < 0 then 'negative_distance_km'
            {{ optional_value('joined_at', columns) }}
        end as row_rejection_reason
    from typed
),

-- The first row of a member in the raw file is kept; later ones are duplicates.
ranked as (
    select
        row_checked.*,
        row_number() over (
            partition by customer_id, row_rejection_reason is null
            order by raw_row_id
        ) as key_rank
    from row_checked
),

final as (
    select
        raw_row_id,
        {{ checked_columns(columns) }},
        case
            when row_rejection_reason is not null then row_rejection_reason
            when key_rank > 1 then 'duplicate_customer_id'
        end as rejection_reason
    from ranked
)

select * from final
