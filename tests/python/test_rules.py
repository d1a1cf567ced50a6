"""Frequent itemsets and association rules (xsell.ml.rules).

The reference is mlxtend (apriori / fpgrowth + association_rules), an
independent implementation, on a planted random basket set and on a sample of
the UCI Online Retail data; plus hand-computed figures and edge cases.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
from support import dataset_path

from xsell.ml.rules import (
    ITEMSET_COLUMNS,
    RULE_COLUMNS,
    frequent_itemsets,
    min_basket_count,
    mine_rules,
    rules_for_storage,
)

METRICS = [
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "antecedent_support",
    "consequent_support",
]


# --------------------------------------------------------------------------- #
# reference


def _reference(
    pairs: pd.DataFrame, min_support: float, min_confidence: float, max_len: int, algorithm: str
):
    """mlxtend's itemsets {frozenset: support} and single-consequent rules {(ante, cons): row}."""
    mlxtend = pytest.importorskip("mlxtend.frequent_patterns")
    baskets, _ = pd.factorize(pairs["basket_id"])
    items, labels = pd.factorize(pairs["item"], sort=True)
    onehot = np.zeros((baskets.max() + 1, len(labels)), dtype=bool)
    onehot[baskets, items] = True
    frame = pd.DataFrame(onehot, columns=list(labels))
    mine = getattr(mlxtend, algorithm)
    found = mine(frame, min_support=min_support, use_colnames=True, max_len=max_len)
    itemsets = dict(zip(found["itemsets"], found["support"], strict=True))
    if found.empty:
        return itemsets, {}
    rules = mlxtend.association_rules(
        found, num_itemsets=len(frame), metric="confidence", min_threshold=min_confidence
    )
    rules = rules[rules["consequents"].map(len) == 1].rename(
        columns={
            "antecedent support": "antecedent_support",
            "consequent support": "consequent_support",
        }
    )
    by_key = {
        (tuple(sorted(r.antecedents)), next(iter(r.consequents))): {
            metric: getattr(r, metric) for metric in METRICS
        }
        for r in rules.itertuples()
    }
    return itemsets, by_key


def _assert_matches_reference(pairs, *, min_support, min_confidence, max_len, algorithm):
    n = pairs["basket_id"].nunique()
    # mlxtend keeps support >= min_support compared as floats (count / n); we keep
    # count >= ceil(min_support * n). They agree when min_support * n is well away
    # from an integer, so the tests pick such thresholds and check it here.
    frac = min_support * n - math.floor(min_support * n)
    assert 0.05 < frac < 0.95, "pick a min_support whose count threshold is unambiguous"
    # Same for confidence: no rule may sit within float noise of min_confidence,
    # where mlxtend's (c/n)/(a/n) and our integer comparison could round apart.
    every_rule = mine_rules(pairs, min_support=min_support, min_confidence=0.0, max_len=max_len)
    assert not np.isclose(every_rule["confidence"], min_confidence, rtol=0, atol=1e-9).any()

    ref_sets, ref_rules = _reference(pairs, min_support, min_confidence, max_len, algorithm)
    sets = frequent_itemsets(pairs, min_support=min_support, max_len=max_len)
    rules = mine_rules(
        pairs, min_support=min_support, min_confidence=min_confidence, max_len=max_len
    )
    assert len(sets) > 20 and len(rules) > 20, "reference case too small to mean much"

    ours = {frozenset(s): sup for s, sup in zip(sets["itemset"], sets["support"], strict=True)}
    assert ours.keys() == ref_sets.keys()
    for itemset, support in ours.items():
        assert support == pytest.approx(ref_sets[itemset], abs=1e-9)
    assert (sets["basket_count"] == (sets["support"] * n).round().astype(int)).all()

    keyed = {(tuple(r.antecedent), r.consequent): r for r in rules.itertuples()}
    assert len(keyed) == len(rules)
    assert keyed.keys() == ref_rules.keys()
    for key, row in keyed.items():
        for metric in METRICS:
            got, want = getattr(row, metric), ref_rules[key][metric]
            if math.isinf(want):
                assert math.isinf(got) and got > 0, (key, metric)
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (key, metric, got, want)


# --------------------------------------------------------------------------- #
# data


def _planted_baskets(seed: int = 7, n_baskets: int = 3000) -> pd.DataFrame:
    """Random baskets over 80 items with Zipf-like popularity, plus planted rules.

    P30 → P31 with probability 0.8, {P00, P01} → P40 with 0.9, P25 → P26 always. Some pairs are
    written twice, as receipt lines of the same product would be.
    """
    rng = np.random.default_rng(seed)
    names = [f"P{i:02d}" for i in range(80)]
    popularity = 1.0 / np.arange(1, 81) ** 0.8
    popularity /= popularity.sum()
    rows = []
    for b in range(n_baskets):
        size = 1 + rng.poisson(4)
        basket = set(rng.choice(names, size=size, p=popularity))
        if "P30" in basket and rng.random() < 0.8:
            basket.add("P31")
        if {"P00", "P01"} <= basket and rng.random() < 0.9:
            basket.add("P40")
        if "P25" in basket:  # confidence exactly 1: infinite conviction
            basket.add("P26")
        for item in sorted(basket):
            rows.append((f"R{b:05d}", item))
            if rng.random() < 0.05:
                rows.append((f"R{b:05d}", item))
    return pd.DataFrame(rows, columns=["basket_id", "item"])


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    return _planted_baskets()


