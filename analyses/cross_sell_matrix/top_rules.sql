{{ config(enabled=python_models_enabled()) }}
-- The strongest category-level association rules, by name: the mart keeps the best
-- rules per consequent (vars rules_*), so these are not permutations of one itemset.
with

rules as (
    select * from {{ ref('fct_association_rules') }}
),

final as (
    select
        rule_label,
        antecedent_names,
        consequent_name,
        rule_basket_count,
        support,
        confidence,
        lift,
        consequent_rank,
        antecedent,
        consequent
    from rules
    where item_level = 'category'
)

select * from final
order by lift desc, confidence desc, rule_label asc
limit 50
