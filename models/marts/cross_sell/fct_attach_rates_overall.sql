{#-
    Attach rate per store over the whole period, each anchor receipt once whatever its
    anchor families: not the sum of fct_attach_rates (a receipt with a sofa and a bed is
    one receipt here, two there). Sum the counts over stores for the whole business.
-#}
with

anchors as (
    select * from {{ ref('int_anchor_receipts_attached') }}
),

receipts as (
    select distinct
        receipt_key,
        store_id,
        addon_line_count,
        addon_lines_in_window,
        addon_revenue,
        has_addon
    from anchors
),

stores as (
    select
        store_id,
        {{ attach_counts() }}
    from receipts
    group by store_id
),

final as (
    select
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        {{ attach_rate_columns() }}
    from stores
)

select * from final
where {{ analysis_is_applicable('attach_rates') }}
