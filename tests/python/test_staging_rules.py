"""Staging against values that are not what the raw contract says (issue 18, cases 2, 5,
6, 7 and 8): every such row is counted in quarantine with its reason, raw = staged +
quarantined stays exact, a bad optional product attribute is set aside without dropping
the product's sales, and of two rows with one key the first in the file is kept.

One small two-store store is edited by hand, as CSV and as Parquet, and built with
`dbt build --select staging` (two dbt runs); a third run builds a store without prices
whose checkout times are a TIMESTAMPTZ column.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from faults import build, quarantine_counts, read_rows, write_rows

from xsell.contract import RAW_TABLES
from xsell.generate import generate_store

pytestmark = pytest.mark.dbt

STORE = {"seed": 5, "days": 7, "stores": 2, "visits_per_day": 15}
INF, NAN = float("inf"), float("nan")


def _plan(raw: Path, fmt: str) -> dict:
    """Edit the generated store in raw (fmt) and return what staging must make of it."""
    lines = read_rows(raw, "transactions", fmt)
    products = read_rows(raw, "products", fmt)
    customers = read_rows(raw, "customers", fmt)
    orders = read_rows(raw, "restaurant_orders", fmt)
    csv = fmt == "csv"
    expected: dict[str, Counter] = {table: Counter() for table in RAW_TABLES}

    # Products with sales, whose attributes are broken below; lines are copied from
    # products that keep theirs.
    sold = [p for p in dict.fromkeys(line["product_id"] for line in lines)]
    broken = sold[:5]
    source = next(line for line in lines if line["product_id"] not in broken)

    def line(**changes):
        row = copy.deepcopy(source)
        row.update(changes)
        return row

    number = iter(range(900, 1000))
    added = []

    def bad_line(reason: str | None, **changes):
        added.append(line(**{"line_number": _value(next(number), csv), **changes}))
        if reason:
            expected["transactions"][reason] += 1

    for quantity in ("1.5", "2.5", "0.4"):
        bad_line("non_integer_quantity", quantity=_number(quantity, csv))
    bad_line(None, quantity=_number("2.0", csv))  # whole: staged as 2
    for price in (INF, -INF, NAN):
        bad_line("non_finite_unit_price", unit_price=_value(price, csv))
    for day in (dt.datetime(2099, 6, 1, 12), dt.datetime(1985, 6, 1, 12)):
        bad_line("sold_at_out_of_range", sold_at=_value(day, csv))
    bad_line("missing_unit_price", unit_price=None)
    if csv:
        bad_line("non_integer_quantity", quantity="0x10")
        bad_line("non_integer_line_number", line_number="3.5")
        for text in ("2025-01-02 10:00:00+05:00", "2025-01-02T10:00:00Z"):
            bad_line("sold_at_needs_timezone", sold_at=text)
    # The same receipt and line number in another store is another line.
    other_store = line(store_id="S99")
    # Duplicate keys: the first row in the file keeps the key. An exact copy right after
    # its source is the duplicate; a changed copy at the very top of the file is kept and
    # the original row, later in the file, becomes the duplicate.
    keep = [i for i, row in enumerate(lines) if row["product_id"] not in broken]
    first, last = lines[keep[1]], lines[keep[-1]]
    early_copy = dict(first, product_id=source["product_id"])
    expected["transactions"]["duplicate_line"] += 2
    edited = [early_copy, *lines[: keep[-1] + 1], dict(last), *lines[keep[-1] + 1 :],
              *added, other_store]
    write_rows(raw, "transactions", edited, fmt,
               types={"quantity": pa.float64()} if not csv else None,
               columns=list(lines[0]))

    # Products: an appended bogus row for the first product (the real one stays), and
    # one broken optional attribute on each of the sold products in `broken`.
    real = products[0]
    bogus = dict(real, product_name="AAA bogus", category="BOGUS", unit_cost=_value(1.0, csv))
    expected["products"]["duplicate_product_id"] += 1
    by_id = {p["product_id"]: p for p in products}
    attribute_defects = {
        (broken[0], "unit_cost"): ("negative_unit_cost", _value(-3.0, csv)),
        (broken[1], "unit_cost"): ("non_finite_unit_cost", _value(INF, csv)),
        (broken[2], "category"): ("missing_category", None),
        (broken[3], "size_class"): ("invalid_size_class", "HUGE"),
    }
    if csv:
        attribute_defects[(broken[4], "is_merchandise")] = ("unparseable_is_merchandise", "on")
    else:
        attribute_defects[(broken[4], "unit_cost")] = ("non_finite_unit_cost", _value(NAN, csv))
    for (product, attribute), (_, value) in attribute_defects.items():
        by_id[product][attribute] = value
    write_rows(raw, "products", [*products, bogus], fmt)

    # Customers and restaurant orders: whole rows rejected.
    member = customers[0]
    bad_members = [
        dict(member, customer_id="X1", household_size=_number("2.5", csv)),
        dict(member, customer_id="X2", distance_km=_value(INF, csv)),
        dict(member, customer_id="X3", distance_km=_value(NAN, csv)),
    ]
    expected["customers"].update(
        {"non_integer_household_size": 1, "non_finite_distance_km": 2}
    )
    write_rows(raw, "customers", [*customers, *bad_members], fmt,
               types={"household_size": pa.float64()} if not csv else None)
    order = orders[0]
    bad_orders = [
        dict(order, restaurant_order_id="X1", amount=_value(NAN, csv)),
        dict(order, restaurant_order_id="X2", ordered_at=_value(dt.datetime(2099, 1, 1), csv)),
    ]
    expected["restaurant_orders"].update(
        {"non_finite_amount": 1, "ordered_at_out_of_range": 1}
    )
    write_rows(raw, "restaurant_orders", [*orders, *bad_orders], fmt)
    return {
        "expected": {t: dict(c) for t, c in expected.items()},
        "raw_rows": {
            "transactions": len(edited), "products": len(products) + 1,
            "customers": len(customers) + 3, "restaurant_orders": len(orders) + 2,
            "campaigns": len(read_rows(raw, "campaigns", fmt)),
        },
        "attribute_defects": {k: v[0] for k, v in attribute_defects.items()},
        "broken": broken,
        "raw_lines_per_product": Counter(row["product_id"] for row in lines),
        "early_copy": early_copy,
        "original_row": keep[1] + 2,  # 1-based, after the early copy
        "duplicated_key": (first["store_id"], first["receipt_id"], int(first["line_number"])),
        "real_product": real,
        "other_store_key": ("S99", source["receipt_id"], int(source["line_number"])),
    }


def _value(value, csv: bool):
    if not csv:
        return value
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _number(text: str, csv: bool):
    return text if csv else float(text)


@pytest.fixture(scope="module", params=["csv", "parquet"])
def edited_build(request, tmp_path_factory):
    fmt = request.param
    work = tmp_path_factory.mktemp(f"staging_{fmt}")
    raw = work / "raw"
    generate_store(raw, fmt=fmt, **STORE)
    plan = _plan(raw, fmt)
    (raw / "_raw_files.json").unlink(missing_ok=True)  # edited by hand: nothing to check
    db = work / "build.duckdb"
    result = build(raw, fmt, db, work)
    assert result.ok, result.summary()
    return {"fmt": fmt, "raw": raw, "db": db, "plan": plan, "result": result}


def test_every_rejected_row_is_counted_with_its_reason(edited_build):
    plan = edited_build["plan"]
    for table in RAW_TABLES:
        assert quarantine_counts(edited_build["db"], table) == plan["expected"][table], table


def test_raw_rows_equal_staged_plus_quarantined(edited_build):
    plan = edited_build["plan"]
    with duckdb.connect(str(edited_build["db"]), read_only=True) as con:
        for table in RAW_TABLES:
            staged = con.execute(f"select count(*) from staging.stg_pos__{table}").fetchone()[0]
            rejected = con.execute(
                f"select count(*) from staging.quarantine_pos__{table}"
            ).fetchone()[0]
            assert staged + rejected == plan["raw_rows"][table], table


def test_whole_decimal_quantities_are_staged_and_nothing_is_rounded(edited_build):
    with duckdb.connect(str(edited_build["db"]), read_only=True) as con:
        quantities = dict(con.execute(
            "select line_number, quantity from staging.stg_pos__transactions "
            "where line_number >= 900"
        ).fetchall())
        rejected = [r[0] for r in con.execute(
            "select quantity from staging.quarantine_pos__transactions "
            "where rejection_reason = 'non_integer_quantity' order by raw_row_id"
        ).fetchall()]
    assert list(quantities.values()) == [2]  # "2.0" only
    assert rejected[:3] == ["1.5", "2.5", "0.4"]


def test_the_first_row_in_the_file_keeps_a_duplicated_key(edited_build):
    plan = edited_build["plan"]
    store, receipt, number = plan["duplicated_key"]
    with duckdb.connect(str(edited_build["db"]), read_only=True) as con:
        kept = con.execute(
            "select product_id from staging.stg_pos__transactions "
            "where store_id = ? and receipt_id = ? and line_number = ?", [store, receipt, number]
        ).fetchall()
        quarantined = con.execute(
            "select raw_row_id from staging.quarantine_pos__transactions "
            "where rejection_reason = 'duplicate_line' order by raw_row_id"
        ).fetchall()
        product = con.execute(
            "select product_name, category from staging.stg_pos__products where product_id = ?",
            [plan["real_product"]["product_id"]],
        ).fetchone()
        other_store = con.execute(
            "select count(*) from staging.stg_pos__transactions "
            "where store_id = ? and receipt_id = ? and line_number = ?",
            list(plan["other_store_key"]),
        ).fetchone()[0]
    assert kept == [(plan["early_copy"]["product_id"],)]
    assert quarantined[0] == (plan["original_row"],)
    assert product == (plan["real_product"]["product_name"], plan["real_product"]["category"])
    assert other_store == 1


def test_a_bad_product_attribute_is_set_aside_and_the_sales_stay(edited_build):
    plan = edited_build["plan"]
    with duckdb.connect(str(edited_build["db"]), read_only=True) as con:
        defects = {
            (product, attribute): reason
            for product, attribute, reason in con.execute(
                "select product_id, attribute, defect_reason "
                "from staging.stg_pos__product_attribute_defects"
            ).fetchall()
        }
        staged = dict(con.execute(
            "select product_id, count(*) from staging.stg_pos__transactions "
            "where line_number < 900 and store_id != 'S99' group by 1"
        ).fetchall())
        attributes = {
            row[0]: row[1:] for row in con.execute(
                "select product_id, category, size_class, unit_cost, is_merchandise "
                "from staging.stg_pos__products"
            ).fetchall()
        }
    assert defects == plan["attribute_defects"]
    for product in plan["broken"]:
        assert staged[product] == plan["raw_lines_per_product"][product], product
    for (product, attribute), _ in plan["attribute_defects"].items():
        category, size_class, unit_cost, is_merchandise = attributes[product]
        value = {"category": category, "size_class": size_class, "unit_cost": unit_cost,
                 "is_merchandise": is_merchandise}[attribute]
        assert value == ("UNCATEGORIZED" if attribute == "category" else
                         True if attribute == "is_merchandise" else None), (product, attribute)
    # the defects are counted by a warning-level test on every build
    warned = [w.unique_id for w in edited_build["result"].warnings]
    assert any("no_rows_stg_pos__product_attribute_defects" in uid for uid in warned)


@pytest.fixture(scope="module")
def basket_only_build(tmp_path_factory):
    """No prices on any line, checkout times as a TIMESTAMPTZ column (UTC instants of a
    Berlin store), the store's zone given by var timezone."""
    work = tmp_path_factory.mktemp("basket_only")
    raw = work / "raw"
    generate_store(raw, seed=6, days=5, stores=1, visits_per_day=15)
    lines = read_rows(raw, "transactions")
    local = [row["sold_at"] for row in lines]
    berlin = dt.timezone(dt.timedelta(hours=1))  # January: CET, UTC+1
    for row in lines:
        row["unit_price"] = None
        row["sold_at"] = row["sold_at"].replace(tzinfo=berlin).astimezone(dt.UTC)
    write_rows(raw, "transactions", lines,
               types={"sold_at": pa.timestamp("us", tz="UTC"), "unit_price": pa.float64()})
    (raw / "_raw_files.json").unlink(missing_ok=True)
    db = work / "build.duckdb"
    result = build(raw, "parquet", db, work, variables={"timezone": "Europe/Berlin"},
                   env={"TZ": "America/New_York"})
    assert result.ok, result.summary()
    return {"db": db, "local": local, "lines": len(lines)}


def test_a_store_without_prices_keeps_every_line_with_a_null_price(basket_only_build):
    with duckdb.connect(str(basket_only_build["db"]), read_only=True) as con:
        staged, priced = con.execute(
            "select count(*), count(unit_price) from staging.stg_pos__transactions"
        ).fetchone()
        quarantined = con.execute(
            "select count(*) from staging.quarantine_pos__transactions"
        ).fetchone()[0]
    assert (staged, priced, quarantined) == (basket_only_build["lines"], 0, 0)


def test_timestamptz_is_converted_to_the_store_zone_not_the_machines(basket_only_build):
    with duckdb.connect(str(basket_only_build["db"]), read_only=True) as con:
        hours = Counter(h for (h,) in con.execute(
            "select extract(hour from sold_at) from staging.stg_pos__transactions"
        ).fetchall())
        first = con.execute(
            "select min(sold_at) from staging.stg_pos__transactions"
        ).fetchone()[0]
    local = basket_only_build["local"]
    assert first == min(local)
    assert hours == Counter(t.hour for t in local)
