{#-
    One row per staged product: name, category, size class and where it came from, the
    anchor / add-on / impulse and merchandise flags, unit cost, median selling price and
    its price band. The band is the fifth of the products' median selling prices the
    product falls in (1 = the cheapest fifth), from the 20/40/60/80% quantiles of those
    medians; null for a product never sold with a price (and for all when the data has
    no prices).
-#}
with

products as (
    select * from {{ ref('int_products_classified') }}
),

band_edges as (
    select
        {%- for fraction in [0.2, 0.4, 0.6, 0.8] %}
        {{ quantile("median_unit_price", fraction) }} as edge_{{ loop.index }}
        {{- "," if not loop.last }}
        {%- endfor %}
    from products
    where median_unit_price is not null
),

final as (
    select
        cast(products.product_id as {{ dbt.type_string() }}) as product_id,
        cast(products.product_name as {{ dbt.type_string() }}) as product_name,
        cast(products.category as {{ dbt.type_string() }}) as category,
        cast(products.size_class as {{ dbt.type_string() }}) as size_class,
        cast(products.size_class_source as {{ dbt.type_string() }}) as size_class_source,
        products.is_merchandise,
        products.is_anchor,
        products.is_addon,
        products.is_impulse,
        cast(products.unit_cost as double) as unit_cost,
        cast(products.median_unit_price as double) as median_unit_price,
        cast(case
            when products.median_unit_price is null then null
            when products.median_unit_price <= band_edges.edge_1 then 1
            when products.median_unit_price <= band_edges.edge_2 then 2
            when products.median_unit_price <= band_edges.edge_3 then 3
            when products.median_unit_price <= band_edges.edge_4 then 4
            else 5
        end as integer) as price_band
    from products
    cross join band_edges
)

select * from final