@pytest.fixture(scope="module")
def retail_sample() -> pd.DataFrame:
    # ../shared/datasets beside the repo root; a skip with the path when absent
    path = dataset_path("online_retail", "online_retail.csv.gz")
    con = duckdb.connect()
    return con.execute(
        """
        with lines as (
            select InvoiceNo as basket_id, StockCode as item
            from read_csv(?, all_varchar = true)
            where not starts_with(InvoiceNo, 'C')
        ),
        first_invoices as (
            select distinct basket_id from lines order by basket_id limit 5000
        )
        select lines.basket_id, lines.item
        from lines
        inner join first_invoices using (basket_id)
        """,
        [str(path)],
    ).df()


# --------------------------------------------------------------------------- #
# equality with mlxtend


def test_matches_mlxtend_apriori_on_planted_baskets(planted):
    # n = 3000: 0.0123 × 3000 = 36.9 → 37 baskets for both implementations
    _assert_matches_reference(
        planted, min_support=0.0123, min_confidence=0.2137, max_len=10, algorithm="apriori"
    )


def test_planted_rules_recovered(planted):
    rules = mine_rules(planted, min_support=0.0123, min_confidence=0.2137)
    by_key = {(tuple(r.antecedent), r.consequent): r for r in rules.itertuples()}
    # P30 → P31 is planted at 0.8, on top of P31's own small chance of being drawn
    rule = by_key[(("P30",), "P31")]
    assert rule.confidence == pytest.approx(0.8, abs=0.05)
    assert rule.lift > 5
    rule = by_key[(("P00", "P01"), "P40")]
    assert rule.confidence == pytest.approx(0.9, abs=0.05)
    assert rule.lift > 5
    rule = by_key[(("P25",), "P26")]
    assert rule.confidence == 1.0 and rule.conviction == np.inf


@pytest.mark.dataset
def test_matches_mlxtend_fpgrowth_on_online_retail(retail_sample):
    assert retail_sample["basket_id"].nunique() == 5000
    # 0.0121 × 5000 = 60.5 → 61 baskets for both implementations
    _assert_matches_reference(
        retail_sample,
        min_support=0.0121,
        min_confidence=0.1234,
        max_len=10,
        algorithm="fpgrowth",
    )


# --------------------------------------------------------------------------- #
# hand-computed


# fmt: off
TINY = pd.DataFrame(
    [
        ("b1", "a"), ("b1", "b"), ("b1", "c"),
        ("b2", "a"), ("b2", "b"),
        ("b3", "a"), ("b3", "c"), ("b3", "d"),
        ("b4", "b"),
        ("b5", "a"), ("b5", "b"), ("b5", "a"),  # a duplicate line counts once
    ],
    columns=["basket_id", "item"],
)
# fmt: on


def test_tiny_itemsets_by_hand():
    # 5 baskets, min_support 0.4 → 2 baskets: a 4, b 4, c 2, {a,b} 3, {a,c} 2
    sets = frequent_itemsets(TINY, min_support=0.4)
    assert list(sets.columns) == ITEMSET_COLUMNS
    assert sets["itemset"].tolist() == [["a"], ["b"], ["c"], ["a", "b"], ["a", "c"]]
    assert sets["itemset_length"].tolist() == [1, 1, 1, 2, 2]
    assert sets["basket_count"].tolist() == [4, 4, 2, 3, 2]
    assert sets["support"].tolist() == pytest.approx([0.8, 0.8, 0.4, 0.6, 0.4], abs=1e-12)
    assert (sets["n_baskets"] == 5).all()


