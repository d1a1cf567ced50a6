"""Association rules X -> y at product and category level (xsell.ml.rules)."""

from xsell.ml.rules import rules_by_level


def model(dbt, session):
    dbt.config(materialized="table")
    min_support = dbt.config.get("min_support")
    product_min_support = dbt.config.get("product_min_support")
    min_confidence = dbt.config.get("min_confidence")
    max_len = dbt.config.get("max_itemset_length")
    return rules_by_level(
        dbt.ref("int_basket_items").df(),
        min_support={"category": float(min_support), "product": float(product_min_support)},
        min_confidence=float(min_confidence),
        max_len=int(max_len),
    )
