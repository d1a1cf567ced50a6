{#-
    Attach rate of anchor receipts: the share with at least one add-on in the attach
    window. Three grains in one table, told apart by `grain`:
    family_day (anchor_family x sold_date), family (anchor_family, all days) and
    all (anchor_family = 'ALL', all days, each receipt once).
-#}
with

anchors as (
    select * from {{ ref('int_anchor_receipts_attached') }}
),

receipts as (
    select distinct
        receipt_key,
        'ALL' as anchor_family,
        addon_line_count,
        addon_lines_in_window,
        addon_revenue,
        has_addon
    from anchors
),

{%- set measures %}
        count(*) as anchor_receipts,
        sum(case when has_addon then 1 else 0 end) as attached_receipts,
        sum(case when addon_line_count >= 2 then 1 else 0 end) as two_plus_addon_receipts,
        sum(addon_line_count) as addon_lines,
        sum(addon_lines_in_window) as addon_lines_in_window,
        sum(addon_revenue) as addon_revenue
{%- endset %}

by_family_day as (
    select
        'family_day' as grain,
        anchor_family,
        sold_date,
        {{ measures }}
    from anchors
    group by anchor_family, sold_date
),

by_family as (
    select
        'family' as grain,
        anchor_family,
        cast(null as date) as sold_date,
        {{ measures }}
    from anchors
    group by anchor_family
),

overall as (
    select
        'all' as grain,
        anchor_family,
        cast(null as date) as sold_date,
        {{ measures }}
    from receipts
    group by anchor_family
),

unioned as (
    select * from by_family_day
    union all
    select * from by_family
    union all
    select * from overall
),

final as (
    select
        cast(grain as {{ dbt.type_string() }}) as grain,
        cast(anchor_family as {{ dbt.type_string() }}) as anchor_family,
        sold_date,
        cast(anchor_receipts as bigint) as anchor_receipts,
        cast(attached_receipts as bigint) as attached_receipts,
        cast(attached_receipts as double) / anchor_receipts as attach_rate,
        cast(two_plus_addon_receipts as bigint) as two_plus_addon_receipts,
        cast(two_plus_addon_receipts as double) / anchor_receipts as two_plus_addon_rate,
        cast(addon_lines as bigint) as addon_lines,
        cast(addon_lines as double) / anchor_receipts as addon_lines_per_anchor_receipt,
        cast(addon_lines_in_window as bigint) as addon_lines_in_window,
        cast(addon_revenue as double) as addon_revenue,
        cast(addon_revenue as double) / anchor_receipts as addon_revenue_per_anchor_receipt
    from unioned
)

select * from final