def test_tiny_rules_by_hand():
    rules = mine_rules(TINY, min_support=0.4, min_confidence=0.5)
    assert list(rules.columns) == RULE_COLUMNS
    assert [(r.antecedent, r.consequent) for r in rules.itertuples()] == [
        (["a"], "b"),
        (["a"], "c"),
        (["b"], "a"),
        (["c"], "a"),
    ]
    expected = {
        # a → b: 3 of a's 4 baskets; supp(b) 0.8
        "rule_basket_count": [3, 2, 3, 2],
        "antecedent_basket_count": [4, 4, 4, 2],
        "consequent_basket_count": [4, 2, 4, 4],
        "n_baskets": [5, 5, 5, 5],
        "antecedent_length": [1, 1, 1, 1],
        "support": [0.6, 0.4, 0.6, 0.4],
        "confidence": [0.75, 0.5, 0.75, 1.0],
        "lift": [0.75 / 0.8, 0.5 / 0.4, 0.75 / 0.8, 1.0 / 0.8],  # 0.9375, 1.25, 0.9375, 1.25
        "leverage": [0.6 - 0.64, 0.4 - 0.32, 0.6 - 0.64, 0.4 - 0.32],  # -0.04, 0.08, ...
        "conviction": [0.2 / 0.25, 0.6 / 0.5, 0.2 / 0.25, np.inf],  # 0.8, 1.2, 0.8, inf
        "antecedent_support": [0.8, 0.8, 0.8, 0.4],
        "consequent_support": [0.8, 0.4, 0.8, 0.8],
    }
    for column, values in expected.items():
        assert rules[column].tolist() == pytest.approx(values, abs=1e-12), column


def test_storage_turns_infinite_conviction_into_null():
    rules = mine_rules(TINY, min_support=0.4, min_confidence=0.5)
    table = rules_for_storage(rules)
    assert table.column_names == RULE_COLUMNS
    con = duckdb.connect()
    con.register("rules", table)
    got = con.execute(
        "select antecedent, consequent, conviction from rules order by antecedent, consequent"
    ).fetchall()
    assert got == [
        (["a"], "b", 0.8),
        (["a"], "c", pytest.approx(1.2)),
        (["b"], "a", 0.8),
        (["c"], "a", None),
    ]
    types = dict(con.execute("select column_name, column_type from (describe rules)").fetchall())
    assert types["antecedent"] == "VARCHAR[]" and types["consequent"] == "VARCHAR"


def test_storage_of_empty_rules_keeps_types():
    table = rules_for_storage(mine_rules(TINY.iloc[:0], min_support=0.4, min_confidence=0.5))
    assert table.num_rows == 0
    assert str(table.schema.field("antecedent").type) == "list<item: string>"
    assert str(table.schema.field("conviction").type) == "double"


# --------------------------------------------------------------------------- #
# thresholds


def test_min_basket_count_snaps_float_noise():
    assert 0.07 * 100 > 7  # 7.000000000000001 in binary: naive ceil would say 8
    assert min_basket_count(0.07, 100) == 7
    assert min_basket_count(0.57, 100) == 57  # 56.99999999999999
    assert min_basket_count(0.075, 100) == 8
    assert min_basket_count(0.01, 2900) == 29
    assert min_basket_count(1e-9, 100) == 1  # never below one basket
    assert min_basket_count(1.0, 12345) == 12345


def _boundary_pairs() -> pd.DataFrame:
    """100 baskets: a in 7, c in 10 (a ⊂ c), b in 6; every basket has its own filler item."""
    rows = [(f"r{i:03d}", f"filler{i:03d}") for i in range(100)]
    rows += [(f"r{i:03d}", "a") for i in range(7)]
    rows += [(f"r{i:03d}", "c") for i in range(10)]
    rows += [(f"r{i:03d}", "b") for i in range(50, 56)]
    rows += [(f"r{i:03d}", "c") for i in range(50, 55)]  # {b, c} in 5 baskets
    return pd.DataFrame(rows, columns=["basket_id", "item"])


def test_support_threshold_boundary():
    sets = frequent_itemsets(_boundary_pairs(), min_support=0.07)  # 7 baskets
    got = {tuple(s): c for s, c in zip(sets["itemset"], sets["basket_count"], strict=True)}
    assert got == {("a",): 7, ("c",): 15, ("a", "c"): 7}  # b (6) and {b, c} (5) excluded
    sets = frequent_itemsets(_boundary_pairs(), min_support=0.06)  # 6 baskets: b now in
    assert ["b"] in sets["itemset"].tolist() and ["b", "c"] not in sets["itemset"].tolist()


def test_confidence_threshold_boundary():
    pairs = _boundary_pairs()
    pairs = pairs[~pairs["basket_id"].between("r050", "r055")]  # c now in exactly 10
    # c → a has confidence 7/10; 0.7 × 10 = 7.000000000000001, still kept
    rules = mine_rules(pairs, min_support=0.05, min_confidence=0.7)
    assert [(r.antecedent, r.consequent) for r in rules.itertuples()] == [
        (["a"], "c"),
        (["c"], "a"),
    ]
    assert rules["confidence"].tolist() == pytest.approx([1.0, 0.7])
    rules = mine_rules(pairs, min_support=0.05, min_confidence=0.7000001)
    assert [(r.antecedent, r.consequent) for r in rules.itertuples()] == [(["a"], "c")]


# --------------------------------------------------------------------------- #
# max_len and degenerate inputs


