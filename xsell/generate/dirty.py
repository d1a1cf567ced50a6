"""Dirty rows for staging to catch, each with exactly one defect and a ledger entry.

Defects are *added* rows (a copy of a clean row with one value broken, an exact
copy, or a bogus extra row); clean rows are never altered. So the clean subset
of a dirty store is the clean store, and staging must quarantine exactly the
ledger: every injected row fails the check that carries its reason first under
staging's precedence (missing ids, quantity, price, timestamp, unknown product,
then duplicate key among otherwise valid rows). A copy keeps its source's key;
a broken copy is rejected before the duplicate check, so the clean source
stays the one valid row with that key.

Copies sit right after their source row; bogus rows go at the end.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xsell.generate import ids
from xsell.generate.calendar import US_PER_SECOND

TRANSACTION_DEFECTS = (
    "missing_receipt_id",
    "missing_store_id",
    "missing_product_id",
    "zero_quantity",
    "non_positive_unit_price",
    "sold_at_out_of_range",
    "unknown_product",
    "duplicate_line",
)
CSV_TRANSACTION_DEFECTS = ("unparseable_quantity", "unparseable_unit_price", "unparseable_sold_at")
GARBAGE = {
    "quantity": ["two", "1 pc", "x2"],
    "unit_price": ["12.50 SEK", "free", "12,50"],
    "sold_at": ["not a date", "2025-13-45 25:61:00", "31/02/2025 10:00"],
}
_US_PER_DAY = 86400 * US_PER_SECOND
# Out-of-range years on either side of staging's valid window [2000-01-01, 2100-01-01).
_OUT_OF_RANGE_DAYS = (
    int(np.datetime64("1970-01-01", "D").astype(np.int64)),
    int(np.datetime64("2150-01-01", "D").astype(np.int64)),
)

Overrides = dict[str, tuple[np.ndarray, list[str]]]


@dataclass(frozen=True)
class Injected:
    """A table with dirty rows in place, its CSV text overrides and the ledger counts."""

    table: pa.Table
    overrides: Overrides
    counts: Counter


def transaction_defects(fmt: str) -> tuple[str, ...]:
    """Reasons a transactions file of this format can carry (text only fits in CSV)."""
    return TRANSACTION_DEFECTS + (CSV_TRANSACTION_DEFECTS if fmt == "csv" else ())


def share_of(fraction: float, done_before: int, done_after: int, at_least_one: bool) -> int:
    """Defects due for rows done_before..done_after, so totals track fraction x rows.

    Cumulative rounding spreads them over chunks without drift; with
    at_least_one, the first chunk with rows already gets one (ceil).
    """
    step = math.ceil if at_least_one else (lambda x: math.floor(x + 0.5))
    return int(step(fraction * done_after) - step(fraction * done_before))


def inject_transactions(
    clean: pa.Table, n_defects: int, first: int, fmt: str, n_products: int, rng: np.random.Generator
) -> Injected:
    """n_defects broken copies of purchase lines, reasons round-robin from index first."""
    defects = transaction_defects(fmt)
    sources = np.flatnonzero(clean.column("quantity").to_numpy() > 0)
    if n_defects == 0 or sources.size == 0:
        return Injected(clean, {}, Counter())
    source = np.sort(rng.choice(sources, size=n_defects))
    reason = np.array([defects[(first + j) % len(defects)] for j in range(n_defects)])
    rng.shuffle(reason)  # so a reason is not tied to where in the chunk it sits
    dirty = _break_lines(clean.take(pa.array(source)), reason, n_products)
    table, position = interleave(clean, dirty, source)
    overrides = {}
    for column, garbage in GARBAGE.items():
        rows = position[reason == f"unparseable_{column}"]
        overrides[column] = (rows, [garbage[i] for i in rng.integers(len(garbage), size=rows.size)])
    return Injected(table, overrides, Counter(reason.tolist()))


def _break_lines(rows: pa.Table, reason: np.ndarray, n_products: int) -> pa.Table:
    """Apply each row's one defect; unparseable values are set later, as CSV text."""
    n = rows.num_rows
    alternate = np.arange(n) % 2 == 1

    def nulled(name: str, why: str) -> pa.Array:
        column = rows.column(name).combine_chunks()
        return pc.if_else(pa.array(reason == why), pa.nulls(n, column.type), column)

    quantity = rows.column("quantity").to_numpy()
    price = rows.column("unit_price").to_numpy()
    sold_at = rows.column("sold_at").cast(pa.int64()).to_numpy()
    bad_day = np.where(alternate, _OUT_OF_RANGE_DAYS[1], _OUT_OF_RANGE_DAYS[0]) * _US_PER_DAY
    unknown = ids.compose(n, "P", ids.digits(n_products + 1 + np.arange(n) % 1000, 5))
    missing_product = nulled("product_id", "missing_product_id")
    product = pc.if_else(pa.array(reason == "unknown_product"), unknown, missing_product)
    columns = {
        "receipt_id": nulled("receipt_id", "missing_receipt_id"),
        "store_id": nulled("store_id", "missing_store_id"),
        "product_id": product,
        "quantity": pa.array(np.where(reason == "zero_quantity", 0, quantity), pa.int32()),
        "unit_price": pa.array(
            np.where(reason == "non_positive_unit_price", np.where(alternate, -price, 0.0), price)
        ),
        "sold_at": ids.timestamps(
            np.where(reason == "sold_at_out_of_range", bad_day + sold_at % _US_PER_DAY, sold_at)
        ),
    }
    return _replace(rows, columns)


