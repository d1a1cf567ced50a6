{#-
    Clean receipt lines with their product's role and the line's money. Revenue is
    quantity x unit_price (negative for a returned line); cost and margin are null
    when the product's unit cost is unknown.
-#}
with

lines as (
    select * from {{ ref('stg_pos__transactions') }}
),

products as (
    select * from {{ ref('int_products_classified') }}
),

final as (
    select
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
        lines.quantity * lines.unit_price as revenue,
        lines.quantity * products.unit_cost as cost,
        lines.quantity * (lines.unit_price - products.unit_cost) as margin
    from lines
    inner join products
        on lines.product_id = products.product_id
)

select * from final
