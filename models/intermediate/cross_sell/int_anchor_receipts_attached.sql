{#-
    One row per anchor receipt and anchor family on it (a receipt with two families
    has two rows), with the add-ons in its attach window: {{ doc("attach_window") }}
-#}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
    where is_purchase and has_anchor
),

attached as (
    select * from {{ ref('int_receipt_categories_attached') }}
),

anchor_families as (
    select
        receipt_key,
        category as anchor_family
    from attached
    where own_anchor_lines > 0
),

addons as (
    select
        receipt_key,
        sum(own_addon_lines) as addon_lines_in_receipt,
        sum(window_addon_lines) as addon_lines_in_window,
        count(*) as addon_category_count,
        sum(addon_revenue) as addon_revenue
    from attached
    where own_addon_lines + window_addon_lines > 0
    group by receipt_key
),

final as (
    select
        receipts.receipt_key,
        receipts.receipt_id,
        anchor_families.anchor_family,
        receipts.store_id,
        receipts.customer_id,
        receipts.is_member,
        receipts.sold_at,
        receipts.sold_date,
        receipts.anchor_family_count,
        coalesce(addons.addon_lines_in_receipt, 0) as addon_lines_in_receipt,
        coalesce(addons.addon_lines_in_window, 0) as addon_lines_in_window,
        coalesce(addons.addon_lines_in_receipt, 0) + coalesce(addons.addon_lines_in_window, 0)
            as addon_line_count,
        coalesce(addons.addon_category_count, 0) as addon_category_count,
        -- no add-on: 0, unless the data has no prices (the receipt's revenue is null)
        coalesce(addons.addon_revenue, case when receipts.revenue is not null then 0 end)
            as addon_revenue,
        addons.receipt_key is not null as has_addon
    from receipts
    inner join anchor_families
        on receipts.receipt_key = anchor_families.receipt_key
    left join addons
        on receipts.receipt_key = addons.receipt_key
)

select * from final
