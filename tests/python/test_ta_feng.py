"""End to end on a second real data set: the Ta-Feng grocery file through
`xsell import csv` with examples/ta_feng.yml, then `xsell run`.

The shape differs from UCI Online Retail in every way the importer must handle: no
receipt number (a basket is a customer's lines of one day), dates without times, the
line's amount (SALES_PRICE) and cost (ASSET) instead of unit prices, customer ids with
leading zeros, a byte-order mark, 23,812 products. Every figure is checked against an
independent reading of the CSV with Python's csv module. Skips when
../shared/datasets is absent.
"""

from __future__ import annotations

import csv
import gzip
import json
import statistics
from collections import defaultdict
from pathlib import Path

import duckdb
import numpy as np
import pytest
from support import CHROMIUM, PROJECT_DIR, check_pages_in_browser, dataset_path, run_xsell

pytestmark = [pytest.mark.dataset]

MAPPING = PROJECT_DIR / "examples" / "ta_feng.yml"
COVERAGE = "marts.fct_analysis_coverage"


@pytest.fixture(scope="module")
def source() -> Path:
    return dataset_path("ta_feng", "ta_feng.csv.gz")


@pytest.fixture(scope="module")
def expected(source) -> dict:
    """The figures of the file, computed without xsell or DuckDB."""
    lines = quantity = 0
    revenue = cost = 0
    customers, products, baskets, days, zero_led = set(), set(), set(), set(), set()
    prices = defaultdict(list)
    with gzip.open(source, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames[0] == "TRANSACTION_DT"  # the BOM is not part of the name
        for row in reader:
            lines += 1
            amount = int(row["AMOUNT"])
            quantity += amount
            revenue += int(row["SALES_PRICE"])  # whole NT$ in this file: exact sums
            cost += int(row["ASSET"])
            customer = row["CUSTOMER_ID"]
            customers.add(customer)
            if customer.startswith("0"):
                zero_led.add(customer)
            products.add(row["PRODUCT_ID"])
            month, day, year = (int(x) for x in row["TRANSACTION_DT"].split("/"))
            baskets.add((year, month, day, customer))
            days.add((year, month, day))
            prices[row["PRODUCT_ID"]].append(int(row["SALES_PRICE"]) / amount)
    medians = np.array([statistics.median(p) for p in prices.values()])
    threshold = float(np.quantile(medians, 0.95))  # linear interpolation, as the importer
    return {
        "lines": lines, "quantity": quantity, "revenue": revenue, "cost": cost,
        "margin": revenue - cost, "customers": len(customers), "products": len(products),
        "baskets": len(baskets), "days": len(days), "first_day": min(days),
        "last_day": max(days), "zero_led_customers": len(zero_led),
        "large_price_threshold": threshold, "anchors": int((medians >= threshold).sum()),
    }


@pytest.fixture(scope="module")
def imported(source, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("ta_feng")
    raw = work / "raw"
    done = run_xsell(["import", "csv", str(source), "--mapping", str(MAPPING), "--out", str(raw)],
                     work)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"work": work, "raw": raw, "stdout": done.stdout,
            "meta": json.loads((raw / "_import.json").read_text(encoding="utf-8"))}


def raw_query(imported, sql: str):
    raw = imported["raw"]
    with duckdb.connect() as con:
        con.execute(f"create view tx as select * from '{raw}/transactions.parquet'")
        con.execute(f"create view products as select * from '{raw}/products.parquet'")
        return con.execute(sql).fetchall()


def test_the_published_figures_of_the_file(expected):
    """The counts the data set's README gives, recomputed here."""
    assert {k: expected[k] for k in ("lines", "customers", "products", "baskets", "days",
                                     "quantity", "revenue", "cost")} == {
        "lines": 817_741, "customers": 32_266, "products": 23_812, "baskets": 119_578,
        "days": 120, "quantity": 1_129_939, "revenue": 107_840_076, "cost": 91_676_819,
    }


def test_import_counts_equal_the_csv(imported, expected):
    [row] = raw_query(imported, """
        select count(*), count(distinct customer_id), count(distinct product_id),
               count(distinct receipt_id), sum(quantity), sum(quantity * unit_price),
               count(*) filter (where receipt_id is null or unit_price is null),
               count(distinct customer_id) filter (where customer_id like '0%'),
               count(distinct store_id), count(distinct cast(sold_at as date)),
               min(sold_at), max(sold_at)
        from tx""")
    assert row[:5] == (expected["lines"], expected["customers"], expected["products"],
                       expected["baskets"], expected["quantity"])
    # Unrounded unit prices: quantity x unit_price gives back the line totals.
    assert row[5] == pytest.approx(expected["revenue"], abs=1e-3)
    assert row[6:10] == (0, expected["zero_led_customers"], 1, expected["days"])
    assert (row[10].date().timetuple()[:3], row[11].date().timetuple()[:3]) == (
        expected["first_day"], expected["last_day"])
    assert imported["meta"]["row_counts"]["transactions"] == expected["lines"]
    assert imported["meta"]["row_counts"]["products"] == expected["products"]


def test_costs_add_up_to_the_line_costs(imported, expected):
    [(cost, margin, without_cost)] = raw_query(imported, """
        select sum(tx.quantity * products.unit_cost),
               sum(tx.quantity * (tx.unit_price - products.unit_cost)),
               count(*) filter (where products.unit_cost is null)
        from tx join products using (product_id)""")
    assert cost == pytest.approx(expected["cost"], abs=0.01)
    assert margin == pytest.approx(expected["margin"], abs=0.01)
    assert without_cost == 0


def test_receipts_are_customer_days_and_lines_are_numbered(imported):
    [(bad_ids, max_line, dup_keys, midnight, per_receipt_days)] = raw_query(imported, r"""
        select
            count(*) filter (
                where receipt_id <> customer_id || '@' || strftime(sold_at, '%Y-%m-%d')),
            max(line_number),
            count(*) - count(distinct (receipt_id, line_number)),
            count(*) filter (where cast(sold_at as time) = time '00:00:00'),
            (select max(n) from (select count(distinct sold_at) as n from tx group by receipt_id))
        from tx""")
    assert (bad_ids, dup_keys, per_receipt_days) == (0, 0, 1)
    assert midnight == 817_741
    [(largest_basket,)] = raw_query(imported, "select max(n) from (select count(*) as n "
                                              "from tx group by receipt_id)")
    assert max_line == largest_basket


def test_import_records_what_it_derived_and_warns_about_nothing(imported, expected):
    meta = imported["meta"]
    assert meta["sold_at"]["date_only"] is True
    assert meta["sold_at"]["detected_from"] == "format '%m/%d/%Y' has no time of day"
    receipts = meta["receipts"]
    assert (receipts["derived"], receipts["by"], receipts["receipts"],
            receipts["lines_without_receipt_id"]) == (True, "day", expected["baskets"], 0)
    assert meta["prices"]["source"] == "line_total (column 'SALES_PRICE') / quantity, not rounded"
    assert meta["columns"]["unit_cost"].startswith("derived per product")
    assert meta["anchors"]["rule"] == "price"
    assert meta["parameters"]["large_price_threshold"] == pytest.approx(
        expected["large_price_threshold"])
    assert meta["anchors"]["anchors"] == expected["anchors"] == 1_215
    # Numeric codes: no fee-like product, no padded text, anchors 5 %: no warning at all.
    assert meta["warnings"] == []
    assert "warning:" not in imported["stdout"]
    assert "sold_at has dates only" in imported["stdout"]


# --- xsell run -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def build(imported) -> dict:
    work, raw = imported["work"], imported["raw"]
    db = work / "build.duckdb"
    done = run_xsell(["run", "--raw-dir", str(raw), "--build-db", str(db), "--no-generate"],
                     work)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return {"db": db, "published": work / "published.duckdb", "reports": work / "reports",
            "stdout": done.stdout}


def query(build, sql: str):
    with duckdb.connect(str(build["db"]), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.dbt
def test_run_publishes_and_every_line_is_staged(build, expected):
    assert build["published"].is_file()
    [(staged,)] = query(build, "select count(*) from staging.stg_pos__transactions")
    quarantined = query(build, "select rejection_reason, count(*) from "
                               "staging.quarantine_pos__transactions group by 1")
    assert quarantined == []  # no defect in this file: nothing to quarantine
    assert staged == expected["lines"]
    with duckdb.connect(str(build["published"]), read_only=True) as con:
        # the published file holds what BI reads: the line fact, not staging
        assert con.execute("select count(*) from marts.fct_sales_lines"
                           ).fetchone()[0] == expected["lines"]
        assert {schema for (schema,) in con.execute(
            "select distinct schema_name from duckdb_tables()").fetchall()} == {
            "marts", "ml", "seeds"}


@pytest.mark.dbt
def test_warehouse_counts_and_money_equal_the_csv(build, expected):
    [(customers, products, lines, revenue, cost, margin)] = query(build, """
        select count(distinct customer_id), count(distinct product_id), count(*),
               sum(revenue), sum(cost), sum(margin)
        from intermediate.int_transaction_lines_enriched""")
    assert (customers, products, lines) == (
        expected["customers"], expected["products"], expected["lines"])
    assert revenue == pytest.approx(expected["revenue"], abs=0.01)
    assert cost == pytest.approx(expected["cost"], abs=0.01)
    assert margin == pytest.approx(expected["margin"], abs=0.01)
    [(receipts,)] = query(build, "select count(*) from intermediate.int_receipts_aggregated")
    assert receipts == expected["baskets"]
    [(mix_revenue, mix_margin)] = query(build, "select sum(revenue), sum(margin) from "
                                               "marts.fct_revenue_mix")
    assert mix_revenue == pytest.approx(expected["revenue"], abs=0.01)
    assert mix_margin == pytest.approx(expected["margin"], abs=0.01)


NOT_APPLICABLE = {
    "restaurant_conversion": "there is no restaurant data (restaurant_orders is absent or empty)",
    "restaurant_timing": "there is no restaurant data (restaurant_orders is absent or empty)",
    "restaurant_propensity": "there is no restaurant data (restaurant_orders is absent or empty)",
    "promotion_uplift": "there is no campaign data (campaigns is absent or empty)",
    "impulse_by_hour": "the data has dates but no times of day (every sale is at 00:00)",
}


@pytest.mark.dbt
def test_coverage_says_what_the_data_cannot_support(build, expected):
    """Dates without times, no restaurant table, no campaigns: those analyses are not
    applicable, with their reason; everything else the file supports ran (members, prices
    and costs, anchors derived from prices, 120 days of history)."""
    with duckdb.connect(str(build["published"]), read_only=True) as con:
        rows = con.execute(
            f"select analysis, store_id, status, row_count, reason, note from {COVERAGE} "
            "order by analysis_order, store_id").fetchall()
    coverage = {(a, store): (status, n, reason, note)
                for a, store, status, n, reason, note in rows}
    assert len(coverage) == 23
    for (analysis, store), (status, n, reason, _) in coverage.items():
        if analysis in NOT_APPLICABLE:
            assert (store, status, n, reason) == (
                "ALL", "not_applicable", 0, NOT_APPLICABLE[analysis]), analysis
        else:
            assert (status, reason) == ("ran", None), (analysis, status, reason)
            assert n > 0, analysis
    assert set(NOT_APPLICABLE) <= {a for a, _ in coverage}
    assert coverage[("revenue_forecast", "TA-FENG")][0] == "ran"  # per store: the one store
    for analysis in ("customer_profiles", "rfm", "customer_lifetime_value"):
        assert coverage[(analysis, "ALL")][1] == expected["customers"], analysis
    # Baskets linked by time: the models say that one day counts as 0 minutes apart.
    for analysis in ("attach_rates", "addon_lift"):
        assert coverage[(analysis, "ALL")][3].startswith("no times of day"), analysis
    assert "Analyses: 18 of 23 ran on this data" in build["stdout"]


@pytest.mark.dbt
def test_every_report_page_renders(build):
    from xsell.reports.pages import PAGES

    out = build["reports"]
    index = (out / "index.html").read_text(encoding="utf-8")
    for page in PAGES:
        html = (out / f"{page.slug}.html").read_text(encoding="utf-8")
        assert f'href="{page.slug}.html"' in index
        assert "</html>" in html and "Traceback" not in html, page.slug
    # Pages without data say why, in the coverage's words.
    impulse = (out / "impulse.html").read_text(encoding="utf-8")
    assert NOT_APPLICABLE["impulse_by_hour"] in impulse
    restaurant = (out / "restaurant.html").read_text(encoding="utf-8")
    assert NOT_APPLICABLE["restaurant_conversion"] in restaurant
    if CHROMIUM.is_file():  # the pages load and draw their charts without a script error
        doms = check_pages_in_browser(out, build["db"].parent / "browser")
        assert set(doms) == {"index", *(p.slug for p in PAGES)}