def test_max_len_respected(planted):
    full = frequent_itemsets(planted, min_support=0.0123, max_len=10)
    assert full["itemset_length"].max() >= 3
    for max_len in (1, 2, 3):
        sets = frequent_itemsets(planted, min_support=0.0123, max_len=max_len)
        assert sets["itemset_length"].max() == max_len
        expected = full[full["itemset_length"] <= max_len].reset_index(drop=True)
        pd.testing.assert_frame_equal(sets, expected)
        rules = mine_rules(planted, min_support=0.0123, min_confidence=0.1, max_len=max_len)
        if max_len == 1:
            assert rules.empty and list(rules.columns) == RULE_COLUMNS
        else:
            assert rules["antecedent_length"].max() == max_len - 1


def _assert_empty(pairs, **kwargs):
    sets = frequent_itemsets(pairs, min_support=0.5, **kwargs)
    rules = mine_rules(pairs, min_support=0.5, min_confidence=0.1, **kwargs)
    assert sets.empty and rules.empty
    assert list(sets.columns) == ITEMSET_COLUMNS and list(rules.columns) == RULE_COLUMNS
    assert sets.dtypes.astype(str).to_dict() == {
        "itemset": "object",
        "itemset_length": "int64",
        "basket_count": "int64",
        "support": "float64",
        "n_baskets": "int64",
    }
    dtypes = rules.dtypes.astype(str).to_dict()
    assert dtypes["antecedent"] == "object"
    assert all(dtypes[c] == "int64" for c in [*RULE_COLUMNS[2:7], "consequent_rank"])
    assert all(dtypes[c] == "float64" for c in RULE_COLUMNS[7:-1])


def test_empty_input():
    _assert_empty(
        pd.DataFrame({"basket_id": pd.Series([], dtype=str), "item": pd.Series([], dtype=str)})
    )


def test_only_null_items_is_empty():
    _assert_empty(pd.DataFrame({"basket_id": ["x", "y"], "item": [None, None]}))


def test_no_frequent_items():
    pairs = pd.DataFrame({"basket_id": list("abcd"), "item": ["p", "q", "r", "s"]})
    _assert_empty(pairs)


def test_custom_column_names_and_integer_items():
    pairs = pd.DataFrame({"receipt": [1, 1, 2, 2, 3], "product": [10, 20, 10, 20, 30]})
    rules = mine_rules(
        pairs, min_support=0.5, min_confidence=0.5, basket_col="receipt", item_col="product"
    )
    assert [(r.antecedent, r.consequent) for r in rules.itertuples()] == [([10], 20), ([20], 10)]
    assert rules["consequent"].dtype == np.int64
    assert rules["lift"].tolist() == pytest.approx([1.5, 1.5])


def test_one_basket():
    pairs = pd.DataFrame({"basket_id": ["only"] * 3, "item": ["z", "x", "y"]})
    sets = frequent_itemsets(pairs, min_support=0.9)
    assert sets["itemset"].tolist() == [
        ["x"],
        ["y"],
        ["z"],
        ["x", "y"],
        ["x", "z"],
        ["y", "z"],
        ["x", "y", "z"],
    ]
    assert (sets["support"] == 1.0).all()
    rules = mine_rules(pairs, min_support=0.9, min_confidence=0.9)
    assert len(rules) == 9  # 3 pairs × 2 directions + 3 from the triple
    assert rules["antecedent_length"].tolist() == [1] * 6 + [2] * 3
    assert (rules["confidence"] == 1.0).all() and (rules["lift"] == 1.0).all()
    assert (rules["leverage"] == 0.0).all() and np.isinf(rules["conviction"]).all()


def test_identical_baskets():
    pairs = pd.DataFrame({"basket_id": [1, 1, 2, 2, 3, 3, 4, 4], "item": ["y", "x"] * 4})
    rules = mine_rules(pairs, min_support=1.0, min_confidence=1.0)
    assert [(r.antecedent, r.consequent) for r in rules.itertuples()] == [
        (["x"], "y"),
        (["y"], "x"),
    ]
    assert rules["support"].tolist() == [1.0, 1.0] and rules["lift"].tolist() == [1.0, 1.0]
    assert np.isinf(rules["conviction"]).all()


def test_numeric_strings_from_dbt_vars_accepted():
    # dbt hands var values over as strings
    got = mine_rules(TINY, min_support="0.4", min_confidence="0.5", max_len="10")
    pd.testing.assert_frame_equal(got, mine_rules(TINY, min_support=0.4, min_confidence=0.5))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="min_support"):
        frequent_itemsets(TINY, min_support=0.0)
    with pytest.raises(ValueError, match="min_support"):
        frequent_itemsets(TINY, min_support=1.5)
    with pytest.raises(ValueError, match="min_confidence"):
        mine_rules(TINY, min_support=0.4, min_confidence=-0.1)
    with pytest.raises(ValueError, match="max_len"):
        frequent_itemsets(TINY, min_support=0.4, max_len=0)
    with pytest.raises(ValueError, match="max_len"):
        frequent_itemsets(TINY, min_support=0.4, max_len=2.5)
    with pytest.raises(ValueError, match="min_support"):
        frequent_itemsets(TINY, min_support="lots")
    with pytest.raises(KeyError, match="basket_id"):
        frequent_itemsets(TINY.rename(columns={"basket_id": "receipt"}), min_support=0.4)


