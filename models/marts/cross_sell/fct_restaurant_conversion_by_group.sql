{#-
    Restaurant conversion of member purchase receipts per store for anchor shoppers
    (ANY_ANCHOR) against the others (NO_ANCHOR), each receipt once: the comparison the
    synthetic store plants (50 % against 14 %).
-#}
with

matched as (
    select * from {{ ref('int_receipts_restaurant_matched') }}
),

groups as (
    select
        case when has_anchor then 'ANY_ANCHOR' else 'NO_ANCHOR' end as shopper_group,
        store_id,
        {{ restaurant_counts() }}
    from matched
    group by case when has_anchor then 'ANY_ANCHOR' else 'NO_ANCHOR' end, store_id
),

final as (
    select
        cast(shopper_group as {{ dbt.type_string() }}) as shopper_group,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        {{ restaurant_rate_columns() }}
    from groups
)

select * from final
where {{ analysis_is_applicable('restaurant_conversion') }}
