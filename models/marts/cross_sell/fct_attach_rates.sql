{#-
    Attach rates per anchor family and store over the whole period: the share of anchor
    receipts with at least one add-on in the attach window. The sums of
    fct_attach_rates_daily; a receipt with anchors of two families counts once in each.
-#}
with

anchors as (
    select * from {{ ref('int_anchor_receipts_attached') }}
),

families as (
    select
        anchor_family,
        store_id,
        {{ attach_counts() }}
    from anchors
    group by anchor_family, store_id
),

final as (
    select
        cast(anchor_family as {{ dbt.type_string() }}) as anchor_family,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        {{ attach_rate_columns() }}
    from families
)

select * from final
where {{ analysis_is_applicable('attach_rates') }}
