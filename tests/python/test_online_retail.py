"""End to end on real data: UCI Online Retail -> xsell import -> xsell run.

Figures are checked against independent queries of the source CSV and against the
counts commonly published for this data set. Skips when ../shared/datasets is absent.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from support import dataset_path, run_xsell

pytestmark = [pytest.mark.dbt, pytest.mark.dataset]


@pytest.fixture(scope="module")
def source():
    return dataset_path("online_retail", "online_retail.csv.gz")


@pytest.fixture(scope="module")
def build(source, tmp_path_factory):
    work = tmp_path_factory.mktemp("online_retail")
    raw, db = work / "raw", work / "build.duckdb"
    done = run_xsell(["import", "online-retail", str(source), "--out", str(raw)], work)
    assert done.returncode == 0, done.stderr
    done = run_xsell(["run", "--raw-dir", str(raw), "--build-db", str(db), "--no-generate"], work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return db


def scalar(db, sql: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def frame(db, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()


def from_source(source, where: str, select: str = "count(*)"):
    with duckdb.connect() as con:
        return con.execute(
            f"select {select} from read_csv('{source}', header = true, all_varchar = true) "
            f"where {where}"
        ).fetchone()[0]


def test_every_source_line_is_staged_or_quarantined_with_its_reason(build, source):
    staged = scalar(build, "select count(*) from staging.stg_pos__transactions")
    reasons = dict(frame(build, "select rejection_reason, count(*) as n from "
                                "staging.quarantine_pos__transactions group by 1").values)
    assert staged + sum(reasons.values()) == 541_909
    # The only defects in this file: 2,515 zero prices and 2 negative ("Adjust bad debt").
    assert reasons == {"non_positive_unit_price": 2_517}
    assert from_source(source, "cast(UnitPrice as double) <= 0") == 2_517


def test_cleaned_counts_match_the_published_figures(build, source):
    """Published: 397,924 lines with a customer id and a positive quantity, from 4,339
    customers. Staging also quarantines their zero-price lines; the difference is
    exactly those lines (and customers left with none)."""
    published_lines, published_customers = 397_924, 4_339
    zero_price_member_lines = from_source(
        source, "CustomerID is not null and cast(Quantity as int) > 0 "
                "and cast(UnitPrice as double) <= 0")
    lines = scalar(build, "select count(*) from staging.stg_pos__transactions "
                          "where customer_id is not null and quantity > 0")
    assert from_source(
        source, "CustomerID is not null and cast(Quantity as int) > 0") == published_lines
    assert lines == published_lines - zero_price_member_lines
    customers = scalar(build, "select count(distinct customer_id) from "
                              "staging.stg_pos__transactions where quantity > 0")
    with duckdb.connect() as con:
        customers_only_zero_priced = con.execute(
            f"""
            select count(*) from (
                select CustomerID
                from read_csv('{source}', header = true, all_varchar = true)
                where CustomerID is not null and cast(Quantity as int) > 0
                group by CustomerID
                having max(cast(UnitPrice as double)) <= 0
            )
            """
        ).fetchone()[0]
    assert customers == published_customers - customers_only_zero_priced


def test_revenue_is_the_source_revenue_of_positive_prices(build, source):
    expected = from_source(source, "cast(UnitPrice as double) > 0",
                           "sum(cast(Quantity as int) * cast(UnitPrice as double))")
    revenue = scalar(build, "select sum(revenue) from marts.fct_revenue_mix")
    assert revenue == pytest.approx(expected, abs=0.01)
    assert expected == pytest.approx(9_747_747.93 + 2 * 11_062.06, abs=0.01)


def test_repeated_lines_are_flagged_not_dropped(build, source):
    """A line repeating an earlier line of its invoice in every contract value is flagged,
    kept and counted. Recomputed on the source: positive-price rows (the others are
    quarantined) equal to an earlier one in invoice, country, customer, stock code,
    quantity, price and time. (The file's 5,268 exact duplicates also count rows that
    differ only in Description, which is not a contract column, and zero-price ones.)"""
    with duckdb.connect() as con:
        expected = con.execute(
            f"""
            select count(*) from (
                select row_number() over (
                    partition by InvoiceNo, Country, CustomerID, StockCode, Quantity,
                        UnitPrice, InvoiceDate
                ) as copy_number
                from read_csv('{source}', header = true, all_varchar = true)
                where cast(UnitPrice as double) > 0
            )
            where copy_number > 1
            """
        ).fetchone()[0]
    repeated = scalar(build, "select count(*) from staging.stg_pos__transactions "
                             "where is_repeated_line")
    assert repeated == expected == 5_265
    staged = scalar(build, "select count(*) from staging.stg_pos__transactions")
    assert staged == 539_392  # repeated lines are kept


@pytest.mark.parametrize(
    ("mart", "expect_rows"),
    [
        ("fct_attach_rates", True),
        ("fct_addon_lift", True),
        ("fct_association_rules", True),
        ("fct_frequent_itemsets", True),
        ("fct_product_affinity", True),
        ("fct_revenue_mix", True),
        ("fct_impulse_by_hour", True),
        ("fct_restaurant_conversion", False),
        ("fct_restaurant_timing", False),
        ("fct_promotion_uplift", False),
    ],
)
def test_mart_families_are_filled_where_the_data_allows(build, mart, expect_rows):
    rows = scalar(build, f"select count(*) from marts.{mart}")
    assert (rows > 0) == expect_rows


def test_category_rules_equal_mlxtend_on_the_staged_baskets(build):
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    baskets = frame(build, "select basket_id, item from intermediate.int_basket_items "
                           "where item_level = 'category'")
    onehot = pd.crosstab(baskets.basket_id, baskets.item) > 0
    # A rule's metrics depend only on its own itemset's counts, so the mart's rules from
    # itemsets of up to 3 items must equal mlxtend's with max_len=3 (the full max_len=10
    # enumeration takes mlxtend minutes on these dense category baskets).
    itemsets = fpgrowth(onehot, min_support=0.01, use_colnames=True, max_len=3)
    reference = association_rules(itemsets, metric="confidence", min_threshold=0.1)
    reference = reference[reference["consequents"].map(len) == 1]
    reference = reference.assign(
        antecedent=reference["antecedents"].map(lambda s: ", ".join(sorted(s))),
        consequent=reference["consequents"].map(lambda s: next(iter(s))),
    ).set_index(["antecedent", "consequent"]).sort_index()
    n = len(onehot)
    # 0.01 x n must not be an integer for mlxtend's float threshold to agree with ceil().
    assert (0.01 * n) % 1 != 0
    # The full rule set (the pruning vars at their keep-everything values), derived from
    # the mart of itemsets as fct_association_rules derives it, equals mlxtend's.
    from xsell.ml.rules import rules_from_itemsets

    every = rules_from_itemsets(itemsets_table(build), min_confidence=0.1).to_pandas()
    every = every[(every.item_level == "category") & (every.antecedent_length <= 2)]
    every = every.assign(antecedent=every["antecedent"].map(", ".join)).set_index(
        ["antecedent", "consequent"]).sort_index()
    assert list(every.index) == list(reference.index)
    assert len(every) > 100
    # The mart keeps a pruned part of them, every figure as mlxtend's.
    mart = frame(build, "select * from marts.fct_association_rules "
                        "where item_level = 'category' and antecedent_length <= 2")
    mart = mart.assign(antecedent=mart["antecedent"].map(", ".join)).set_index(
        ["antecedent", "consequent"]).sort_index()
    assert len(mart) > 20 and mart.index.isin(reference.index).all()
    for figures in (every, mart):
        for ours, theirs in [("support", "support"), ("confidence", "confidence"),
                             ("lift", "lift"), ("leverage", "leverage")]:
            np.testing.assert_allclose(figures[ours], reference.loc[figures.index, theirs],
                                       rtol=0, atol=1e-9)


def itemsets_table(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql("select * from marts.fct_frequent_itemsets").to_arrow_table()


def test_rules_mart_is_the_documented_pruning(build):
    """dbt_project.yml: 910,522 rules on this file, 7,218 kept by default (lift > 1, at
    least 5 receipts, a confidence gain above 0.05 over every sub-rule, the 10 best per
    consequent). Checked here against the definition on the itemsets' own counts."""
    from fractions import Fraction
    from itertools import combinations

    from xsell.ml.rules import rules_from_itemsets

    itemsets = itemsets_table(build)
    assert rules_from_itemsets(itemsets, min_confidence=0.1).num_rows == 910_522
    mart = frame(build, "select * from marts.fct_association_rules")
    assert len(mart) == 7_218
    assert mart.groupby("item_level").size().to_dict() == {"category": 160, "product": 7_058}
    assert (mart["lift"] > 1).all() and (mart["rule_basket_count"] >= 5).all()
    assert mart["consequent_rank"].between(1, 10).all()
    counts = {(level, frozenset(items)): count for level, items, count in zip(
        itemsets["item_level"].to_pylist(), itemsets["itemset"].to_pylist(),
        itemsets["basket_count"].to_pylist(), strict=True)}
    longer = mart[mart["antecedent_length"] >= 2]
    assert len(longer) > 1_000
    for rule in longer.itertuples():
        x, y = list(rule.antecedent), rule.consequent
        confidence = Fraction(rule.rule_basket_count, rule.antecedent_basket_count)
        assert confidence == Fraction(counts[(rule.item_level, frozenset([*x, y]))],
                                      counts[(rule.item_level, frozenset(x))])
        best_sub = max(
            Fraction(counts[(rule.item_level, frozenset([*sub, y]))],
                     counts[(rule.item_level, frozenset(sub))])
            for k in range(1, len(x)) for sub in combinations(x, k)
        )
        assert confidence - best_sub > Fraction("0.05"), rule
    # the rank orders each consequent's rules by confidence
    ordered = mart.sort_values(["item_level", "consequent", "consequent_rank"])
    for _, part in ordered.groupby(["item_level", "consequent"]):
        assert list(part["consequent_rank"]) == list(range(1, len(part) + 1))
        assert part["confidence"].is_monotonic_decreasing