def test_memory_saving_paths_give_identical_results(planted, monkeypatch):
    """The vectorised pair block and the dense bitset build have slower, leaner twins."""
    import xsell.ml.rules as rules_module

    fast = mine_rules(planted, min_support=0.0123, min_confidence=0.1)
    monkeypatch.setattr(rules_module, "_PAIR_BLOCK_WORDS", 0)
    monkeypatch.setattr(rules_module, "_DENSE_BYTES", 0)
    lean = mine_rules(planted, min_support=0.0123, min_confidence=0.1)
    pd.testing.assert_frame_equal(fast, lean)


def test_levels_are_mined_separately_with_their_own_support():
    from xsell.ml.rules import itemsets_by_level, rules_by_level

    items = pd.DataFrame(
        {
            "basket_id": ["1", "1", "2", "2", "3", "1", "2", "3"],
            "item_level": ["product"] * 5 + ["category"] * 3,
            "item": ["a", "b", "a", "b", "c", "X", "X", "X"],
        }
    )
    itemsets = itemsets_by_level(items, min_support={"product": 0.5, "category": 1.0})
    frame = itemsets.to_pandas()
    assert frame[frame.item_level == "product"]["itemset"].map(tuple).tolist() == [
        ("a",), ("b",), ("a", "b")
    ]
    assert frame[frame.item_level == "category"]["basket_count"].tolist() == [3]
    rules = rules_by_level(items, min_support=0.5, min_confidence=0.9).to_pandas()
    assert rules[["item_level", "consequent", "confidence"]].values.tolist() == [
        ["product", "b", 1.0], ["product", "a", 1.0]
    ]
    assert rules["conviction"].isna().all()  # confidence 1: infinite, stored as NULL
    empty = rules_by_level(items.iloc[:0], min_support=0.5, min_confidence=0.1)
    assert empty.num_rows == 0 and empty.schema.field("antecedent").type.value_type == "string"
    with pytest.raises(KeyError, match="no min_support for item level 'category'"):
        itemsets_by_level(items, min_support={"product": 0.5})


# --------------------------------------------------------------------------- #
# the stored tables: built straight into Arrow, rules derived from the itemsets


def _two_levels(planted: pd.DataFrame) -> pd.DataFrame:
    """The planted baskets at product level plus a coarser 'category' level (first letter
    + tens digit), as int_basket_items holds them."""
    category = planted.assign(item="C" + planted["item"].str[1])
    return pd.concat(
        [planted.assign(item_level="product"), category.assign(item_level="category")],
        ignore_index=True,
    )


def test_level_tables_equal_the_frame_api(planted):
    """rules_by_level / itemsets_by_level build Arrow directly; their rows must equal the
    pandas API (checked against mlxtend above) passed through the storage functions."""
    from xsell.ml.rules import itemsets_by_level, itemsets_for_storage, rules_by_level

    items = _two_levels(planted)
    support = {"product": 0.0123, "category": 0.05}
    rules = rules_by_level(items, min_support=support, min_confidence=0.1)
    itemsets = itemsets_by_level(items, min_support=support)
    for level in ("category", "product"):
        pairs = items.loc[items.item_level == level, ["basket_id", "item"]]
        want_rules = rules_for_storage(
            mine_rules(pairs, min_support=support[level], min_confidence=0.1)
        )
        got_rules = rules.filter(pc.equal(rules["item_level"], level)).drop_columns(
            "item_level"
        )
        assert got_rules.num_rows > 100
        assert got_rules.equals(want_rules), level
        want_sets = itemsets_for_storage(frequent_itemsets(pairs, min_support=support[level]))
        got_sets = itemsets.filter(pc.equal(itemsets["item_level"], level))
        assert got_sets.drop_columns("item_level").equals(want_sets), level


def test_rules_from_stored_itemsets_equal_mining_again(planted):
    """fct_association_rules derives its rules from fct_frequent_itemsets instead of
    mining the baskets a second time: the result must be identical, row for row."""
    from xsell.ml.rules import itemsets_by_level, rules_by_level, rules_from_itemsets

    items = _two_levels(planted)
    support = {"product": 0.0123, "category": 0.05}
    for min_confidence in (0.0, 0.2137, 1.0):
        mined = rules_by_level(items, min_support=support, min_confidence=min_confidence)
        itemsets = itemsets_by_level(items, min_support=support)
        # the mart may come back in any row order: shuffle it
        shuffled = itemsets.take(np.random.default_rng(3).permutation(itemsets.num_rows))
        derived = rules_from_itemsets(shuffled, min_confidence=min_confidence)
        assert mined.num_rows > 0
        assert derived.equals(mined), min_confidence


