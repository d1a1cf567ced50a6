{#-
    Impulse buying by weekday (ISO, 1 = Monday) and hour of checkout: the share of
    purchase receipts with at least one line of an impulse category (category_attributes
    seed), overall and split by whether the receipt holds an anchor.
-#}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
    where is_purchase
),

impulse_revenue as (
    select
        receipt_key,
        sum(revenue) as revenue
    from {{ ref('int_transaction_lines_enriched') }}
    where quantity > 0 and is_impulse
    group by receipt_key
),

hours as (
    select
        receipts.sold_weekday,
        receipts.sold_hour,
        count(*) as receipts,
        sum(case when receipts.impulse_line_count > 0 then 1 else 0 end) as impulse_receipts,
        sum(receipts.impulse_line_count) as impulse_lines,
        sum(coalesce(impulse_revenue.revenue, 0)) as impulse_revenue,
        sum(case when receipts.has_anchor then 1 else 0 end) as anchor_receipts,
        sum(case when receipts.has_anchor and receipts.impulse_line_count > 0 then 1 else 0 end)
            as anchor_impulse_receipts
    from receipts
    left join impulse_revenue
        on receipts.receipt_key = impulse_revenue.receipt_key
    group by receipts.sold_weekday, receipts.sold_hour
),

final as (
    select
        cast(sold_weekday as integer) as sold_weekday,
        cast(sold_hour as integer) as sold_hour,
        cast(receipts as bigint) as receipts,
        cast(impulse_receipts as bigint) as impulse_receipts,
        cast(impulse_receipts as double) / receipts as impulse_rate,
        cast(impulse_lines as bigint) as impulse_lines,
        cast(impulse_revenue as double) as impulse_revenue,
        cast(anchor_receipts as bigint) as anchor_receipts,
        cast(anchor_impulse_receipts as bigint) as anchor_impulse_receipts,
        cast(anchor_impulse_receipts as double) / nullif(anchor_receipts, 0)
            as impulse_rate_with_anchor,
        cast(impulse_receipts - anchor_impulse_receipts as double)
            / nullif(receipts - anchor_receipts, 0) as impulse_rate_without_anchor
    from hours
)

select * from final
where {{ analysis_is_applicable('impulse_by_hour') }}