def inject_copies_and_bogus(
    clean: pa.Table,
    count: int,
    copy_reasons: dict[str, Callable[[pa.Table, np.ndarray], pa.Table]],
    bogus_reasons: dict[str, Callable[[int], pa.Table]],
    rng: np.random.Generator,
) -> Injected:
    """count rows per reason: copies of random rows (changed by a function) or bogus rows."""
    if count == 0:
        return Injected(clean, {}, Counter())
    counts: Counter = Counter()
    copies, sources = [], []
    for reason, change in copy_reasons.items():
        if clean.num_rows == 0:
            continue
        source = np.sort(rng.choice(clean.num_rows, size=count))
        copies.append(change(clean.take(pa.array(source)), np.arange(count)))
        sources.append(source)
        counts[reason] += count
    table = clean
    if copies:
        source = np.concatenate(sources)
        order = np.argsort(source, kind="stable")
        dirty = pa.concat_tables(copies).take(pa.array(order))
        table, _ = interleave(clean, dirty, source[order])
    extras = []
    for reason, make in bogus_reasons.items():
        extras.append(make(count))
        counts[reason] += count
    if extras:
        table = pa.concat_tables([table, *extras])
    return Injected(table, {}, counts)


def interleave(clean: pa.Table, dirty: pa.Table, source: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """Clean rows with each dirty row right after its source; dirty rows' new positions."""
    key = np.concatenate([2 * np.arange(clean.num_rows), 2 * source + 1])
    order = np.argsort(key, kind="stable")
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    combined = pa.concat_tables([clean, dirty.cast(clean.schema)]).take(pa.array(order))
    return combined, position[clean.num_rows :]


def set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, values)


def _replace(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    for name, values in columns.items():
        table = set_column(table, name, values.cast(table.schema.field(name).type))
    return table


def small_table_count(fraction: float, rows: int) -> int:
    """Defects per reason in a small table: fraction x rows, at least one when dirty."""
    return 0 if fraction <= 0 else max(1, round(fraction * rows))


def _same(rows: pa.Table, _: np.ndarray) -> pa.Table:
    return rows


def inject_products(clean: pa.Table, fraction: float, rng: np.random.Generator) -> Injected:
    """Exact copies (duplicate_product_id) and extra rows without id (missing_product_id)."""

    def unlabelled(count: int) -> pa.Table:
        rows = clean.take(pa.array(rng.choice(clean.num_rows, size=count)))
        rows = set_column(rows, "product_id", pa.nulls(count, pa.string()))
        return set_column(rows, "product_name", pa.array(["UNLABELLED ITEM"] * count))

    count = small_table_count(fraction, clean.num_rows)
    return inject_copies_and_bogus(
        clean, count, {"duplicate_product_id": _same}, {"missing_product_id": unlabelled}, rng
    )


def inject_customers(clean: pa.Table, fraction: float, rng: np.random.Generator) -> Injected:
    """Exact copies (duplicate_customer_id) and bogus members with a negative distance."""
    n = clean.num_rows

    def far_away(count: int) -> pa.Table:
        rows = clean.take(pa.array(rng.choice(n, size=count)))
        new_ids = ids.compose(count, "C", ids.digits(n + 1 + np.arange(count), 7))
        rows = set_column(rows, "customer_id", new_ids)
        return set_column(rows, "distance_km", pa.array(-np.round(1 + 20 * rng.random(count), 1)))

    count = small_table_count(fraction, n) if n else 0
    return inject_copies_and_bogus(
        clean, count, {"duplicate_customer_id": _same}, {"negative_distance_km": far_away}, rng
    )


def inject_restaurant(clean: pa.Table, count: int, rng: np.random.Generator) -> Injected:
    """Copies with a zero or negative amount, and exact copies (duplicate id)."""

    def unpaid(rows: pa.Table, j: np.ndarray) -> pa.Table:
        amount = rows.column("amount").to_numpy()
        return set_column(rows, "amount", pa.array(np.where(j % 2 == 1, -amount, 0.0)))

    changes = {"non_positive_amount": unpaid, "duplicate_restaurant_order_id": _same}
    return inject_copies_and_bogus(clean, count, changes, {}, rng)


def inject_campaigns(
    clean: pa.Table, fraction: float, start_us: int, target: str, rng: np.random.Generator
) -> Injected:
    """Bogus campaigns that end before they start; no line references them."""
    n = clean.num_rows

    def backwards(count: int) -> pa.Table:
        starts = start_us + (10 + rng.integers(0, 20, size=count)) * _US_PER_DAY
        return pa.table(
            {
                "campaign_id": ids.compose(count, "CMP", ids.digits(n + 1 + np.arange(count), 3)),
                "campaign_name": pa.array(["Campaign with swapped dates"] * count),
                "starts_at": ids.timestamps(starts),
                "ends_at": ids.timestamps(starts - 7 * _US_PER_DAY),
                "target_category": pa.array([target] * count),
                "target_product_id": pa.nulls(count, pa.string()),
                "discount_pct": pa.array(np.full(count, 10.0)),
            },
            schema=clean.schema,
        )

    count = small_table_count(fraction, max(n, 1))
    return inject_copies_and_bogus(clean, count, {}, {"invalid_campaign_period": backwards}, rng)