def test_rules_from_itemsets_edge_cases(planted):
    from xsell.ml.rules import itemsets_by_level, rules_by_level, rules_from_itemsets

    items = _two_levels(planted)
    itemsets = itemsets_by_level(items, min_support=0.05)
    # an itemset table without its single-item rows is not every frequent itemset
    pairs_only = itemsets.filter(pc.greater(itemsets["itemset_length"], 1))
    with pytest.raises(ValueError, match="no single-item row"):
        rules_from_itemsets(pairs_only, min_confidence=0.1)
    empty = rules_from_itemsets(itemsets.slice(0, 0), min_confidence=0.1)
    want = rules_by_level(items.iloc[:0], min_support=0.05, min_confidence=0.1)
    assert empty.num_rows == 0 and empty.schema.equals(want.schema)
    with pytest.raises(KeyError, match="itemset"):
        rules_from_itemsets(itemsets.drop_columns("itemset"), min_confidence=0.1)


# --------------------------------------------------------------------------- #
# pruning: a set a person can read (RulePruning)


# fmt: off
# 22 baskets. b comes with a; e is noise beside a; f, with a, makes b certain.
PRUNING_BASKETS = pd.DataFrame(
    [(f"r{i:02d}", item) for i, items in enumerate(
        [("a", "b")] * 6 + [("a",)] * 2 + [("a", "b", "e")] * 3 + [("a", "e")]
        + [("a", "b", "f")] * 2 + [("e",)] * 2 + [("f",)] * 2 + [("c",)] * 4
    ) for item in items],
    columns=["basket_id", "item"],
)
# fmt: on


def _kept(pruning, **kwargs) -> dict:
    from xsell.ml.rules import mine_rules

    rules = mine_rules(PRUNING_BASKETS, min_support=0.01, min_confidence=0.0, pruning=pruning,
                       **kwargs)
    return {("".join(r.antecedent), r.consequent): r.consequent_rank for r in rules.itertuples()}


def test_pruning_keeps_exactly_the_rules_its_definition_says():
    """Counts: a 14, b 11, e 6, f 4 of 22; ab 11, ae 4, af 2, be 3, bf 2, abe 3, abf 2.

    lift = 1 exactly (not kept at min_lift 1): e → b (3/6 vs 11/22), f → b, b → e, b → f,
    ab → e, ab → f. Lift below 1: f → a, a → f. Redundant at gain 0: ae → b (3/4 below
    a → b 11/14), be → a and bf → a (1, as b → a), ab → e (3/11 below a → e 4/14),
    ab → f (2/11 = b → f). Kept: a → b, b → a, a → e, e → a, and af → b, whose 1 is
    3/14 above its best sub-rule a → b (f → b is 1/2).
    """
    from xsell.ml.rules import RulePruning

    readable = RulePruning(min_lift=1, min_count=1, min_confidence_gain=0, top_n_per_consequent=0)
    assert _kept(readable) == {
        ("a", "b"): 2, ("b", "a"): 1, ("a", "e"): 1, ("e", "a"): 2, ("af", "b"): 1,
    }
    # the gain must be strictly above the margin: 3/14 is not above 3/14 (decided on
    # integers: 2·14 − 11·2 = 6 receipts² against 3/14 · 2 · 14 = 6.000000000000001)
    assert ("af", "b") in _kept(RulePruning(1, 1, 0.2, 0))
    assert ("af", "b") not in _kept(RulePruning(1, 1, 3 / 14, 0))
    assert ("af", "b") not in _kept(RulePruning(1, 1, 0.25, 0))
    # a negative margin lets a shorter rule win by that much: ae → b is 0.0357 below a → b
    assert ("ae", "b") in _kept(RulePruning(1, 1, -0.04, 0))
    assert ("ae", "b") not in _kept(RulePruning(1, 1, -0.03, 0))
    # a minimum count of 3 receipts drops af → b (2)
    assert _kept(RulePruning(1, 3, 0, 0)).keys() == {("a", "b"), ("b", "a"), ("a", "e"),
                                                       ("e", "a")}
    # lift above 1.5: a → b and b → a (11/7 = 1.571), af → b (2); not a → e, e → a (1.048)
    assert _kept(RulePruning(1.5, 1, 0, 0)).keys() == {("a", "b"), ("b", "a"), ("af", "b")}
    # the best rule per consequent: af → b (1) over a → b (11/14); b → a over e → a
    assert _kept(RulePruning(1, 1, 0, 1)) == {("af", "b"): 1, ("b", "a"): 1, ("a", "e"): 1}


