{{ config(enabled=python_models_enabled()) }}
-- The strongest category-level association rules.
select *
from {{ ref('fct_association_rules') }}
where item_level = 'category'
order by lift desc, confidence desc
limit 50
