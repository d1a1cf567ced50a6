{#-
    Daily revenue and margin per store by stream:
    ANCHOR (LARGE merchandise lines), ADDON (SMALL merchandise lines on a receipt
    whose attach set holds an anchor: the anchor's own receipt or a window partner),
    OTHER (other SMALL lines and non-merchandise such as fees), RESTAURANT (restaurant
    orders; cost unknown, so margin null) and RETURNS (returned lines, negative, on
    the day of the return). Margin is null where no line of the stream has a known cost;
    cost_coverage is the share of the stream's revenue whose cost is known.
-#}
with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
),

attached as (
    select * from {{ ref('int_receipt_categories_attached') }}
),

restaurant as (
    select * from {{ ref('int_restaurant_orders_aggregated') }}
),

receipts_with_anchor as (
    select distinct receipt_key
    from attached
    where own_anchor_lines + window_anchor_lines > 0
),

classified_lines as (
    select
        lines.store_id,
        lines.sold_date,
        case
            when lines.quantity < 0 then 'RETURNS'
            when lines.is_anchor then 'ANCHOR'
            when lines.is_addon and receipts_with_anchor.receipt_key is not null then 'ADDON'
            else 'OTHER'
        end as revenue_stream,
        lines.receipt_id,
        lines.revenue,
        lines.margin,
        case when lines.margin is not null then lines.revenue else 0 end as costed_revenue
    from lines
    left join receipts_with_anchor
        on lines.receipt_key = receipts_with_anchor.receipt_key
),

line_streams as (
    select
        store_id,
        sold_date,
        revenue_stream,
        count(distinct receipt_id) as receipts,
        count(*) as lines,
        sum(revenue) as revenue,
        sum(margin) as margin,
        sum(costed_revenue) as costed_revenue
    from classified_lines
    group by store_id, sold_date, revenue_stream
),

restaurant_stream as (
    select
        store_id,
        ordered_date as sold_date,
        'RESTAURANT' as revenue_stream,
        orders as receipts,
        orders as lines,
        revenue,
        cast(null as double) as margin,
        0 as costed_revenue
    from restaurant
),

streams as (
    select * from line_streams
    union all
    select * from restaurant_stream
),

final as (
    select
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        sold_date,
        cast(revenue_stream as {{ dbt.type_string() }}) as revenue_stream,
        cast(receipts as bigint) as receipts,
        cast(lines as bigint) as lines,
        cast(revenue as double) as revenue,
        cast(margin as double) as margin,
        case when revenue != 0 then cast(costed_revenue as double) / revenue end
            as cost_coverage,
        cast(revenue as double)
            / nullif(sum(case when revenue_stream != 'RETURNS' then revenue end)
                over (partition by store_id, sold_date), 0) as share_of_gross_revenue
    from streams
)

select * from final
where {{ analysis_is_applicable('revenue_mix') }}
