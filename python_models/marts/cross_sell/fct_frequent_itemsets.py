"""Frequent itemsets of any length up to max_itemset_length (xsell.ml.rules)."""

from xsell.frames import frame_of
from xsell.ml.resources import one_large_model_at_a_time, row_count
from xsell.ml.rules import itemsets_by_level


def model(dbt, session):
    dbt.config(materialized="table")
    min_support = dbt.config.get("min_support")
    product_min_support = dbt.config.get("product_min_support")
    max_len = dbt.config.get("max_itemset_length")
    source = dbt.ref("int_basket_items")
    with one_large_model_at_a_time(row_count(source), dbt.config.get("ml_exclusive_rows")):
        result = itemsets_by_level(
            frame_of(source),
            min_support={"category": float(min_support), "product": float(product_min_support)},
            max_len=int(max_len),
        )
    return result