def test_keep_all_is_the_unpruned_set_with_ranks():
    from xsell.ml.rules import KEEP_ALL, RulePruning

    every = _kept(KEEP_ALL)
    assert len(every) == 16  # 5 pairs (ab ae af be bf) x 2 directions + 2 triples x 3
    assert _kept(RulePruning()) == every
    # ranks by confidence, then receipts: consequent b: af (1) > a (11/14) > ae (3/4) >
    # e (1/2, 3 receipts) > f (1/2, 2 receipts); consequent a: b, be, bf all 1, by receipts
    assert [k for k, _ in sorted(((k, r) for k, r in every.items() if k[1] == "b"),
                                 key=lambda kr: kr[1])] == [
        ("af", "b"), ("a", "b"), ("ae", "b"), ("e", "b"), ("f", "b")]
    assert {k: r for k, r in every.items() if k[1] == "a"} == {
        ("b", "a"): 1, ("be", "a"): 2, ("bf", "a"): 3, ("e", "a"): 4, ("f", "a"): 5}
    # ties in confidence and receipts: shorter antecedent first, then antecedent items
    tie = pd.DataFrame({"basket_id": [1, 1, 1, 2, 2, 2], "item": ["x", "y", "z"] * 2})
    rules = mine_rules(tie, min_support=0.5, min_confidence=0.0)
    z = rules[rules.consequent == "z"].sort_values("consequent_rank")
    assert z["antecedent"].tolist() == [["x"], ["y"], ["x", "y"]]
    assert z["consequent_rank"].tolist() == [1, 2, 3]


def _reference_pruning(itemsets: dict, n: int, min_confidence: float, pruning) -> dict:
    """The pruning definition written out directly: every rule of every frequent
    itemset, every nonempty proper subset of its antecedent, exact fractions."""
    from fractions import Fraction
    from itertools import combinations

    counts = {k: round(v * n) for k, v in itemsets.items()}
    lift_min = Fraction(str(pruning.min_lift))
    gain_min = Fraction(str(pruning.min_confidence_gain))
    rules = {}
    for itemset, c in counts.items():
        for y in itemset:
            x = itemset - {y}
            if not x:
                continue
            a, b = counts[x], counts[frozenset([y])]
            confidence = Fraction(c, a)
            if confidence < Fraction(str(min_confidence)):
                continue
            if not (Fraction(c * n, a * b) > lift_min and c >= pruning.min_count):
                continue
            subs = [Fraction(counts[frozenset(s) | {y}], counts[frozenset(s)])
                    for k in range(1, len(x)) for s in combinations(sorted(x), k)]
            if pruning.min_confidence_gain > -1 and subs and not confidence - max(subs) > gain_min:
                continue
            rules[(tuple(sorted(x)), y)] = (confidence, c)
    ranked = {}
    for y in {key[1] for key in rules}:
        mine = sorted((key for key in rules if key[1] == y),
                      key=lambda k: (-rules[k][0], -rules[k][1], len(k[0]), k[0]))
        for rank, key in enumerate(mine, start=1):
            if not pruning.top_n_per_consequent or rank <= pruning.top_n_per_consequent:
                ranked[key] = rank
    return ranked


@pytest.mark.parametrize(
    ("min_lift", "min_count", "gain", "top_n"),
    [(1, 1, 0, 0), (1, 40, 0.05, 0), (1.2, 1, 0.01, 3), (0, 1, -1, 2), (1, 1, 0.0, 1)],
)
def test_pruning_matches_its_definition_on_mlxtend_itemsets(planted, min_lift, min_count, gain,
                                                            top_n):
    """The pruned rules of the planted baskets equal the definition applied, with exact
    fractions, to mlxtend's frequent itemsets (an independent miner)."""
    from xsell.ml.rules import RulePruning

    pruning = RulePruning(min_lift, min_count, gain, top_n)
    min_support, min_confidence = 0.0123, 0.2137
    n = planted["basket_id"].nunique()
    itemsets, _ = _reference(planted, min_support, min_confidence, 10, "apriori")
    want = _reference_pruning(itemsets, n, min_confidence, pruning)
    rules = mine_rules(planted, min_support=min_support, min_confidence=min_confidence,
                       pruning=pruning)
    got = {(tuple(r.antecedent), r.consequent): r.consequent_rank for r in rules.itertuples()}
    assert len(want) > 5
    assert got == want
    every = mine_rules(planted, min_support=min_support, min_confidence=min_confidence)
    if (min_lift, min_count, gain, top_n) != (0, 1, -1, 2):
        assert len(got) < len(every)
    # a kept rule's metrics are those of the unpruned set
    merged = rules.merge(every.assign(antecedent=every["antecedent"].map(tuple)),
                         left_on=[rules["antecedent"].map(tuple), "consequent"],
                         right_on=["antecedent", "consequent"], suffixes=("", "_all"))
    assert len(merged) == len(rules)
    for metric in ("support", "confidence", "lift", "leverage"):
        assert (merged[metric] == merged[f"{metric}_all"]).all()


