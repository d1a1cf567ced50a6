{#-
    Anchor family x add-on category, per store: {{ doc("lift") }}
    The four counts are additive over stores: a lift over several stores is
    sum(joint) x sum(all) / (sum(anchor) x sum(addon)).
    The 95% interval is the log (Katz) interval for a ratio of two proportions,
    se(log lift) = sqrt(1/joint - 1/anchor + 1/addon - 1/all); it ignores that the
    anchor receipts are part of the baseline, which makes it slightly wide.
-#}
with

receipts as (
    select
        receipt_key,
        store_id
    from {{ ref('int_receipts_aggregated') }}
    where is_purchase
),

attached as (
    select * from {{ ref('int_receipt_categories_attached') }}
),

anchor_receipts as (
    select
        receipts.receipt_key,
        receipts.store_id,
        attached.category as anchor_family
    from attached
    inner join receipts
        on attached.receipt_key = receipts.receipt_key
    where attached.own_anchor_lines > 0
),

addon_receipts as (
    select
        receipts.receipt_key,
        receipts.store_id,
        attached.category as addon_category
    from attached
    inner join receipts
        on attached.receipt_key = receipts.receipt_key
    where attached.own_addon_lines + attached.window_addon_lines > 0
),

totals as (
    select
        store_id,
        count(*) as all_receipts
    from receipts
    group by store_id
),

anchor_counts as (
    select
        store_id,
        anchor_family,
        count(*) as anchor_receipts
    from anchor_receipts
    group by store_id, anchor_family
),

addon_counts as (
    select
        store_id,
        addon_category,
        count(*) as addon_receipts
    from addon_receipts
    group by store_id, addon_category
),

joint_counts as (
    select
        anchor_receipts.store_id,
        anchor_receipts.anchor_family,
        addon_receipts.addon_category,
        count(*) as joint_receipts
    from anchor_receipts
    inner join addon_receipts
        on anchor_receipts.receipt_key = addon_receipts.receipt_key
    group by anchor_receipts.store_id, anchor_receipts.anchor_family, addon_receipts.addon_category
),

pairs as (
    select
        anchor_counts.store_id,
        anchor_counts.anchor_family,
        addon_counts.addon_category,
        totals.all_receipts,
        anchor_counts.anchor_receipts,
        addon_counts.addon_receipts,
        coalesce(joint_counts.joint_receipts, 0) as joint_receipts
    from anchor_counts
    inner join addon_counts
        on anchor_counts.store_id = addon_counts.store_id
    inner join totals
        on anchor_counts.store_id = totals.store_id
    left join joint_counts
        on anchor_counts.store_id = joint_counts.store_id
        and anchor_counts.anchor_family = joint_counts.anchor_family
        and addon_counts.addon_category = joint_counts.addon_category
),

metrics as (
    select
        pairs.*,
        cast(joint_receipts as double) / anchor_receipts as p_addon_given_anchor,
        cast(addon_receipts as double) / all_receipts as p_addon,
        (cast(joint_receipts as double) / anchor_receipts)
            / (cast(addon_receipts as double) / all_receipts) as lift,
        case
            when joint_receipts > 0 then sqrt(
                1 / cast(joint_receipts as double) - 1 / cast(anchor_receipts as double)
                + 1 / cast(addon_receipts as double) - 1 / cast(all_receipts as double)
            )
        end as log_lift_se
    from pairs
),

final as (
    select
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        cast(anchor_family as {{ dbt.type_string() }}) as anchor_family,
        cast(addon_category as {{ dbt.type_string() }}) as addon_category,
        cast(all_receipts as bigint) as all_receipts,
        cast(anchor_receipts as bigint) as anchor_receipts,
        cast(addon_receipts as bigint) as addon_receipts,
        cast(joint_receipts as bigint) as joint_receipts,
        p_addon_given_anchor,
        p_addon,
        lift,
        case when joint_receipts > 0 then exp(ln(lift) - 1.96 * log_lift_se) end
            as lift_ci_low,
        case when joint_receipts > 0 then exp(ln(lift) + 1.96 * log_lift_se) end
            as lift_ci_high,
        joint_receipts >= {{ var("lift_min_count") }} as meets_min_count,
        coalesce(
            joint_receipts >= {{ var("lift_min_count") }}
            and (
                exp(ln(lift) - 1.96 * log_lift_se) > 1
                or exp(ln(lift) + 1.96 * log_lift_se) < 1
            ),
            false
        ) as is_significant
    from metrics
)

select * from final
where {{ analysis_is_applicable('addon_lift') }}
