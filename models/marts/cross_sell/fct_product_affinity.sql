{#-
    Product neighbours, top affinity_top_k per product and relation (sparse: only
    pairs seen together are scored):
    - co_purchase: cosine similarity of the two products' receipt sets,
      together / sqrt(receipts_a x receipts_b), over purchase receipts;
    - upsell: products of the same category with a higher median price, scored by
      the cosine similarity of their buyer sets (loyalty members who bought both, at
      any time), i.e. what similar customers trade up to.
    Products need affinity_min_count receipts (co_purchase) or buyers (upsell), and a
    pair affinity_min_together of them in common.
-#}
with

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
    where quantity > 0 and is_merchandise
),

products as (
    select * from {{ ref('int_products_classified') }}
),

receipt_products as (
    select distinct
        receipt_key as basket_id,
        product_id
    from lines
),

-- Members' products with category and price, so that the up-sell self-join pairs
-- only same-category products (an equi-join key) instead of every pair a member bought.
customer_products as (
    select distinct
        lines.customer_id as basket_id,
        lines.product_id,
        products.category,
        products.median_unit_price
    from lines
    inner join products
        on lines.product_id = products.product_id
    where lines.customer_id is not null
),

{%- set pair_sources = [("co_purchase", "receipt_products"), ("upsell", "customer_products")] %}
{%- for relation, baskets in pair_sources %}

{{ relation }}_counts as (
    select
        product_id,
        count(*) as basket_count
    from {{ baskets }}
    group by product_id
    having count(*) >= {{ var("affinity_min_count") }}
),

{{ relation }}_pairs as (
    select
        left_side.product_id,
        right_side.product_id as related_product_id,
        count(*) as together_count
    from {{ baskets }} as left_side
    inner join {{ baskets }} as right_side
        on left_side.basket_id = right_side.basket_id
        {%- if relation == "co_purchase" %}
        -- Symmetric: count each unordered pair once, mirrored below.
        and left_side.product_id < right_side.product_id
        {%- else %}
        and left_side.category = right_side.category
        and right_side.median_unit_price > left_side.median_unit_price
        {%- endif %}
    inner join {{ relation }}_counts as left_counts
        on left_side.product_id = left_counts.product_id
    inner join {{ relation }}_counts as right_counts
        on right_side.product_id = right_counts.product_id
    group by left_side.product_id, right_side.product_id
    having count(*) >= {{ var("affinity_min_together") }}
),

{{ relation }}_scored as (
    select
        '{{ relation }}' as relation,
        pairs.product_id,
        pairs.related_product_id,
        pairs.together_count,
        left_counts.basket_count,
        right_counts.basket_count as related_basket_count,
        pairs.together_count / sqrt(
            cast(left_counts.basket_count as double) * right_counts.basket_count
        ) as cosine_similarity
    from {{ relation }}_pairs as pairs
    inner join {{ relation }}_counts as left_counts
        on pairs.product_id = left_counts.product_id
    inner join {{ relation }}_counts as right_counts
        on pairs.related_product_id = right_counts.product_id
),
{%- endfor %}

scored as (
    select * from co_purchase_scored
    union all
    select
        relation,
        related_product_id as product_id,
        product_id as related_product_id,
        together_count,
        related_basket_count as basket_count,
        basket_count as related_basket_count,
        cosine_similarity
    from co_purchase_scored
    union all
    select * from upsell_scored
),

ranked as (
    select
        scored.*,
        row_number() over (
            partition by relation, product_id
            order by cosine_similarity desc, together_count desc, related_product_id asc
        ) as affinity_rank
    from scored
),

final as (
    select
        cast(ranked.relation as {{ dbt.type_string() }}) as relation,
        cast(ranked.product_id as {{ dbt.type_string() }}) as product_id,
        cast(ranked.affinity_rank as integer) as affinity_rank,
        cast(ranked.related_product_id as {{ dbt.type_string() }}) as related_product_id,
        cast(base.product_name as {{ dbt.type_string() }}) as product_name,
        cast(related.product_name as {{ dbt.type_string() }}) as related_product_name,
        cast(base.category as {{ dbt.type_string() }}) as category,
        cast(related.category as {{ dbt.type_string() }}) as related_category,
        cast(ranked.cosine_similarity as double) as cosine_similarity,
        cast(ranked.together_count as bigint) as together_count,
        cast(ranked.basket_count as bigint) as basket_count,
        cast(ranked.related_basket_count as bigint) as related_basket_count,
        cast(base.median_unit_price as double) as median_unit_price,
        cast(related.median_unit_price as double) as related_median_unit_price
    from ranked
    inner join products as base
        on ranked.product_id = base.product_id
    inner join products as related
        on ranked.related_product_id = related.product_id
    where ranked.affinity_rank <= {{ var("affinity_top_k") }}
)

select * from final
where {{ analysis_is_applicable('product_affinity') }}
