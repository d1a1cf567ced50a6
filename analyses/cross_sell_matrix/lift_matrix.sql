-- Anchor family x add-on category lift over all stores (the lift of the summed counts),
-- strongest first; fct_addon_lift holds it per store, with its interval.
select
    anchor_family,
    addon_category,
    sum(joint_receipts) as joint_receipts,
    cast(sum(joint_receipts) as double) / sum(anchor_receipts) as p_addon_given_anchor,
    cast(sum(addon_receipts) as double) / sum(all_receipts) as p_addon,
    (cast(sum(joint_receipts) as double) / sum(anchor_receipts))
    / (cast(sum(addon_receipts) as double) / sum(all_receipts)) as lift
from {{ ref('fct_addon_lift') }}
group by anchor_family, addon_category
order by lift desc, anchor_family asc, addon_category asc
