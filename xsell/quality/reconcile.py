"""Cross-table checks: figures that two tables of the build must agree on.

Each check reads small aggregates from the build (DuckDB does the sums), lines them up
in pandas and returns one row per compared item: the two values and `excess`, how far
they are apart beyond the tolerance (0 = they agree). The rows form the frame that the
suite `checks.reconciliation` validates (one expectation per check: excess = 0), so a
broken reconciliation fails the gate and shows in Data Docs like any other expectation.

A check whose tables are missing from the build yields no rows (the missing table
fails its own suite); so does a check of a table that is empty because its analysis did
not run on this data (marts.fct_analysis_coverage), with the coverage's reason. A figure
of such a table that a check compares among others is left out of the comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pandas as pd

FRAME_COLUMNS = ["check", "item", "left_value", "right_value", "excess"]

# Money is summed in a different order on each side: allow a cent plus float noise.
MONEY_TOLERANCE = 0.01
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Check:
    name: str
    rule: str  # what must hold, in words; also the expectation's description in Data Docs
    tables: tuple[str, ...]  # all must exist for the check to run
    columns: str  # the figures compared
    sides: tuple[str, str]  # what left_value and right_value are
    rows: Callable[[duckdb.DuckDBPyConnection, set[str]], pd.DataFrame]


def _query(con, sql: str) -> pd.DataFrame:
    return con.execute(sql).df()


def _compare(
    name: str, left: pd.DataFrame, right: pd.DataFrame, on: list[str], *, money: bool = False
) -> pd.DataFrame:
    """Outer-join left (column `value`) and right (`value`) on `on`; an item missing on
    one side counts as 0 there, so it shows as a difference."""
    merged = left.merge(right, on=on, how="outer", suffixes=("_left", "_right"))
    if merged.empty:
        return pd.DataFrame(columns=FRAME_COLUMNS)
    merged[["value_left", "value_right"]] = (
        merged[["value_left", "value_right"]].astype("float64").fillna(0.0)
    )
    difference = (merged["value_left"] - merged["value_right"]).abs()
    tolerance = (
        MONEY_TOLERANCE + RELATIVE_TOLERANCE * merged["value_right"].abs() if money else 0.0
    )
    return pd.DataFrame(
        {
            "check": name,
            "item": merged[on].astype(str).agg(" ".join, axis=1) if on else "",
            "left_value": merged["value_left"],
            "right_value": merged["value_right"],
            "excess": (difference - tolerance).clip(lower=0.0),
        }
    )


def _items(name: str, pairs: list[tuple[str, float, float]], *, money: bool = False):
    frame = pd.DataFrame(pairs, columns=["item", "value_left", "value_right"])
    frame["key"] = frame["item"]
    out = _compare(
        name,
        frame[["key", "value_left"]].rename(columns={"value_left": "value"}),
        frame[["key", "value_right"]].rename(columns={"value_right": "value"}),
        ["key"],
        money=money,
    )
    return out


# --- the checks ----------------------------------------------------------------------------


def _attach_family_vs_lift(con, tables) -> pd.DataFrame:
    attach = _query(
        con,
        "select store_id, anchor_family, anchor_receipts as value from marts.fct_attach_rates",
    )
    lift = _query(
        con,
        "select store_id, anchor_family, max(anchor_receipts) as value, "
        "max(anchor_receipts) - min(anchor_receipts) as spread "
        "from marts.fct_addon_lift group by store_id, anchor_family",
    )
    out = _compare(
        "attach_family_receipts_match_lift", attach, lift[["store_id", "anchor_family", "value"]],
        ["store_id", "anchor_family"],
    )
    # rows of one store and family in fct_addon_lift must all carry the same anchor_receipts
    spread = lift.assign(item=lift.store_id.astype(str) + " " + lift.anchor_family.astype(str))
    out["excess"] += out["item"].map(spread.set_index("item")["spread"].astype("float64")
                                      ).fillna(0.0).to_numpy()
    return out


def _attach_all_vs_lift(con, tables) -> pd.DataFrame:
    overall = _query(
        con, "select store_id, anchor_receipts as value from marts.fct_attach_rates_overall"
    )
    families = _query(
        con,
        "select store_id, sum(value) as total, max(value) as largest from ("
        "  select store_id, anchor_family, max(anchor_receipts) as value "
        "  from marts.fct_addon_lift group by store_id, anchor_family) group by store_id",
    )
    merged = overall.merge(families, on="store_id", how="outer").fillna(0.0)
    excess = ((merged["value"] - merged["total"]).clip(lower=0)
              + (merged["largest"] - merged["value"]).clip(lower=0))
    return pd.DataFrame({
        "check": "attach_all_receipts_within_lift_families",
        "item": "store " + merged["store_id"].astype(str),
        "left_value": merged["value"].astype("float64"),
        "right_value": merged["total"].astype("float64"),
        "excess": excess.astype("float64"),
    })


def _days_sum_to_period(name: str, daily: str, period: str, key: str, measures):
    def rows(con, tables) -> pd.DataFrame:
        frames = []
        for measure in measures:
            days = _query(
                con,
                f"select {key}, store_id, sum({measure}) as value from marts.{daily} "
                f"group by {key}, store_id",
            )
            whole = _query(con, f"select {key}, store_id, {measure} as value from marts.{period}")
            days["measure"] = whole["measure"] = measure
            frames.append(_compare(name, days, whole, [key, "store_id", "measure"]))
        return pd.concat(frames, ignore_index=True)
    return rows


_attach_days_sum_to_family = _days_sum_to_period(
    "attach_days_sum_to_family", "fct_attach_rates_daily", "fct_attach_rates", "anchor_family",
    ("anchor_receipts", "attached_receipts", "addon_lines"),
)
_restaurant_days_sum_to_family = _days_sum_to_period(
    "restaurant_days_sum_to_family", "fct_restaurant_conversion_daily",
    "fct_restaurant_conversion", "anchor_family", ("receipts", "converted_receipts"),
)


def _purchase_receipts_agree(con, tables) -> pd.DataFrame:
    # a purchase receipt has at least one positive line (int_receipts_aggregated)
    reference = con.execute(
        "select count(distinct receipt_key) from staging.stg_pos__transactions "
        "where quantity > 0"
    ).fetchone()[0]
    others = {}
    if "marts.fct_impulse_by_hour" in tables:
        others["fct_impulse_by_hour: sum(receipts)"] = (
            "select coalesce(sum(receipts), 0) from marts.fct_impulse_by_hour"
        )
    if "marts.fct_customer_coverage" in tables:
        others["fct_customer_coverage.purchase_receipts (ALL)"] = (
            "select purchase_receipts from marts.fct_customer_coverage where store_id = 'ALL'"
        )
    pairs = _pairs(con, float(reference), others)
    if "marts.fct_addon_lift" in tables:
        # every row of a store carries the store's all_receipts; a store with no anchor or
        # no add-on receipt has no pair, so the stores of the mart are compared one by one
        pairs += [
            (f"fct_addon_lift.all_receipts (store {store})", float(staged), float(mart))
            for store, staged, mart in con.execute(
                "with lift as (select distinct store_id, all_receipts "
                "from marts.fct_addon_lift), "
                "staged as (select store_id, count(distinct receipt_key) as receipts "
                "from staging.stg_pos__transactions where quantity > 0 group by store_id) "
                "select lift.store_id, coalesce(staged.receipts, 0), lift.all_receipts "
                "from lift left join staged on lift.store_id = staged.store_id "
                "order by lift.store_id, lift.all_receipts"
            ).fetchall()
        ]
    return _items("purchase_receipts_agree", pairs)


def _baskets_match_staged_lines(con, tables) -> pd.DataFrame:
    # a basket is a receipt with a positive merchandise line (int_basket_items)
    reference = con.execute(
        "select count(distinct lines.receipt_key) from staging.stg_pos__transactions as lines "
        "inner join staging.stg_pos__products as products "
        "on lines.product_id = products.product_id "
        "where lines.quantity > 0 and products.is_merchandise"
    ).fetchone()[0]
    others = {
        f"{table}.n_baskets ({level})": (
            f"select distinct n_baskets from marts.{table} where item_level = '{level}'"
        )
        for table in ("fct_frequent_itemsets", "fct_association_rules")
        for level in ("product", "category")
        if f"marts.{table}" in tables
    }
    return _items("baskets_match_staged_lines", _pairs(con, float(reference), others))


def _rule_names_match_products(con, tables) -> pd.DataFrame:
    # every item of a rule, as (level, item, name): antecedent lists unnest side by side
    counts = con.execute(
        """
        with items as (
            select item_level, consequent as item, consequent_name as item_name
            from marts.fct_association_rules
            union all
            select item_level, unnest(antecedent), unnest(antecedent_names)
            from marts.fct_association_rules
        )
        select
            items.item_level,
            count(*) as mentions,
            count(*) filter (where items.item_name is not distinct from case
                when items.item_level = 'product' then products.product_name
                else items.item end) as named_right
        from items
        left join staging.stg_pos__products as products
            on items.item_level = 'product' and items.item = products.product_id
        group by items.item_level
        order by items.item_level
        """
    ).fetchall()
    return _items("rule_names_match_products", [
        (f"{level} items named as in stg_pos__products (category: the item itself)",
         float(named), float(mentions))
        for level, mentions, named in counts
    ])


def _pairs(con, reference: float, queries: dict[str, str]) -> list[tuple[str, float, float]]:
    """(item, reference, value) for every value a query returns: an empty table (e.g. no
    itemset reached min_support) has nothing to compare, two values are two rows."""
    return [
        (item, reference, float(value or 0))
        for item, sql in queries.items()
        for (value,) in con.execute(sql).fetchall()
    ]


# fct_revenue_mix merchandise revenue (every stream but the restaurant) per store and day
_MERCHANDISE_MIX_BY_DAY = (
    "select store_id, cast(sold_date as varchar) as sold_date, sum(revenue) as value "
    "from marts.fct_revenue_mix where revenue_stream != 'RESTAURANT' group by all"
)


def _revenue_mix_vs_staged(con, tables) -> pd.DataFrame:
    mix = _query(con, _MERCHANDISE_MIX_BY_DAY)
    staged = _query(
        con,
        "select store_id, cast(sold_date as varchar) as sold_date, "
        "sum(quantity * unit_price) as value from staging.stg_pos__transactions group by all",
    )
    return _compare(
        "revenue_mix_matches_staged_lines", mix, staged, ["store_id", "sold_date"], money=True
    )


def _restaurant_vs_staged(con, tables) -> pd.DataFrame:
    frames = []
    for measure, mix_sql, staged_sql in (
        ("revenue", "sum(revenue)", "sum(amount)"),
        ("orders", "sum(lines)", "count(*)"),
    ):
        mix = _query(
            con,
            f"select store_id, '{measure}' as measure, {mix_sql} as value "
            "from marts.fct_revenue_mix where revenue_stream = 'RESTAURANT' group by all",
        )
        staged = _query(
            con,
            f"select store_id, '{measure}' as measure, {staged_sql} as value "
            "from staging.stg_pos__restaurant_orders group by all",
        )
        frames.append(
            _compare("restaurant_revenue_matches_staged_orders", mix, staged,
                     ["store_id", "measure"], money=measure == "revenue")
        )
    return pd.concat(frames, ignore_index=True)


def _sales_lines_vs_revenue_mix(con, tables) -> pd.DataFrame:
    lines = _query(
        con,
        "select store_id, cast(sold_date as varchar) as sold_date, sum(revenue) as value "
        "from marts.fct_sales_lines group by all",
    )
    mix = _query(con, _MERCHANDISE_MIX_BY_DAY)
    return _compare("sales_lines_match_revenue_mix", lines, mix, ["store_id", "sold_date"],
                    money=True)


def _receipts_vs_sales_lines(con, tables) -> pd.DataFrame:
    frames = []
    for measure, receipts_sql, lines_sql in (
        ("receipts", "count(*)", "count(distinct receipt_key)"),
        ("net revenue", "coalesce(sum(net_revenue), 0)", "coalesce(sum(revenue), 0)"),
    ):
        receipts = _query(
            con, f"select store_id, '{measure}' as measure, {receipts_sql} as value "
            "from marts.fct_receipts group by store_id",
        )
        lines = _query(
            con, f"select store_id, '{measure}' as measure, {lines_sql} as value "
            "from marts.fct_sales_lines group by store_id",
        )
        frames.append(_compare("receipts_match_sales_lines", receipts, lines,
                               ["store_id", "measure"], money=measure != "receipts"))
    return pd.concat(frames, ignore_index=True)


_CUSTOMER_COUNTS = {
    "marts.dim_customers": ("dim_customers with a purchase",
                            "select count(*) from marts.dim_customers where has_purchase"),
    "marts.fct_revenue_at_risk": ("fct_revenue_at_risk.customers",
                                  "select sum(customers) from marts.fct_revenue_at_risk"),
    "marts.fct_cohort_retention": (
        "fct_cohort_retention.cohort_customers (month 0)",
        "select sum(cohort_customers) from marts.fct_cohort_retention "
        "where months_since_first_purchase = 0",
    ),
    "marts.fct_customer_coverage": (
        "fct_customer_coverage.members (ALL)",
        "select members from marts.fct_customer_coverage where store_id = 'ALL'",
    ),
    "ml.ml_customer_lifetime_value": ("ml_customer_lifetime_value rows",
                                      "select count(*) from ml.ml_customer_lifetime_value"),
    "ml.ml_customer_segments": ("ml_customer_segments rows",
                                "select count(*) from ml.ml_customer_segments"),
}


def _customer_counts_agree(con, tables) -> pd.DataFrame:
    reference = con.execute("select count(*) from marts.fct_customer_rfm").fetchone()[0]
    pairs = []
    for table, (item, sql) in _CUSTOMER_COUNTS.items():
        if table in tables:
            for (value,) in con.execute(sql).fetchall():
                pairs.append((item, float(reference), float(value or 0)))
    return _items("customer_counts_agree", pairs)


def _customer_revenue_agrees(con, tables) -> pd.DataFrame:
    reference = con.execute(
        "select coalesce(sum(monetary), 0) from marts.fct_customer_rfm"
    ).fetchone()[0]
    pairs = []
    for table, item, sql in (
        ("marts.dim_customers", "dim_customers.revenue",
         "select coalesce(sum(revenue), 0) from marts.dim_customers"),
        ("marts.fct_revenue_at_risk", "fct_revenue_at_risk.revenue",
         "select coalesce(sum(revenue), 0) from marts.fct_revenue_at_risk"),
    ):
        if table in tables:
            pairs.append((item, float(reference), float(con.execute(sql).fetchone()[0])))
    return _items("customer_revenue_agrees", pairs, money=True)


def _one_segment_choice(con, tables) -> pd.DataFrame:
    chosen = con.execute(
        "select count(*), max(k) from ml.ml_segment_selection where is_chosen"
    ).fetchone()
    pairs = [("chosen k (rows with is_chosen)", float(chosen[0]), 1.0)]
    if "ml.ml_customer_segments" in tables:
        segments = con.execute(
            "select count(distinct segment_id) from ml.ml_customer_segments"
        ).fetchone()[0]
        if segments:
            pairs.append(("segments in ml_customer_segments vs chosen k", float(segments),
                          float(chosen[1] or 0)))
    return _items("one_segment_choice", pairs)


CHECKS: tuple[Check, ...] = (
    Check(
        name="attach_family_receipts_match_lift",
        rule="per store and anchor family, fct_attach_rates anchor_receipts = the "
        "anchor_receipts of every fct_addon_lift row of that store and family",
        tables=("marts.fct_attach_rates", "marts.fct_addon_lift"),
        columns="anchor_receipts",
        sides=("fct_attach_rates", "fct_addon_lift"),
        rows=_attach_family_vs_lift,
    ),
    Check(
        name="attach_all_receipts_within_lift_families",
        rule="per store, fct_attach_rates_overall anchor_receipts lies between the largest "
        "family's and the sum over families of fct_addon_lift anchor_receipts (it equals "
        "the sum when no receipt holds anchors of two families)",
        tables=("marts.fct_attach_rates_overall", "marts.fct_addon_lift"),
        columns="anchor_receipts",
        sides=("fct_attach_rates_overall", "sum of fct_addon_lift families"),
        rows=_attach_all_vs_lift,
    ),
    Check(
        name="attach_days_sum_to_family",
        rule="per store and anchor family, the days of fct_attach_rates_daily sum to "
        "fct_attach_rates (anchor_receipts, attached_receipts, addon_lines)",
        tables=("marts.fct_attach_rates_daily", "marts.fct_attach_rates"),
        columns="anchor_receipts, attached_receipts, addon_lines",
        sides=("sum of fct_attach_rates_daily", "fct_attach_rates"),
        rows=_attach_days_sum_to_family,
    ),
    Check(
        name="restaurant_days_sum_to_family",
        rule="per store and anchor family, the days of fct_restaurant_conversion_daily sum "
        "to fct_restaurant_conversion (receipts, converted_receipts)",
        tables=("marts.fct_restaurant_conversion_daily", "marts.fct_restaurant_conversion"),
        columns="receipts, converted_receipts",
        sides=("sum of fct_restaurant_conversion_daily", "fct_restaurant_conversion"),
        rows=_restaurant_days_sum_to_family,
    ),
    Check(
        name="purchase_receipts_agree",
        rule="purchase receipts (staged receipts with a positive line) = sum of "
        "fct_impulse_by_hour.receipts = fct_customer_coverage purchase_receipts (ALL), and "
        "per store of fct_addon_lift, its all_receipts",
        tables=("staging.stg_pos__transactions",),
        columns="receipts, all_receipts, purchase_receipts",
        sides=("staged purchase receipts", "mart"),
        rows=_purchase_receipts_agree,
    ),
    Check(
        name="baskets_match_staged_lines",
        rule="n_baskets of fct_frequent_itemsets and fct_association_rules (each item "
        "level) = staged receipts with a positive merchandise line",
        tables=("staging.stg_pos__transactions", "staging.stg_pos__products"),
        columns="n_baskets",
        sides=("staged receipts with merchandise", "mart"),
        rows=_baskets_match_staged_lines,
    ),
    Check(
        name="rule_names_match_products",
        rule="every item of fct_association_rules carries its name: product_name of "
        "stg_pos__products at product level, the category itself at category level",
        tables=("marts.fct_association_rules", "staging.stg_pos__products"),
        columns="antecedent_names, consequent_name",
        sides=("item mentions named right", "item mentions"),
        rows=_rule_names_match_products,
    ),
    Check(
        name="revenue_mix_matches_staged_lines",
        rule="per store and day, fct_revenue_mix merchandise revenue (every stream but "
        "RESTAURANT) = sum(quantity x unit_price) of staging.stg_pos__transactions",
        tables=("marts.fct_revenue_mix", "staging.stg_pos__transactions"),
        columns="revenue",
        sides=("fct_revenue_mix", "staged lines"),
        rows=_revenue_mix_vs_staged,
    ),
    Check(
        name="restaurant_revenue_matches_staged_orders",
        rule="per store, fct_revenue_mix RESTAURANT revenue and lines = sum(amount) and "
        "rows of staging.stg_pos__restaurant_orders",
        tables=("marts.fct_revenue_mix", "staging.stg_pos__restaurant_orders"),
        columns="revenue, lines",
        sides=("fct_revenue_mix", "staged orders"),
        rows=_restaurant_vs_staged,
    ),
    Check(
        name="sales_lines_match_revenue_mix",
        rule="per store and day, the revenue of fct_sales_lines = fct_revenue_mix merchandise "
        "revenue (every stream but RESTAURANT)",
        tables=("marts.fct_sales_lines", "marts.fct_revenue_mix"),
        columns="revenue",
        sides=("fct_sales_lines", "fct_revenue_mix"),
        rows=_sales_lines_vs_revenue_mix,
    ),
    Check(
        name="receipts_match_sales_lines",
        rule="per store, fct_receipts has one row per receipt of fct_sales_lines, and their "
        "net revenue equals the lines' revenue",
        tables=("marts.fct_receipts", "marts.fct_sales_lines"),
        columns="receipt_key, net_revenue",
        sides=("fct_receipts", "fct_sales_lines"),
        rows=_receipts_vs_sales_lines,
    ),
    Check(
        name="customer_counts_agree",
        rule="customers with a purchase: fct_customer_rfm rows = dim_customers with "
        "has_purchase = sum of fct_revenue_at_risk.customers = month-0 cohort sizes = "
        "coverage members = rows of ml_customer_lifetime_value and ml_customer_segments",
        tables=("marts.fct_customer_rfm",),
        columns="customers",
        sides=("fct_customer_rfm rows", "other table"),
        rows=_customer_counts_agree,
    ),
    Check(
        name="customer_revenue_agrees",
        rule="member revenue: sum of fct_customer_rfm.monetary = sum of "
        "dim_customers.revenue = sum of fct_revenue_at_risk.revenue",
        tables=("marts.fct_customer_rfm",),
        columns="monetary, revenue",
        sides=("fct_customer_rfm", "other table"),
        rows=_customer_revenue_agrees,
    ),
    Check(
        name="one_segment_choice",
        rule="ml_segment_selection has exactly one is_chosen row, and "
        "ml_customer_segments has that many segments",
        tables=("ml.ml_segment_selection",),
        columns="is_chosen, segment_id",
        sides=("found", "expected"),
        rows=_one_segment_choice,
    ),
)
CHECKS_BY_NAME = {check.name: check for check in CHECKS}


@dataclass(frozen=True)
class Reconciliation:
    frame: pd.DataFrame
    skipped: dict[str, str]  # check -> why it did not run


def reconcile(
    con: duckdb.DuckDBPyConnection, tables: set[str], unavailable: dict[str, str] | None = None
) -> Reconciliation:
    """Run every check whose tables exist; `tables` holds the build's `schema.table` names,
    `unavailable` the tables whose analysis did not run, with the reason (they are left
    out: a check that needs one is skipped, a figure of one is not compared)."""
    unavailable = unavailable or {}
    frames, skipped = [], {}
    for check in CHECKS:
        missing = [t for t in check.tables if t not in tables]
        if missing:
            skipped[check.name] = "the build has no " + ", ".join(missing)
            continue
        empty = [t for t in check.tables if t in unavailable]
        if empty:
            skipped[check.name] = "; ".join(f"{t}: {unavailable[t]}" for t in empty)
            continue
        frames.append(check.rows(con, tables - set(unavailable)))
    frames = [f for f in frames if len(f)]
    frame = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FRAME_COLUMNS)
    )
    frame = frame[FRAME_COLUMNS].astype(
        {"check": "object", "item": "object", "left_value": "float64",
         "right_value": "float64", "excess": "float64"}
    )
    return Reconciliation(frame=frame, skipped=skipped)
