{#-
    Every raw transaction line, cast and checked. rejection_reason is the first
    failing check in the order below, or null for a clean line. stg_pos__transactions
    keeps the clean lines, quarantine_pos__transactions the rest: together they
    hold every raw row exactly once.
-#}
{%- set columns = {
    "receipt_id": "text",
    "line_number": dbt.type_int(),
    "store_id": "text",
    "customer_id": "text",
    "product_id": "text",
    "quantity": dbt.type_int(),
    "unit_price": "double",
    "sold_at": dbt.type_timestamp(),
    "campaign_id": "text",
} -%}

with

source as (
    {{ raw_source('pos', 'transactions') }}
),

products as (
    select product_id from {{ ref('stg_pos__products') }}
),

typed as (
    select {{ typed_and_raw_columns(columns) }}
    from source
),

row_checked as (
    select
        typed.*,
        case
            when receipt_id is null then 'missing_receipt_id'
            {{ missing_or_unparseable('line_number') }}
            when store_id is null then 'missing_store_id'
            when product_id is null then 'missing_product_id'
            {{ missing_or_unparseable('quantity') }}
            when quantity = 0 then 'zero_quantity'
            {{ missing_or_unparseable('unit_price') }}
            when unit_price <= 0 then 'non_positive_unit_price'
            {{ missing_or_unparseable('sold_at') }}
            {{ out_of_range('sold_at') }}
        end as row_rejection_reason
    from typed
),

product_checked as (
    select
        row_checked.*,
        case
            when row_checked.row_rejection_reason is not null
                then row_checked.row_rejection_reason
            when products.product_id is null then 'unknown_product'
        end as line_rejection_reason
    from row_checked
    left join products
        on row_checked.product_id = products.product_id
),

-- Among lines that passed every other check, the first copy of a key is kept;
-- ordering by every raw value makes the choice deterministic.
ranked as (
    select
        product_checked.*,
        row_number() over (
            partition by receipt_id, line_number, line_rejection_reason is null
            order by {{ raw_column_list(columns) }}
        ) as key_rank,
        -- Identifies the raw row: identical rows are interchangeable, so ordering by
        -- every raw value numbers them deterministically.
        row_number() over (order by {{ raw_column_list(columns) }}) as raw_row_id
    from product_checked
),

final as (
    select
        raw_row_id,
        {{ checked_columns(columns) }},
        case
            when line_rejection_reason is not null then line_rejection_reason
            when key_rank > 1 then 'duplicate_line'
        end as rejection_reason
    from ranked
)

select * from final
