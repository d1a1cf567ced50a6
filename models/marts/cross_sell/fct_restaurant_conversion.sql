{#-
    Restaurant conversion of member purchase receipts per anchor family and store over the
    whole period ({{ doc("restaurant_conversion") }}); NO_ANCHOR for receipts without an
    anchor. The sums of fct_restaurant_conversion_daily.
-#}
with

receipts as (
    select * from {{ ref('int_member_receipts_families_expanded') }}
),

families as (
    select
        anchor_family,
        store_id,
        {{ restaurant_counts() }}
    from receipts
    group by anchor_family, store_id
),

final as (
    select
        cast(anchor_family as {{ dbt.type_string() }}) as anchor_family,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        {{ restaurant_rate_columns() }}
    from families
)

select * from final
where {{ analysis_is_applicable('restaurant_conversion') }}
