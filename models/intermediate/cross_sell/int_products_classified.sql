{#-
    Products with a resolved size_class and role. size_class comes from the raw
    products table when given, else from the category_attributes seed, else from
    price: LARGE when the product's median selling price reaches the
    `large_price_quantile` of all products' median prices. Anchors are LARGE
    merchandise; add-ons are SMALL merchandise.
-#}
with

products as (
    select * from {{ ref('stg_pos__products') }}
),

categories as (
    select * from {{ ref('category_attributes') }}
),

lines as (
    select * from {{ ref('stg_pos__transactions') }}
),

product_prices as (
    select
        product_id,
        {{ quantile("unit_price", 0.5) }} as median_unit_price
    from lines
    where quantity > 0
    group by product_id
),

price_threshold as (
    select {{ quantile("median_unit_price", var("large_price_quantile")) }} as large_price
    from product_prices
),

resolved as (
    select
        products.product_id,
        products.product_name,
        products.category,
        products.unit_cost,
        products.is_merchandise,
        product_prices.median_unit_price,
        coalesce(categories.is_impulse, false) as is_impulse,
        case
            when products.size_class is not null then products.size_class
            when categories.size_class is not null then categories.size_class
            when product_prices.median_unit_price >= price_threshold.large_price then 'LARGE'
            else 'SMALL'
        end as size_class,
        case
            when products.size_class is not null then 'raw'
            when categories.size_class is not null then 'category'
            else 'price'
        end as size_class_source
    from products
    left join categories
        on products.category = categories.category
    left join product_prices
        on products.product_id = product_prices.product_id
    cross join price_threshold
),

final as (
    select
        product_id,
        product_name,
        category,
        size_class,
        size_class_source,
        is_impulse,
        is_merchandise,
        is_merchandise and size_class = 'LARGE' as is_anchor,
        is_merchandise and size_class = 'SMALL' as is_addon,
        unit_cost,
        median_unit_price
    from resolved
)

select * from final
