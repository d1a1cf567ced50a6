"""Cross-sell marts against what the synthetic store planted, and against
independent computations of the same definitions.

The clean store of conftest.store_build is generated and built once per session.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from xsell.generate import load_config

pytestmark = pytest.mark.dbt

@pytest.fixture(scope="module")
def build(store_build):
    return store_build


def query(build, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(build["db"]), read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def config():
    return load_config()


def test_anchor_share_and_attach_rates_match_the_plant(build, config):
    lift = query(build, "select distinct store_id, anchor_family, anchor_receipts, all_receipts "
                        "from marts.fct_addon_lift")
    all_receipts = lift.drop_duplicates("store_id")["all_receipts"].sum()
    anchor_share = lift["anchor_receipts"].sum() / all_receipts
    assert anchor_share == pytest.approx(config.basket.anchor_receipt_share, abs=0.01)

    stores = query(build, "select * from marts.fct_attach_rates_overall")
    assert len(stores) == 2 and stores.attach_rate.between(0.5, 1).all()
    overall = stores[["anchor_receipts", "attached_receipts", "two_plus_addon_receipts"]].sum()
    assert overall["anchor_receipts"] == lift["anchor_receipts"].sum()
    # Every anchor receipt with two or more add-on lines is attached, so the attach rate is
    # at least the planted two-or-more share; the planted share itself is recovered.
    two_plus = overall["two_plus_addon_receipts"] / overall["anchor_receipts"]
    assert two_plus == pytest.approx(config.basket.addon_min2_share, abs=0.01)
    assert config.basket.addon_min2_share <= (
        overall["attached_receipts"] / overall["anchor_receipts"]) < 1.0

    by_family = query(build, "select * from marts.fct_attach_rates")
    daily = query(build, "select anchor_family, store_id, sum(anchor_receipts) as n, "
                         "sum(attached_receipts) as k from marts.fct_attach_rates_daily "
                         "group by 1, 2")
    merged = by_family.merge(daily, on=["anchor_family", "store_id"])
    assert len(merged) == len(by_family) == len(daily) > 10
    assert (merged["anchor_receipts"] == merged["n"]).all()
    assert (merged["attached_receipts"] == merged["k"]).all()


def test_planted_lifts_are_recovered(build, config):
    per_store = query(build, "select * from marts.fct_addon_lift")
    assert per_store.store_id.nunique() == 2
    # over both stores: the lift of the summed counts, and significant in each store
    lift = query(build, """
        select anchor_family, addon_category,
            (sum(joint_receipts) / sum(anchor_receipts))
                / (sum(addon_receipts) / sum(all_receipts)) as lift,
            exp(ln((sum(joint_receipts) / sum(anchor_receipts))
                / (sum(addon_receipts) / sum(all_receipts))) - 1.96 * sqrt(
                1 / sum(joint_receipts) - 1 / sum(anchor_receipts)
                + 1 / sum(addon_receipts) - 1 / sum(all_receipts))) as lift_ci_low,
            exp(ln((sum(joint_receipts) / sum(anchor_receipts))
                / (sum(addon_receipts) / sum(all_receipts))) + 1.96 * sqrt(
                1 / sum(joint_receipts) - 1 / sum(anchor_receipts)
                + 1 / sum(addon_receipts) - 1 / sum(all_receipts))) as lift_ci_high,
            bool_and(is_significant) as is_significant
        from marts.fct_addon_lift group by 1, 2
    """)
    planted = config.basket.lifts
    checked = 0
    for family, categories in planted.items():
        for category, value in categories.items():
            row = lift[(lift.anchor_family == family) & (lift.addon_category == category)].iloc[0]
            assert row["lift"] == pytest.approx(value, abs=0.2), (family, category)
            assert row["lift_ci_low"] < value < row["lift_ci_high"] or abs(
                row["lift"] - value
            ) < 0.1, (family, category)
            assert row["is_significant"]
            checked += 1
    assert checked >= 5
    # Unlisted pairs sit at the default lift.
    listed = {(f, c) for f, cs in planted.items() for c in cs}
    others = lift[[(f, c) not in listed for f, c in zip(lift.anchor_family, lift.addon_category,
                                                         strict=True)]]
    assert others["lift"].mean() == pytest.approx(config.basket.default_lift, abs=0.05)


def test_lift_counts_equal_an_independent_count_from_the_raw_files(build):
    """Attach sets rebuilt from the raw Parquet with pandas: a receipt's own positive
    lines plus those of the same member's receipts in the same store within 120 min."""
    raw = build["raw"]
    lines = pd.read_parquet(raw / "transactions.parquet")
    products = pd.read_parquet(raw / "products.parquet")
    lines = lines[lines.quantity > 0].merge(products, on="product_id")
    store = lines.store_id.min()  # fct_addon_lift counts per store
    lines = lines[lines.store_id == store]
    receipts = lines.groupby("receipt_id").agg(
        customer_id=("customer_id", "first"), store_id=("store_id", "first"),
        sold_at=("sold_at", "min"))
    members = receipts.dropna(subset=["customer_id"]).reset_index()
    pairs = members.merge(members, on=["customer_id", "store_id"], suffixes=("", "_partner"))
    apart = (pairs.sold_at_partner - pairs.sold_at).dt.total_seconds().abs()
    pairs = pairs[(pairs.receipt_id != pairs.receipt_id_partner) & (apart <= 120 * 60)]
    own = lines[["receipt_id", "category", "size_class"]]
    partner = pairs[["receipt_id", "receipt_id_partner"]].merge(
        own.rename(columns={"receipt_id": "receipt_id_partner"}), on="receipt_id_partner"
    )[["receipt_id", "category", "size_class"]]
    addons = pd.concat([own, partner])
    addons = addons[addons.size_class == "SMALL"]
    has_kitchenware = set(addons.loc[addons.category == "KITCHENWARE", "receipt_id"])
    tables = set(own.loc[(own.size_class == "LARGE") & (own.category == "TABLES"), "receipt_id"])
    n = len(receipts)
    expected_joint = len(tables & has_kitchenware)
    expected_lift = (expected_joint / len(tables)) / (len(has_kitchenware) / n)

    row = query(build, "select * from marts.fct_addon_lift where anchor_family = 'TABLES' "
                       f"and addon_category = 'KITCHENWARE' and store_id = '{store}'").iloc[0]
    assert len(pairs) > 0  # the window matters in this store
    assert row["all_receipts"] == n
    assert row["anchor_receipts"] == len(tables)
    assert row["addon_receipts"] == len(has_kitchenware)
    assert row["joint_receipts"] == expected_joint
    assert row["lift"] == pytest.approx(expected_lift, rel=1e-12)


