-- Best up-sell candidate per product: same category, higher price, similar buyers.
select
    product_id,
    product_name,
    related_product_id as upsell_product_id,
    related_product_name as upsell_product_name,
    median_unit_price,
    related_median_unit_price as upsell_median_unit_price,
    cosine_similarity
from {{ ref('fct_product_affinity') }}
where relation = 'upsell' and affinity_rank = 1
order by cosine_similarity desc
