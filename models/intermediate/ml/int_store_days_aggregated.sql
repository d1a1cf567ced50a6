{#-
    Daily gross sales per store: revenue of the positive lines of purchase receipts
    (returns and restaurant orders excluded), and the purchase receipts. Days without a
    sale are absent; the forecast fills them with zero.
-#}
with

receipts as (
    select * from {{ ref('int_purchase_receipts_profiled') }}
),

final as (
    select
        store_id,
        sold_date,
        sum(revenue) as revenue,
        count(*) as purchase_receipts
    from receipts
    group by store_id, sold_date
)

select * from final
