{#- Every raw restaurant receipt, cast and checked; see base_pos__transactions. -#}
{%- set columns = {
    "restaurant_order_id": "text",
    "store_id": "text",
    "customer_id": "text",
    "ordered_at": dbt.type_timestamp(),
    "amount": "double",
} -%}

with

source as (
    {{ raw_source('pos', 'restaurant_orders') }}
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
            when restaurant_order_id is null then 'missing_restaurant_order_id'
            when store_id is null then 'missing_store_id'
            {{ required_value('ordered_at', columns) }}
            {{ required_value('amount', columns) }}
            when amount <= 0 then 'non_positive_amount'
        end as row_rejection_reason
    from typed
),

-- The first row of an order in the raw file is kept; later ones are duplicates.
ranked as (
    select
        row_checked.*,
        row_number() over (
            partition by restaurant_order_id, row_rejection_reason is null
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
            when key_rank > 1 then 'duplicate_restaurant_order_id'
        end as rejection_reason
    from ranked
)

select * from final