def test_restaurant_conversion_matches_the_plant(build, config):
    groups = query(build, "select shopper_group, sum(converted_receipts) / sum(receipts) as rate "
                          "from marts.fct_restaurant_conversion_by_group group by 1")
    rates = dict(zip(groups.shopper_group, groups.rate, strict=True))
    assert rates["ANY_ANCHOR"] == pytest.approx(config.restaurant.anchor_rate, abs=0.03)
    assert rates["NO_ANCHOR"] == pytest.approx(config.restaurant.other_rate, abs=0.03)

    timing = query(build, "select * from marts.fct_restaurant_timing")
    low, high = config.restaurant.offset_minutes
    assert (low, high) == (30, 180)
    outside = timing[timing.timing_bucket.isin(
        ["more than 180 min before", "under 30 min before", "under 30 min after",
         "more than 180 min after"])]
    # A member with two receipts on one day is matched to the order closest to each
    # checkout, which may be the other visit's: a small share falls outside 30-180 min.
    assert outside["visits"].sum() / timing["visits"].sum() < 0.03
    before = timing[timing.timing_bucket.str.endswith("before")]["visits"].sum()
    assert before / timing["visits"].sum() == pytest.approx(config.restaurant.before_share,
                                                            abs=0.03)


def test_impulse_buying_rises_in_the_afternoon(build, config):
    hours = query(build, "select sold_hour, sum(receipts) as receipts, "
                         "sum(impulse_receipts) as impulse from marts.fct_impulse_by_hour "
                         "group by 1 order by 1")
    rate = hours.set_index("sold_hour")
    morning = rate.loc[10:11, "impulse"].sum() / rate.loc[10:11, "receipts"].sum()
    evening = rate.loc[17:19, "impulse"].sum() / rate.loc[17:19, "receipts"].sum()
    assert evening - morning > 0.08


