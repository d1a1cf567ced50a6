{#-
    Market baskets for rule mining: the distinct items of each purchase receipt's
    positive merchandise lines, at two levels (item_level = 'product' or 'category').
-#}
with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
    where quantity > 0 and is_merchandise
),

final as (
    select distinct
        receipt_id as basket_id,
        'product' as item_level,
        product_id as item
    from lines
    union all
    select distinct
        receipt_id as basket_id,
        'category' as item_level,
        category as item
    from lines
)

select * from final
