"""Association rules X -> y at product and category level (xsell.ml.rules).

Derived from fct_frequent_itemsets (every frequent itemset per level) rather than by
mining the baskets again: the same rules, mined once."""

from xsell.ml.rules import rules_from_itemsets


def model(dbt, session):
    dbt.config(materialized="table")
    min_confidence = dbt.config.get("min_confidence")
    itemsets = dbt.ref("fct_frequent_itemsets").to_arrow_table()
    return rules_from_itemsets(itemsets, min_confidence=float(min_confidence))
