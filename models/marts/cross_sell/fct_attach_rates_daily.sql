{#-
    Attach rates per anchor family, store and day: the share of anchor receipts with at
    least one add-on in the attach window ({{ doc("attach_window") }}). A receipt with
    anchors of two families counts once in each; fct_attach_rates_overall counts it once.
    The counts are additive: sum them over days, stores or families, then divide.
-#}
with

anchors as (
    select * from {{ ref('int_anchor_receipts_attached') }}
),

daily as (
    select
        anchor_family,
        store_id,
        sold_date,
        {{ attach_counts() }}
    from anchors
    group by anchor_family, store_id, sold_date
),

final as (
    select
        cast(anchor_family as {{ dbt.type_string() }}) as anchor_family,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        sold_date,
        {{ attach_rate_columns() }}
    from daily
)

select * from final
where {{ analysis_is_applicable('attach_rates') }}
