"""Frequent itemsets of any length up to max_itemset_length (xsell.ml.rules). A level whose
longest itemsets reach that length may have longer ones that were not mined: said in the
dbt log here and in marts.fct_analysis_coverage."""

from dbt.adapters.events.logging import AdapterLogger

from xsell.frames import frame_of
from xsell.ml.resources import one_large_model_at_a_time, row_count
from xsell.ml.rules import itemsets_by_level, levels_at_max_length


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
    for level in levels_at_max_length(result, max_len):
        AdapterLogger("xsell").warning(
            f"fct_frequent_itemsets: {level} itemsets reached max_itemset_length = "
            f"{int(max_len)} items; longer frequent itemsets were not mined (raise the var "
            "to mine them)"
        )
    return result
