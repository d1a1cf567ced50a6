-- Anchor family x add-on category lift, with its interval, significant pairs first.
select
    anchor_family,
    addon_category,
    lift,
    lift_ci_low,
    lift_ci_high,
    joint_receipts,
    p_addon_given_anchor,
    p_addon,
    is_significant
from {{ ref('fct_addon_lift') }}
order by is_significant desc, lift desc
