{#-
    The incremental baskets (int_receipts_aggregated, int_basket_items) agree with the
    line fact they are built from: per receipt date, the receipts with their purchase,
    anchor and add-on line counts; overall, the basket items (count and checksum).
    Returns the days that differ (no day for the basket items); a failure means the
    baskets missed lines (see line_fact_matches_staging): run `dbt build --full-refresh`.
-#}
with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
),

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
),

basket_items as (
    select * from {{ ref('int_basket_items') }}
),

receipt_dates as (
    select
        receipt_key,
        min(sold_date) as sold_date,
        sum(case when quantity > 0 then 1 else 0 end) as line_count,
        sum(case when quantity > 0 and is_anchor then 1 else 0 end) as anchor_line_count,
        sum(case when quantity > 0 and is_addon then 1 else 0 end) as addon_line_count
    from lines
    group by receipt_key
),

expected_receipts as (
    select
        sold_date,
        count(*) as receipt_count,
        sum(hash(receipt_key, line_count, anchor_line_count, addon_line_count)) as checksum
    from receipt_dates
    group by sold_date
),

loaded_receipts as (
    select
        sold_date,
        count(*) as receipt_count,
        sum(hash(receipt_key, line_count, anchor_line_count, addon_line_count)) as checksum
    from receipts
    group by sold_date
),

expected_item_rows as (
    select distinct
        receipt_key as basket_id,
        'product' as item_level,
        product_id as item
    from lines
    where quantity > 0 and is_merchandise
    union all
    select distinct
        receipt_key as basket_id,
        'category' as item_level,
        category as item
    from lines
    where quantity > 0 and is_merchandise
),

expected_items as (
    select
        count(*) as item_count,
        sum(hash(basket_id, item_level, item)) as checksum
    from expected_item_rows
),

loaded_items as (
    select
        count(*) as item_count,
        sum(hash(basket_id, item_level, item)) as checksum
    from basket_items
),

differences as (
    select
        coalesce(expected_receipts.sold_date, loaded_receipts.sold_date) as sold_date,
        'int_receipts_aggregated' as model_name
    from expected_receipts
    full outer join loaded_receipts
        on expected_receipts.sold_date = loaded_receipts.sold_date
    where
        expected_receipts.receipt_count is distinct from loaded_receipts.receipt_count
        or expected_receipts.checksum is distinct from loaded_receipts.checksum
    union all
    select
        cast(null as date) as sold_date,
        'int_basket_items' as model_name
    from expected_items
    cross join loaded_items
    where
        expected_items.item_count != loaded_items.item_count
        or expected_items.checksum is distinct from loaded_items.checksum
),

final as (
    select * from differences
)

select * from final
