{#-
    Restaurant conversion of member purchase receipts per anchor family, store and day
    ({{ doc("restaurant_conversion") }}): receipts without an anchor are NO_ANCHOR; a
    receipt with anchors of two families counts once in each. Counts are additive.
-#}
with

receipts as (
    select * from {{ ref('int_member_receipts_families_expanded') }}
),

daily as (
    select
        anchor_family,
        store_id,
        sold_date,
        {{ restaurant_counts() }}
    from receipts
    group by anchor_family, store_id, sold_date
),

final as (
    select
        cast(anchor_family as {{ dbt.type_string() }}) as anchor_family,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        sold_date,
        {{ restaurant_rate_columns() }}
    from daily
)

select * from final
where {{ analysis_is_applicable('restaurant_conversion') }}