def test_pruning_is_the_same_on_every_path(planted):
    """mine_rules, rules_by_level and rules_from_itemsets prune the same rules, and the
    counts of each step add up."""
    from xsell.ml.rules import RulePruning, itemsets_by_level, rules_by_level, rules_from_itemsets

    items = _two_levels(planted)
    support = {"product": 0.0123, "category": 0.05}
    pruning = RulePruning(1, 20, 0.02, 5)
    mined = rules_by_level(items, min_support=support, min_confidence=0.1, pruning=pruning)
    counts = {}
    derived = rules_from_itemsets(itemsets_by_level(items, min_support=support),
                                  min_confidence=0.1, pruning=pruning, counts=counts)
    assert derived.equals(mined)
    for level in ("category", "product"):
        pairs = items.loc[items.item_level == level, ["basket_id", "item"]]
        frame = rules_for_storage(mine_rules(pairs, min_support=support[level],
                                             min_confidence=0.1, pruning=pruning))
        part = mined.filter(pc.equal(mined["item_level"], level)).drop_columns("item_level")
        assert part.equals(frame), level
        steps = counts[level]
        every = mine_rules(pairs, min_support=support[level], min_confidence=0.1)
        assert steps.mined == len(every)
        assert steps.mined >= steps.lift_and_count >= steps.not_redundant >= steps.kept
        assert steps.kept == part.num_rows > 0
        assert steps.lift_and_count == int(((every.lift > 1)
                                            & (every.rule_basket_count >= 20)).sum())
    assert "kept (best 5 per consequent)" in counts["product"].describe(pruning)


def test_pruning_thresholds_are_checked():
    from xsell.ml.rules import RulePruning

    assert RulePruning("1", "20", "0.05", "10") == RulePruning(1.0, 20, 0.05, 10)
    with pytest.raises(ValueError, match="min_lift"):
        RulePruning(min_lift=-0.5)
    with pytest.raises(ValueError, match="min_count"):
        RulePruning(min_count=0)
    with pytest.raises(ValueError, match="min_count"):
        RulePruning(min_count=2.5)
    with pytest.raises(ValueError, match="min_confidence_gain"):
        RulePruning(min_confidence_gain=-1.5)
    with pytest.raises(ValueError, match="top_n_per_consequent"):
        RulePruning(top_n_per_consequent="many")


# --------------------------------------------------------------------------- #
# names


def test_names_come_from_the_products_table():
    import pyarrow as pa

    from xsell.ml.rules import with_item_names

    rules = pa.table({
        "item_level": ["product", "product", "category"],
        "antecedent": [["p1", "p2"], ["p3"], ["BEDS", "LAMPS"]],
        "consequent": ["p4", "p1", "TEXTILES"],
        "lift": [2.0, 1.5, 1.2],
    })
    products = pa.table({
        "product_id": ["p1", "p2", "p3", "p4", "p9"],
        "product_name": ["Mug", "Tea towel", None, "Mug", "TEXTILES"],  # p1, p4 share a name
    })
    named = with_item_names(rules, products)
    assert named.column_names == ["item_level", "antecedent", "antecedent_names", "consequent",
                                  "consequent_name", "rule_label", "lift"]
    assert named["antecedent_names"].to_pylist() == [["Mug", "Tea towel"], [None],
                                                     ["BEDS", "LAMPS"]]
    assert named["consequent_name"].to_pylist() == ["Mug", "Mug", "TEXTILES"]
    assert named["rule_label"].to_pylist() == [
        "Mug (p1) + Tea towel → Mug (p4)",  # a shared name carries its id
        "p3 → Mug (p1)",  # no name: the id
        "BEDS + LAMPS → TEXTILES",  # categories name themselves, never a product's name
    ]
    # a slice (as Arrow hands out chunks) keeps each rule's own items
    assert with_item_names(rules.slice(1), products)["antecedent_names"].to_pylist() == [
        [None], ["BEDS", "LAMPS"]]
    empty = with_item_names(rules.slice(0, 0), products)
    assert empty.num_rows == 0 and "rule_label" in empty.column_names
    with pytest.raises(ValueError, match="more than one row"):
        with_item_names(rules, pa.concat_tables([products, products]))


def test_truncated_levels_are_named():
    import pyarrow as pa

    from xsell.ml.rules import levels_at_max_length

    itemsets = pa.table({"item_level": ["product", "product", "category"],
                         "itemset_length": [1, 3, 2]})
    assert levels_at_max_length(itemsets, 3) == ["product"]
    assert levels_at_max_length(itemsets, "2") == ["category", "product"]
    assert levels_at_max_length(itemsets, 4) == []
    assert levels_at_max_length(itemsets.slice(0, 0), 2) == []
