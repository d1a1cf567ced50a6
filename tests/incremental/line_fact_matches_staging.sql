{#-
    The incremental line fact holds, day by day, exactly what a full refresh would: the
    staged lines with their products' current attributes. Compares a row count and a
    checksum per day; returns the days that differ. A failure means raw lines arrived
    for a day older than the reload window, raw history was rewritten or product
    attributes changed since the last full build: run `dbt build --full-refresh`.
-#}
with

lines as (
    select * from {{ ref('stg_pos__transactions') }}
),

products as (
    select * from {{ ref('int_products_classified') }}
),

fact as (
    select * from {{ ref('int_transaction_lines_enriched') }}
),

expected as (
    select
        lines.sold_date,
        count(*) as line_count,
        sum(hash(
            lines.receipt_key, lines.line_number, lines.product_id, lines.quantity,
            lines.unit_price, lines.sold_at, products.category, products.size_class,
            products.is_merchandise, products.is_impulse,
            {{ money("lines.quantity * products.unit_cost") }}
        )) as checksum
    from lines
    inner join products
        on lines.product_id = products.product_id
    group by lines.sold_date
),

loaded as (
    select
        sold_date,
        count(*) as line_count,
        sum(hash(
            receipt_key, line_number, product_id, quantity, unit_price, sold_at, category,
            size_class, is_merchandise, is_impulse, cost
        )) as checksum
    from fact
    group by sold_date
),

final as (
    select
        coalesce(expected.sold_date, loaded.sold_date) as sold_date,
        expected.line_count as expected_line_count,
        loaded.line_count as loaded_line_count
    from expected
    full outer join loaded
        on expected.sold_date = loaded.sold_date
    where
        expected.line_count is distinct from loaded.line_count
        or expected.checksum is distinct from loaded.checksum
)

select * from final