def test_promotion_uplift_matches_the_plant(build, config):
    uplift = query(build, "select * from marts.fct_promotion_uplift")
    assert len(uplift) >= 2
    planted = config.campaigns.uplift - 1
    assert (uplift["uplift_ci_low"] > 0).all()
    assert uplift["uplift"].mean() == pytest.approx(planted, abs=0.1)
    assert (uplift["baseline_days"] > 0).all()


def test_revenue_mix_reconciles_with_the_lines(build):
    mix = query(build, "select revenue_stream, sum(revenue) as revenue from "
                       "marts.fct_revenue_mix group by 1").set_index("revenue_stream")
    raw = build["raw"]
    lines = pd.read_parquet(raw / "transactions.parquet")
    orders = pd.read_parquet(raw / "restaurant_orders.parquet")
    line_revenue = (lines.quantity * lines.unit_price).sum()
    merchandise = mix.loc[["ANCHOR", "ADDON", "OTHER", "RETURNS"], "revenue"].sum()
    assert merchandise == pytest.approx(line_revenue, rel=1e-9)
    assert mix.loc["RETURNS", "revenue"] == pytest.approx(
        (lines.quantity * lines.unit_price)[lines.quantity < 0].sum(), rel=1e-9)
    assert mix.loc["RESTAURANT", "revenue"] == pytest.approx(orders.amount.sum(), rel=1e-9)
    # Add-ons bring a sizeable share of merchandise revenue in a store built on anchors.
    assert 0.1 < mix.loc["ADDON", "revenue"] / merchandise < 0.6


def test_category_rules_equal_mlxtend_on_the_same_baskets(build):
    """The mart's category rules against an independent mlxtend run on baskets rebuilt
    from the raw files (every metric to 1e-9)."""
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    raw = build["raw"]
    lines = pd.read_parquet(raw / "transactions.parquet")
    products = pd.read_parquet(raw / "products.parquet")
    lines = lines[lines.quantity > 0].merge(products, on="product_id")
    onehot = lines.groupby(["receipt_id", "category"]).size().unstack(fill_value=0) > 0
    # 0.0505 x receipts is never an integer here, so mlxtend's float comparison and the
    # mart's ceil(min_support x receipts) select the same itemsets.
    min_support, min_confidence = 0.0505, 0.2
    itemsets = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=10)
    reference = association_rules(itemsets, metric="confidence", min_threshold=min_confidence)
    reference = reference[reference["consequents"].map(len) == 1]
    reference = reference.assign(
        antecedent=reference["antecedents"].map(lambda s: ", ".join(sorted(s))),
        consequent=reference["consequents"].map(lambda s: next(iter(s))),
    ).set_index(["antecedent", "consequent"]).sort_index()

    from xsell.ml.rules import rules_by_level

    baskets = query(build, "select * from intermediate.int_basket_items")
    mart = rules_by_level(baskets, min_support=min_support, min_confidence=min_confidence)
    mart = mart.to_pandas()
    mart = mart[mart.item_level == "category"].assign(
        antecedent=lambda f: f["antecedent"].map(lambda s: ", ".join(s))
    ).set_index(["antecedent", "consequent"]).sort_index()
    assert list(mart.index) == list(reference.index)
    assert len(mart) > 20
    for ours, theirs in [("support", "support"), ("confidence", "confidence"),
                         ("lift", "lift"), ("leverage", "leverage"),
                         ("antecedent_support", "antecedent support"),
                         ("consequent_support", "consequent support")]:
        np.testing.assert_allclose(mart[ours], reference[theirs], rtol=0, atol=1e-9)
    finite = np.isfinite(reference["conviction"])
    np.testing.assert_allclose(mart["conviction"][finite.values], reference["conviction"][finite],
                               atol=1e-9)
    assert mart["conviction"][~finite.values].isna().all()


