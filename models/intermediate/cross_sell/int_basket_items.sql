{#-
    Market baskets for rule mining: the distinct items of each purchase receipt's
    positive merchandise lines, at two levels (item_level = 'product' or 'category').
    basket_id is the receipt_key (store and receipt number).

    Incremental by basket, like int_receipts_aggregated: a run recomputes the baskets
    with a line on a day from the last receipt date (first line's day) of the baskets it
    holds minus incremental_lookback_days. The table has no date column (the rule miners
    read it whole), so receipt dates are looked up on the line fact; the first line's day,
    as a late line after midnight must not move the reload window past earlier late
    lines. DuckDB: delete+insert on basket_id; Spark: a table rebuilt whole
    (merge needs Delta tables; a Delta user sets incremental_strategy='merge' there).
-#}
{{
    config(
        materialized=("table" if target.type == "spark" else "incremental"),
        incremental_strategy="delete+insert",
        unique_key="basket_id",
        on_schema_change="fail",
    )
}}

with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
    where
        quantity > 0
        and is_merchandise
        {%- if is_incremental() %}
        and receipt_key in (
            select receipt_key from {{ ref('int_transaction_lines_enriched') }}
            where sold_date >= {{ incremental_reload_from(
                "select max(receipt_date) from (select min(sold_date) as receipt_date from "
                ~ ref('int_transaction_lines_enriched')
                ~ " where receipt_key in (select basket_id from " ~ this ~ ") group by receipt_key)"
                ~ " as held_baskets"
            ) }}
        )
        {%- endif %}
),

final as (
    select distinct
        receipt_key as basket_id,
        'product' as item_level,
        product_id as item
    from lines
    union all
    select distinct
        receipt_key as basket_id,
        'category' as item_level,
        category as item
    from lines
)

select * from final
