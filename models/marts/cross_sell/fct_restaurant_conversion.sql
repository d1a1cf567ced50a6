{#-
    Restaurant conversion of member receipts: {{ doc("restaurant_conversion") }}
    Grains, told apart by `grain`: family_day (anchor_family x sold_date, with
    NO_ANCHOR for receipts without an anchor), family (all days) and group
    (ANY_ANCHOR and NO_ANCHOR, all days, each receipt once).
-#}
with

matched as (
    select * from {{ ref('int_receipts_restaurant_matched') }}
),

anchors as (
    select
        receipt_key,
        anchor_family
    from {{ ref('int_anchor_receipts_attached') }}
),

has_restaurant_data as (
    select count(*) > 0 as present from {{ ref('int_restaurant_orders_aggregated') }}
),

by_family as (
    select
        coalesce(anchors.anchor_family, 'NO_ANCHOR') as anchor_family,
        matched.*
    from matched
    left join anchors
        on matched.receipt_key = anchors.receipt_key
),

by_group as (
    select
        case when has_anchor then 'ANY_ANCHOR' else 'NO_ANCHOR' end as anchor_family,
        matched.*
    from matched
),

{%- set measures %}
        count(*) as receipts,
        sum(case when has_restaurant_visit then 1 else 0 end) as converted_receipts,
        sum(restaurant_amount) as restaurant_revenue,
        avg(minutes_from_checkout) as avg_minutes_from_checkout
{%- endset %}

unioned as (
    select 'family_day' as grain, anchor_family, sold_date, {{ measures }}
    from by_family
    group by anchor_family, sold_date
    union all
    select 'family' as grain, anchor_family, cast(null as date) as sold_date, {{ measures }}
    from by_family
    group by anchor_family
    union all
    select 'group' as grain, anchor_family, cast(null as date) as sold_date, {{ measures }}
    from by_group
    group by anchor_family
),

final as (
    select
        cast(unioned.grain as {{ dbt.type_string() }}) as grain,
        cast(unioned.anchor_family as {{ dbt.type_string() }}) as anchor_family,
        unioned.sold_date,
        cast(unioned.receipts as bigint) as receipts,
        cast(unioned.converted_receipts as bigint) as converted_receipts,
        cast(unioned.converted_receipts as double) / unioned.receipts as conversion_rate,
        cast(coalesce(unioned.restaurant_revenue, 0) as double) as restaurant_revenue,
        cast(unioned.avg_minutes_from_checkout as double) as avg_minutes_from_checkout
    from unioned
    cross join has_restaurant_data
    where has_restaurant_data.present
)

select * from final
