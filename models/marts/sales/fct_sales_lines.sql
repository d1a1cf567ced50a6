{#-
    The line fact of the star schema: one row per staged receipt line, with its keys to
    fct_receipts (store_id and receipt_id, or receipt_key), dim_products, dim_stores,
    dim_customers and dim_dates (sold_date), and its money. Revenue, cost and margin
    are summed exactly upstream (decimals) and cast to double here; they are null when
    the data has no prices (or, for cost and margin, no unit cost).

    Incremental like int_transaction_lines_enriched, which it projects: a run reloads
    every day from the last loaded day minus incremental_lookback_days and replaces those
    days whole (DuckDB: delete+insert on sold_date; Spark: insert_overwrite of the
    sold_date partitions, which is why sold_date is the last column on both engines).
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
    select * from {{ ref('int_transaction_lines_enriched') }}
    {%- if is_incremental() %}
    where sold_date >= {{ incremental_reload_from("select max(sold_date) from " ~ this) }}
    {%- endif %}
),

final as (
    select
        {{ receipt_key('store_id', 'receipt_id') }} as receipt_key,
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        cast(receipt_id as {{ dbt.type_string() }}) as receipt_id,
        cast(line_number as integer) as line_number,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        sold_at,
        is_return,
        cast(quantity as integer) as quantity,
        cast(unit_price as double) as unit_price,
        cast(revenue as double) as revenue,
        cast(cost as double) as cost,
        cast(margin as double) as margin,
        sold_date
    from lines
)

select * from final
