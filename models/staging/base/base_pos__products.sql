{#- Every raw product row, cast and checked; see base_pos__transactions. -#}
{%- set columns = {
    "product_id": "text",
    "product_name": "text",
    "category": "text",
    "size_class": "text",
    "unit_cost": "double",
    "is_merchandise": dbt.type_boolean(),
} -%}

with

source as (
    {{ raw_source('pos', 'products') }}
),

typed as (
    select {{ typed_and_raw_columns(columns) }}
    from source
),

row_checked as (
    select
        typed.*,
        case
            when product_id is null then 'missing_product_id'
            when category is null then 'missing_category'
            when upper(size_class) not in ('LARGE', 'SMALL') then 'invalid_size_class'
            {{ unparseable('unit_cost') }}
            when unit_cost < 0 then 'negative_unit_cost'
            {{ unparseable('is_merchandise') }}
        end as row_rejection_reason
    from typed
),

ranked as (
    select
        row_checked.*,
        row_number() over (
            partition by product_id, row_rejection_reason is null
            order by {{ raw_column_list(columns) }}
        ) as key_rank,
        -- Identifies the raw row: identical rows are interchangeable, so ordering by
        -- every raw value numbers them deterministically.
        row_number() over (order by {{ raw_column_list(columns) }}) as raw_row_id
    from row_checked
),

final as (
    select
        raw_row_id,
        {{ checked_columns(columns) }},
        case
            when row_rejection_reason is not null then row_rejection_reason
            when key_rank > 1 then 'duplicate_product_id'
        end as rejection_reason
    from ranked
)

select * from final
