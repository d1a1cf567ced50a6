{#-
    Anchor receipts (purchase receipts with an anchor line of their own) with what the
    add-on models may know at checkout, and the label: the add-on categories of the
    receipt's attach set ({{ doc("attach_window") }}). campaign_categories lists the
    categories a campaign targets on the receipt's day (category-level targets).
-#}
with

receipts as (
    select * from {{ ref('int_purchase_receipts_profiled') }}
    where has_anchor
),

attached as (
    select * from {{ ref('int_receipt_categories_attached') }}
    where own_addon_lines + window_addon_lines > 0
),

campaigns as (
    select * from {{ ref('int_campaign_targets_windowed') }}
    where target_category is not null
),

addon_lists as (
    select
        attached.receipt_key,
        {{ sorted_listagg("attached.category", "','") }}
            as addon_categories
    from attached
    inner join receipts
        on attached.receipt_key = receipts.receipt_key
    group by attached.receipt_key
),

campaign_days as (
    select distinct
        receipts.receipt_key,
        campaigns.target_category
    from receipts
    inner join campaigns
        on receipts.sold_date between campaigns.first_day and campaigns.last_day
),

campaign_lists as (
    select
        receipt_key,
        {{ sorted_listagg("target_category", "','") }}
            as campaign_categories
    from campaign_days
    group by receipt_key
),

final as (
    select
        receipts.receipt_id,
        receipts.customer_id,
        receipts.store_id,
        receipts.is_member,
        receipts.sold_at,
        receipts.sold_date,
        receipts.sold_hour,
        receipts.sold_weekday,
        receipts.anchor_families,
        receipts.household_size,
        receipts.distance_km,
        coalesce(addon_lists.addon_categories, '') as addon_categories,
        coalesce(campaign_lists.campaign_categories, '') as campaign_categories
    from receipts
    left join addon_lists
        on receipts.receipt_key = addon_lists.receipt_key
    left join campaign_lists
        on receipts.receipt_key = campaign_lists.receipt_key
)

select * from final