def test_rule_names_are_the_product_names(build):
    mismatches = scalar(build, """
        with items as (
            select item_level, consequent as item, consequent_name as item_name
            from marts.fct_association_rules
            union all
            select item_level, unnest(antecedent), unnest(antecedent_names)
            from marts.fct_association_rules
        )
        select count(*) filter (where items.item_name is distinct from
            case when items.item_level = 'product' then products.product_name
            else items.item end)
        from items
        left join intermediate.int_products_classified as products
            on items.item_level = 'product' and items.item = products.product_id
    """)
    assert mismatches == 0
    named = frame(build, "select consequent, consequent_name, rule_label "
                         "from marts.fct_association_rules where item_level = 'product'")
    assert named["consequent_name"].notna().all()  # every product of this file has a name
    # 85123A is the best-selling product of this file
    assert "WHITE HANGING HEART T-LIGHT HOLDER" in set(
        named.loc[named.consequent == "85123A", "consequent_name"])
    assert named["rule_label"].str.contains(" → ").all()


def test_rules_log_says_when_max_itemset_length_cut_them(build):
    log = (build.parent / "logs" / "dbt.log").read_text(encoding="utf-8")
    for level in ("category", "product"):
        assert (f"fct_association_rules: {level} itemsets reached max_itemset_length = 10 "
                f"items, so {level} rules have at most 9 antecedent items") in log
    assert "fct_association_rules: product: 599,140 rules;" in log
    notes = dict(frame(build, "select analysis, note from marts.fct_analysis_coverage "
                              "where analysis like 'association_rules%'").values)
    assert all("maximum length of 10 items" in note for note in notes.values()), notes


def test_product_rules_exist_and_respect_the_product_threshold(build):
    rules = frame(build, "select * from marts.fct_association_rules "
                         "where item_level = 'product'")
    assert len(rules) > 1_000
    n = rules["n_baskets"].iloc[0]
    assert rules["rule_basket_count"].min() >= np.ceil(0.003 * n)