def test_rules_mart_uses_the_configured_thresholds(build):
    rules = query(build, "select * from marts.fct_association_rules")
    itemsets = query(build, "select * from marts.fct_frequent_itemsets")
    n = itemsets["n_baskets"].iloc[0]
    for level, min_support in [("category", 0.01), ("product", 0.003)]:
        level_sets = itemsets[itemsets.item_level == level]
        assert level_sets["itemset_length"].max() >= 2, level
        assert level_sets["basket_count"].min() >= math.ceil(min_support * n)
    category_rules = rules[rules.item_level == "category"]
    assert len(category_rules) > 50
    assert category_rules["rule_basket_count"].min() >= math.ceil(0.01 * n)
    assert rules["confidence"].min() >= 0.1
    # the default pruning (vars rules_*): lift > 1, 5 receipts, the 10 best per consequent
    assert (rules["lift"] > 1).all() and rules["rule_basket_count"].min() >= 5
    assert rules["consequent_rank"].between(1, 10).all()
    assert itemsets.groupby("item_level")["itemset_length"].max()["category"] >= 3
    # Every rule's itemset is a frequent itemset with the same count.
    cat = itemsets[itemsets.item_level == "category"]
    counts = {tuple(s): c for s, c in zip(cat["itemset"], cat["basket_count"], strict=True)}
    for _, rule in rules[rules.item_level == "category"].head(200).iterrows():
        key = tuple(sorted([*rule["antecedent"], rule["consequent"]]))
        assert counts[key] == rule["rule_basket_count"]


def test_product_affinity_is_sparse_top_k_and_upsells_cost_more(build):
    affinity = query(build, "select * from marts.fct_product_affinity")
    assert affinity.groupby(["relation", "product_id"]).size().max() <= 10
    # a neighbour shares at least affinity_min_together (5) receipts or members: on this
    # store 4,902 of 6,410 co-purchase neighbours rested on fewer before that floor
    assert affinity.groupby("relation").together_count.min().to_dict() == {
        "co_purchase": 5, "upsell": 5}
    upsell = affinity[affinity.relation == "upsell"]
    assert len(upsell) > 0
    assert (upsell["related_median_unit_price"] > upsell["median_unit_price"]).all()
    assert (upsell["category"] == upsell["related_category"]).all()
    co = affinity[affinity.relation == "co_purchase"]
    expected = co["together_count"] / np.sqrt(co["basket_count"] * co["related_basket_count"])
    np.testing.assert_allclose(co["cosine_similarity"], expected, rtol=1e-12)


def test_seed_agrees_with_the_generator_catalogue(config):
    seed = pd.read_csv(Path(__file__).parents[2] / "seeds" / "category_attributes.csv")
    attributes = seed.set_index("category")
    for family in config.catalogue.anchors:
        assert attributes.loc[family.name, "size_class"] == "LARGE"
    for category in config.catalogue.addons:
        assert attributes.loc[category.name, "size_class"] == "SMALL"
    assert set(attributes.index[attributes.is_impulse]) == set(config.impulse.categories)


def test_dashboard_analyses_compile_and_return_rows(build):
    """Every query set in analyses/ compiles with dbt and runs on the built marts."""
    import os
    import subprocess
    import sys

    work = build["work"]
    env = dict(os.environ, XSELL_RAW_DIR=str(build["raw"]), XSELL_BUILD_DB=str(build["db"]),
               DBT_TARGET_PATH=str(work / "target_analyses"), DBT_LOG_PATH=str(work / "logs"),
               DO_NOT_TRACK="1")
    dbt = str(Path(sys.executable).parent / "dbt")
    done = subprocess.run([dbt, "compile", "--select", "resource_type:analysis", "--quiet"],
                          cwd=Path(__file__).parents[2], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    compiled = sorted((work / "target_analyses" / "compiled" / "xsell" / "analyses").rglob("*.sql"))
    assert {path.parent.name for path in compiled} == {
        "revenue_breakdown", "cross_sell_matrix", "impulse_categories", "restaurant_and_upsell"}
    with duckdb.connect(str(build["db"]), read_only=True) as con:
        for path in compiled:
            rows = con.execute(path.read_text()).fetchall()
            assert rows, path.name
