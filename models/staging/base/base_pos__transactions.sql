{#-
    Every raw transaction line, cast and checked. rejection_reason is the first
    failing check in the order below, or null for a clean line. stg_pos__transactions
    keeps the clean lines, quarantine_pos__transactions the rest: together they
    hold every raw row exactly once.

    unit_price may be absent on every line (a store without prices: basket-only
    data); the lines are then kept with a null price. When any line has a price, a
    line without one is `missing_unit_price`.
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
    select
        raw_row_number as raw_row_id,
        {{ typed_and_raw_columns(columns) }}
    from source
),

price_presence as (
    select count(*) > 0 as has_prices
    from typed
    where {{ raw_present('unit_price') }}
),

priced as (
    select
        typed.*,
        price_presence.has_prices
    from typed
    cross join price_presence
),

row_checked as (
    select
        priced.*,
        case
            when receipt_id is null then 'missing_receipt_id'
            {{ required_value('line_number', columns) }}
            when store_id is null then 'missing_store_id'
            when product_id is null then 'missing_product_id'
            {{ required_value('quantity', columns) }}
            when quantity = 0 then 'zero_quantity'
            when has_prices and not {{ raw_present('unit_price') }}
                then 'missing_unit_price'
            {{ optional_value('unit_price', columns) }}
            when unit_price <= 0 then 'non_positive_unit_price'
            {{ required_value('sold_at', columns) }}
        end as row_rejection_reason
    from priced
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

-- A line is keyed by store, receipt and line number (receipt numbers may repeat across
-- stores). Among lines that passed every other check, the first in the raw file keeps
-- the key; later copies are duplicate_line.
ranked as (
    select
        product_checked.*,
        row_number() over (
            partition by store_id, receipt_id, line_number, line_rejection_reason is null
            order by raw_row_id
        ) as key_rank
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
