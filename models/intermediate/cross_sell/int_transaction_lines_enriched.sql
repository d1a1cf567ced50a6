{#-
    Clean receipt lines with their product's role and the line's money, as exact
    decimals (macro money). Revenue is quantity x unit_price (negative for a returned
    line); cost and margin are null when the product's unit cost is unknown.

    Incremental by day: a run reloads every day from the last loaded day minus
    incremental_lookback_days and replaces those days whole, so late lines for them
    are taken in and a day is never half loaded. Window logic (the attach window
    crosses midnight) stays downstream, in models rebuilt from this one.
    DuckDB: delete+insert keyed on sold_date deletes every day the new batch holds,
    then inserts the batch. Spark: insert_overwrite of sold_date partitions does the
    same (dynamic partition overwrite), so the SQL is the same on both engines.
-#}
{{
    config(
        materialized="incremental",
        incremental_strategy=("insert_overwrite" if target.type == "spark" else "delete+insert"),
        unique_key=(none if target.type == "spark" else "sold_date"),
        partition_by=(["sold_date"] if target.type == "spark" else none),
        on_schema_change="fail",
    )
}}

with

lines as (
    select * from {{ ref('stg_pos__transactions') }}
    {%- if is_incremental() %}
    where sold_date >= {{ incremental_reload_from("select max(sold_date) from " ~ this) }}
    {%- endif %}
),

products as (
    select * from {{ ref('int_products_classified') }}
),

final as (
    select
        lines.receipt_key,
        lines.receipt_id,
        lines.line_number,
        lines.store_id,
        lines.customer_id,
        lines.product_id,
        lines.quantity,
        lines.unit_price,
        lines.sold_at,
        lines.sold_date,
        lines.campaign_id,
        lines.is_return,
        lines.is_member,
        products.category,
        products.size_class,
        products.is_anchor,
        products.is_addon,
        products.is_impulse,
        products.is_merchandise,
        {{ money("lines.quantity * lines.unit_price") }} as revenue,
        {{ money("lines.quantity * products.unit_cost") }} as cost,
        {{ money("lines.quantity * lines.unit_price") }}
        - {{ money("lines.quantity * products.unit_cost") }} as margin
    from lines
    inner join products
        on lines.product_id = products.product_id
)

select * from final
