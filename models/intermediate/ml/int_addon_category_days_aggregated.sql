{#-
    Per day and add-on category: purchase receipts whose attach set holds the category
    as an add-on, and all purchase receipts of the day (the base rate's denominator).
-#}
with

receipts as (
    select * from {{ ref('int_purchase_receipts_profiled') }}
),

attached as (
    select * from {{ ref('int_receipt_categories_attached') }}
    where own_addon_lines + window_addon_lines > 0
),

daily_receipts as (
    select
        sold_date,
        count(*) as purchase_receipts
    from receipts
    group by sold_date
),

daily_addons as (
    select
        receipts.sold_date,
        attached.category,
        count(*) as addon_receipts
    from attached
    inner join receipts
        on attached.receipt_key = receipts.receipt_key
    group by receipts.sold_date, attached.category
),

final as (
    select
        daily_addons.sold_date,
        daily_addons.category,
        daily_addons.addon_receipts,
        daily_receipts.purchase_receipts
    from daily_addons
    inner join daily_receipts
        on daily_addons.sold_date = daily_receipts.sold_date
)

select * from final
