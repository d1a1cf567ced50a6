{#-
    The incremental star-schema facts agree with what a full refresh would hold, day by
    day: fct_sales_lines with the line fact (lines and a checksum), fct_receipts with the
    baskets, their attach sets and restaurant matches (receipts and a checksum of the
    flags). Returns the days that differ. A failure means lines, window partners or
    restaurant orders arrived for days older than the reload window: run
    `dbt build --full-refresh`.
-#}
with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
),

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
),

attached as (
    select * from {{ ref('int_receipt_categories_attached') }}
),

restaurant as (
    select * from {{ ref('int_receipts_restaurant_matched') }}
),

profile as (
    select * from {{ ref('int_data_profiled') }}
),

sales_lines as (
    select * from {{ ref('fct_sales_lines') }}
),

fact_receipts as (
    select * from {{ ref('fct_receipts') }}
),

restaurant_coverage as (
    select count(*) > 0 as is_applicable
    from profile
    where {{ analysis_is_applicable('restaurant_conversion') }}
),

attach_sets as (
    select
        receipt_key,
        max(case when own_addon_lines + window_addon_lines > 0 then 1 else 0 end) = 1
            as has_addon_attached
    from attached
    group by receipt_key
),

expected_lines as (
    select
        sold_date,
        count(*) as row_count,
        sum(hash(store_id, receipt_id, line_number, product_id, customer_id, quantity,
                 unit_price, sold_at)) as checksum
    from lines
    group by sold_date
),

loaded_lines as (
    select
        sold_date,
        count(*) as row_count,
        sum(hash(store_id, receipt_id, line_number, product_id, customer_id, quantity,
                 unit_price, sold_at)) as checksum
    from sales_lines
    group by sold_date
),

expected_receipts as (
    select
        receipts.sold_date,
        count(*) as row_count,
        sum(hash(
            receipts.store_id, receipts.receipt_id, cast(receipts.line_count as bigint),
            receipts.is_purchase and coalesce(attach_sets.has_addon_attached, false),
            case when restaurant_coverage.is_applicable then restaurant.has_restaurant_visit end
        )) as checksum
    from receipts
    cross join restaurant_coverage
    left join attach_sets
        on receipts.receipt_key = attach_sets.receipt_key
    left join restaurant
        on receipts.receipt_key = restaurant.receipt_key
    group by receipts.sold_date
),

loaded_receipts as (
    select
        sold_date,
        count(*) as row_count,
        sum(hash(
            store_id, receipt_id, cast(line_count as bigint), has_addon_attached,
            has_restaurant_visit
        )) as checksum
    from fact_receipts
    group by sold_date
),

differences as (
    select
        coalesce(expected_lines.sold_date, loaded_lines.sold_date) as sold_date,
        'fct_sales_lines' as model_name
    from expected_lines
    full outer join loaded_lines
        on expected_lines.sold_date = loaded_lines.sold_date
    where
        expected_lines.row_count is distinct from loaded_lines.row_count
        or expected_lines.checksum is distinct from loaded_lines.checksum
    union all
    select
        coalesce(expected_receipts.sold_date, loaded_receipts.sold_date) as sold_date,
        'fct_receipts' as model_name
    from expected_receipts
    full outer join loaded_receipts
        on expected_receipts.sold_date = loaded_receipts.sold_date
    where
        expected_receipts.row_count is distinct from loaded_receipts.row_count
        or expected_receipts.checksum is distinct from loaded_receipts.checksum
),

final as (
    select * from differences
)

select * from final
