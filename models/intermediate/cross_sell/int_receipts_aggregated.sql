{#-
    One row per receipt: the basket. Purchase metrics (items, revenue, margin, roles)
    come from the positive lines; returned lines are kept apart as returned_revenue,
    so a receipt that only returns goods is not a purchase (is_purchase = false) and
    a return never changes what a basket contained.

    Incremental by receipt: a run recomputes, from all their lines, the receipts with
    a line on a day from this table's last day minus incremental_lookback_days, so a
    receipt whose lines arrive in two loads, or cross midnight, is whole. A receipt is
    a store's receipt number (receipt_key): two stores may use the same numbers. DuckDB:
    delete+insert on receipt_key; Spark: a table rebuilt whole
    (merge needs Delta tables; a Delta user sets incremental_strategy='merge' there).
-#}
{{
    config(
        materialized=("table" if target.type == "spark" else "incremental"),
        incremental_strategy="delete+insert",
        unique_key="receipt_key",
        on_schema_change="fail",
    )
}}

with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
    {%- if is_incremental() %}
    where receipt_key in (
        select receipt_key from {{ ref('int_transaction_lines_enriched') }}
        where sold_date >= {{ incremental_reload_from("select max(sold_date) from " ~ this) }}
    )
    {%- endif %}
),

receipt_categories as (
    select distinct
        receipt_key,
        category,
        is_anchor,
        is_addon
    from lines
    where quantity > 0
),

category_lists as (
    select
        receipt_key,
        {{ sorted_listagg("case when is_anchor then category end", "','") }}
            as anchor_families,
        {{ sorted_listagg("case when is_addon then category end", "','") }}
            as addon_categories,
        sum(case when is_anchor then 1 else 0 end) as anchor_family_count,
        sum(case when is_addon then 1 else 0 end) as addon_category_count
    from receipt_categories
    group by receipt_key
),

receipts as (
    select
        receipt_key,
        store_id,
        receipt_id,
        min(customer_id) as customer_id,
        min(sold_at) as sold_at,
        max(case when quantity > 0 then 1 else 0 end) = 1 as is_purchase,
        sum(case when quantity > 0 then 1 else 0 end) as line_count,
        sum(case when quantity > 0 then quantity else 0 end) as item_count,
        sum(case when quantity > 0 and is_anchor then 1 else 0 end) as anchor_line_count,
        sum(case when quantity > 0 and is_addon then 1 else 0 end) as addon_line_count,
        sum(case when quantity > 0 and is_impulse then 1 else 0 end) as impulse_line_count,
        -- a line without a price (a store without prices) adds nothing, not 0: the
        -- receipt's money is then null, never a made-up 0
        sum(case when quantity > 0 then revenue when revenue is not null then 0 end)
            as revenue,
        sum(case when quantity > 0 and is_anchor then revenue when revenue is not null then 0 end)
            as anchor_revenue,
        sum(case when quantity > 0 and is_addon then revenue when revenue is not null then 0 end)
            as addon_revenue,
        sum(case when quantity < 0 then revenue when revenue is not null then 0 end)
            as returned_revenue,
        sum(case when quantity > 0 then margin end) as margin,
        max(case when quantity > 0 and margin is null then 1 else 0 end) = 1 as has_unknown_cost
    from lines
    group by receipt_key, store_id, receipt_id
),

final as (
    select
        receipts.receipt_key,
        receipts.receipt_id,
        receipts.store_id,
        receipts.customer_id,
        receipts.customer_id is not null as is_member,
        receipts.sold_at,
        cast(receipts.sold_at as date) as sold_date,
        {{ hour_of_day("receipts.sold_at") }} as sold_hour,
        {{ iso_weekday("receipts.sold_at") }} as sold_weekday,
        receipts.is_purchase,
        receipts.line_count,
        receipts.item_count,
        receipts.anchor_line_count,
        receipts.addon_line_count,
        receipts.impulse_line_count,
        receipts.anchor_line_count > 0 as has_anchor,
        coalesce(category_lists.anchor_family_count, 0) as anchor_family_count,
        category_lists.anchor_families,
        coalesce(category_lists.addon_category_count, 0) as addon_category_count,
        category_lists.addon_categories,
        receipts.revenue,
        receipts.anchor_revenue,
        receipts.addon_revenue,
        receipts.returned_revenue,
        receipts.revenue + receipts.returned_revenue as net_revenue,
        receipts.margin,
        receipts.has_unknown_cost
    from receipts
    left join category_lists
        on receipts.receipt_key = category_lists.receipt_key
)

select * from final
