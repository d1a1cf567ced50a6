"""Association rules X -> y at product and category level (xsell.ml.rules), with names.

Derived from fct_frequent_itemsets (every frequent itemset per level) rather than by
mining the baskets again: the same rules, mined once. Then pruned to a set a person can
read (vars rules_min_lift, rules_min_count, rules_min_confidence_gain,
rules_top_n_per_consequent; see dbt_project.yml), with the count of each step in the
dbt log, and named from int_products_classified."""

from dbt.adapters.events.logging import AdapterLogger

from xsell.ml.rules import (
    RulePruning,
    levels_at_max_length,
    rules_from_itemsets,
    with_item_names,
)


def model(dbt, session):
    dbt.config(materialized="table")
    min_confidence = dbt.config.get("min_confidence")
    max_len = dbt.config.get("max_itemset_length")
    pruning = RulePruning(
        min_lift=dbt.config.get("rules_min_lift"),
        min_count=dbt.config.get("rules_min_count"),
        min_confidence_gain=dbt.config.get("rules_min_confidence_gain"),
        top_n_per_consequent=dbt.config.get("rules_top_n_per_consequent"),
    )
    itemsets = dbt.ref("fct_frequent_itemsets").to_arrow_table()
    products = dbt.ref("int_products_classified").select("product_id, product_name")
    counts = {}
    rules = rules_from_itemsets(
        itemsets, min_confidence=float(min_confidence), pruning=pruning, counts=counts
    )
    log = AdapterLogger("xsell")
    for level, steps in counts.items():
        log.info(f"fct_association_rules: {level}: {steps.describe(pruning)}")
    for level in levels_at_max_length(itemsets, max_len):
        log.warning(
            f"fct_association_rules: {level} itemsets reached max_itemset_length = "
            f"{int(max_len)} items, so {level} rules have at most {int(max_len) - 1} "
            "antecedent items; rules with longer antecedents were not derived (raise the "
            "var to mine them)"
        )
    return with_item_names(rules, products.to_arrow_table())
