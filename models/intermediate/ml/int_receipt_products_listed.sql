{#-
    The distinct merchandise products of every purchase receipt, with who bought them,
    where and when: the purchase history the recommender learns from. receipt_id is the
    receipt_key (store and receipt number): the recommender groups products by it, and
    receipt numbers may repeat across stores.
-#}
with

receipts as (
    select * from {{ ref('int_purchase_receipts_profiled') }}
),

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
    where quantity > 0 and is_merchandise
),

final as (
    select distinct
        receipts.receipt_key as receipt_id,
        receipts.customer_id,
        receipts.store_id,
        receipts.sold_date,
        lines.product_id
    from lines
    inner join receipts
        on lines.receipt_key = receipts.receipt_key
)

select * from final
