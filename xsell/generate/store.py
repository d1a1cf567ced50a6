"""Generate a synthetic store into the raw contract: the entry point ``generate_store``.

Two phases. The *plan* fixes everything that spans the whole period before any
line exists: catalogue, campaign calendar, the solved basket model, members
and all their visits, and receipts per store and day. The *chunks* then walk
through the period (``chunk_days`` at a time), drawing baskets, returns and
restaurant orders with a random stream per chunk, and append them to the files.
So memory holds one chunk, and the chunk size changes which random numbers a
line gets but not the plan (customers, visits per day, campaigns, products).

Randomness comes only from ``np.random.SeedSequence(seed)`` with a fixed spawn
key per purpose, and nothing time-dependent is written: same arguments, same bytes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from xsell import rawfiles
from xsell.contract import RAW_TABLES, RESTAURANT_ORDERS, TRANSACTIONS
from xsell.generate import dirty, ids
from xsell.generate.calendar import US_PER_SECOND, Calendar, build_calendar
from xsell.generate.campaigns import Campaigns, build_campaigns
from xsell.generate.catalogue import Catalogue, build_catalogue
from xsell.generate.config import StoreConfig, load_config, with_overrides
from xsell.generate.members import Members, simulate_members
from xsell.generate.model import BasketModel, build_basket_model
from xsell.generate.simulate import (
    Lines,
    Receipts,
    RestaurantModel,
    RestaurantOrders,
    ReturnLines,
    build_restaurant_model,
    draw_lines,
    draw_receipts,
    draw_restaurant,
    draw_returns,
)
from xsell.generate.writers import FORMATS, TableSink

# Spawn keys of the random streams; fixed so adding a stream never shifts another.
_CATALOGUE, _CAMPAIGNS, _MEMBERS, _TRAFFIC, _CHUNK, _DIRT, _TASTE = range(7)


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    seed: int
    fmt: str
    dirty_fraction: float
    config: StoreConfig
    row_counts: dict[str, int]
    dirty: dict[str, dict[str, int]]
    derived: dict = field(default_factory=dict)
    seconds: float = 0.0  # wall time; reported, never written to the files

    @property
    def lines_per_second(self) -> float:
        return self.row_counts["transactions"] / self.seconds if self.seconds else float("nan")


@dataclass(frozen=True)
class Plan:
    """Everything fixed before the chunked generation starts."""

    config: StoreConfig
    seed: int
    calendar: Calendar
    catalogue: Catalogue
    campaigns: Campaigns
    basket: BasketModel
    members: Members
    restaurant: RestaurantModel
    anonymous_counts: np.ndarray  # (stores, days)
    store_ids: pa.Array
    favourites: np.ndarray  # (members, add-on categories): each member's own product

    def derived(self) -> dict:
        """Values the generator solved for, written to _generator.json for inspection."""
        addons, families = self.config.catalogue.addon_names, self.config.catalogue.family_names
        return {
            "members": self.members.table.num_rows,
            "expected_member_receipts": round(self.members.expected_visits, 3),
            "campaigns": self.campaigns.table.num_rows,
            "category_share": dict(zip(addons, _rounded(self.basket.expected_share), strict=True)),
            "addon_topup": dict(zip(families, _rounded(self.basket.topup), strict=True)),
        }


def generate_store(
    out_dir: Path,
    *,
    seed: int = 42,
    days: int | None = None,
    stores: int | None = None,
    visits_per_day: float | None = None,
    start_date: str | None = None,
    dirty_fraction: float = 0.0,
    fmt: str = "parquet",
    config: StoreConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> GenerationSummary:
    """Write the five raw tables, _generator.json, _dirty_ledger.json and the record of
    the files (_raw_files.json, xsell.rawfiles) into out_dir.

    None arguments take their value from the config (store.yml by default). Refuses
    (RawFilesError) a folder holding raw-contract files xsell did not write. A file of
    the other format for the same table (written by an earlier run) is removed, so a
    folder never holds two versions of a table.
    """
    started = time.perf_counter()
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if not 0 <= dirty_fraction < 1:
        raise ValueError("dirty_fraction must be in [0, 1)")
    config = with_overrides(
        config or load_config(),
        days=days,
        stores=stores,
        visits_per_day=visits_per_day,
        start_date=start_date,
    )
    out_dir = Path(out_dir)
    rawfiles.refuse_foreign_files(out_dir)  # never overwrite or delete a user's file
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_store(config, seed)
    sinks = {name: TableSink(out_dir, name, t.schema, fmt) for name, t in RAW_TABLES.items()}
    try:
        ledger = _write_small_tables(plan, sinks, dirty_fraction)
        _write_chunks(plan, sinks, ledger, dirty_fraction, fmt, progress)
        for sink in sinks.values():
            sink.close()
    except BaseException:
        for sink in sinks.values():
            sink.discard()
        raise
    for name, sink in sinks.items():
        sink.commit()
        for other in FORMATS:
            if other != fmt:
                (out_dir / f"{name}.{other}").unlink(missing_ok=True)
    row_counts = {name: sink.rows for name, sink in sinks.items()}
    dirty_counts = {name: dict(sorted(ledger[name].items())) for name in RAW_TABLES}
    info = {
        "generator": "xsell.generate",
        "seed": seed,
        "format": fmt,
        "dirty_fraction": dirty_fraction,
        "row_counts": row_counts,
        "derived": plan.derived(),
        "config": config.to_dict(),
    }
    _write_json(out_dir / "_generator.json", info)
    _write_json(out_dir / "_dirty_ledger.json", dirty_counts)
    rawfiles.record(out_dir, "xsell generate")
    return GenerationSummary(
        out_dir=out_dir,
        seed=seed,
        fmt=fmt,
        dirty_fraction=dirty_fraction,
        config=config,
        row_counts=row_counts,
        dirty=dirty_counts,
        derived=plan.derived(),
        seconds=time.perf_counter() - started,
    )


def plan_store(config: StoreConfig, seed: int) -> Plan:
    """Catalogue, campaigns, basket model, members and daily traffic for the period."""
    calendar = build_calendar(config)
    catalogue = build_catalogue(config.catalogue, _rng(seed, _CATALOGUE))
    campaigns = build_campaigns(
        config.campaigns, config.catalogue.addon_names, calendar, _rng(seed, _CAMPAIGNS)
    )
    basket = build_basket_model(config, calendar, campaigns.day_category)
    members = simulate_members(config, calendar, _rng(seed, _MEMBERS))
    expected = config.visits_per_day * calendar.day_weights
    visits = _rng(seed, _TRAFFIC).poisson(expected, size=(config.stores, config.days))
    # one favourite product per member and add-on category, by the category's popularity
    n_members, n_addons = members.household.size, len(config.catalogue.addons)
    addon_grid = np.tile(np.arange(n_addons) + catalogue.n_families, n_members)
    favourites = catalogue.draw_products(_rng(seed, _TASTE), addon_grid).reshape(
        n_members, n_addons
    )
    member_visits = np.bincount(
        members.visit_store * config.days + members.visit_day, minlength=config.stores * config.days
    ).reshape(config.stores, config.days)
    return Plan(
        config=config,
        seed=seed,
        calendar=calendar,
        catalogue=catalogue,
        campaigns=campaigns,
        basket=basket,
        members=members,
        restaurant=build_restaurant_model(config, calendar),
        # Anonymous shoppers fill each store-day up to its drawn number of visits.
        anonymous_counts=np.maximum(visits - member_visits, 0),
        store_ids=ids.compose(config.stores, "S", ids.digits(np.arange(1, config.stores + 1), 2)),
        favourites=favourites,
    )


def chunk_bounds(days: int, chunk_days: int) -> list[tuple[int, int]]:
    """[first_day, end_day) of each chunk."""
    return [(d, min(d + chunk_days, days)) for d in range(0, days, chunk_days)]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _write_small_tables(
    plan: Plan, sinks: dict[str, TableSink], fraction: float
) -> dict[str, Counter]:
    """Products, customers and campaigns, written once (with their dirty rows)."""
    ledger = {name: Counter() for name in RAW_TABLES}
    cfg = plan.config
    target = cfg.campaigns.target_categories[0] if cfg.campaigns.target_categories else "DECOR"
    start_us = int(plan.calendar.day_start_us[0])
    jobs = {
        "products": lambda rng: dirty.inject_products(plan.catalogue.table, fraction, rng),
        "customers": lambda rng: dirty.inject_customers(plan.members.table, fraction, rng),
        "campaigns": lambda rng: dirty.inject_campaigns(
            plan.campaigns.table, fraction, start_us, target, rng
        ),
    }
    for index, (name, job) in enumerate(jobs.items()):
        injected = job(_rng(plan.seed, _DIRT, 1, index))
        sinks[name].write(injected.table)
        ledger[name].update(injected.counts)
    return ledger


def _write_chunks(
    plan: Plan,
    sinks: dict[str, TableSink],
    ledger: dict[str, Counter],
    fraction: float,
    fmt: str,
    progress: Callable[[str], None] | None,
) -> None:
    """Walk the period chunk by chunk: baskets, returns, restaurant orders, dirt, write."""
    cfg, cal = plan.config, plan.calendar
    pending = ReturnLines.empty()
    receipts_before = clean_lines = clean_orders = 0
    for k, (first_day, end_day) in enumerate(chunk_bounds(cfg.days, cfg.chunk_days)):
        rng = _rng(plan.seed, _CHUNK, k)
        receipts = draw_receipts(
            rng, first_day, end_day, plan.anonymous_counts, plan.members, plan.basket, cfg, cal
        )
        lines = draw_lines(
            rng, receipts, plan.basket, plan.catalogue, plan.campaigns, cfg,
            plan.favourites, _rng(plan.seed, _TASTE, k),
        )
        pending = pending.concat(draw_returns(rng, receipts, lines, receipts_before, cfg, cal))
        receipts_before += receipts.size
        due = pending.day < end_day
        transactions = transactions_table(plan, receipts, lines, pending.select(due))
        pending = pending.select(~due)
        orders = restaurant_table(plan, draw_restaurant(rng, receipts, plan.restaurant, cfg))
        dirt = _rng(plan.seed, _DIRT, 0, k)
        n_bad = dirty.share_of(fraction, clean_lines, clean_lines + transactions.num_rows, False)
        injected = dirty.inject_transactions(
            transactions,
            n_bad,
            ledger["transactions"].total(),
            fmt,
            plan.catalogue.table.num_rows,
            dirt,
        )
        sinks["transactions"].write(injected.table, injected.overrides)
        ledger["transactions"].update(injected.counts)
        n_bad = dirty.share_of(fraction, clean_orders, clean_orders + orders.num_rows, True)
        injected = dirty.inject_restaurant(orders, n_bad, dirt)
        sinks["restaurant_orders"].write(injected.table)
        ledger["restaurant_orders"].update(injected.counts)
        clean_lines += transactions.num_rows
        clean_orders += orders.num_rows
        if progress is not None:
            progress(f"days {end_day}/{cfg.days}: {sinks['transactions'].rows:,} lines")


def transactions_table(
    plan: Plan, receipts: Receipts, lines: Lines, returns: ReturnLines
) -> pa.Table:
    """Purchase and return receipts of a chunk, numbered per store and day in time order."""
    n_buy = receipts.size
    trip_start = np.ones(returns.key.size, dtype=bool)
    trip_start[1:] = returns.key[1:] != returns.key[:-1]
    trip = np.cumsum(trip_start) - 1
    first = np.flatnonzero(trip_start)
    store = np.concatenate([receipts.store, returns.store[first]])
    day = np.concatenate([receipts.day, returns.day[first]])
    tod = np.concatenate([receipts.tod, returns.tod[first]])
    customer = np.concatenate([receipts.customer, returns.customer[first]])
    kind = np.concatenate([np.zeros(n_buy, np.int64), np.ones(first.size, np.int64)])
    order = np.lexsort((np.arange(day.size), kind, tod, store, day))
    seq = _rank_within(day[order] * 100 + store[order])
    line_receipt = np.concatenate([lines.receipt, n_buy + trip])
    line_number = np.concatenate([lines.line_number, np.arange(trip.size) - first[trip] + 1])
    product = np.concatenate([lines.product, returns.product])
    quantity = np.concatenate([lines.quantity, returns.quantity])
    price = np.concatenate([lines.price, returns.price])
    campaign = np.concatenate([lines.campaign, returns.campaign])
    gather, owner = _ragged_gather(np.bincount(line_receipt, minlength=day.size), order)
    store, day, tod, customer = store[order], day[order], tod[order], customer[order]
    receipt_ids = ids.compose(
        order.size,
        "S",
        ids.digits(store + 1, 2),
        "-",
        ids.digits(plan.calendar.yyyymmdd[day], 8),
        "-",
        ids.digits(seq, 5),
    )
    return pa.table(
        {
            "receipt_id": receipt_ids.take(pa.array(owner)),
            "line_number": pa.array(line_number[gather], pa.int32()),
            "store_id": plan.store_ids.take(pa.array(store[owner])),
            "customer_id": ids.take_or_null(plan.members.customer_ids, customer[owner]),
            "product_id": plan.catalogue.product_ids.take(pa.array(product[gather])),
            "quantity": pa.array(quantity[gather], pa.int32()),
            "unit_price": pa.array(price[gather], pa.float64()),
            "sold_at": ids.timestamps(
                plan.calendar.day_start_us[day[owner]] + tod[owner] * US_PER_SECOND
            ),
            "campaign_id": ids.take_or_null(plan.campaigns.campaign_ids, campaign[gather]),
        },
        schema=TRANSACTIONS.schema,
    )


def restaurant_table(plan: Plan, orders: RestaurantOrders) -> pa.Table:
    """Restaurant orders numbered per store and day in time order."""
    order = np.lexsort((np.arange(orders.day.size), orders.tod, orders.store, orders.day))
    store, day, tod = orders.store[order], orders.day[order], orders.tod[order]
    seq = _rank_within(day * 100 + store)
    order_ids = ids.compose(
        order.size,
        "S",
        ids.digits(store + 1, 2),
        "-R",
        ids.digits(plan.calendar.yyyymmdd[day], 8),
        "-",
        ids.digits(seq, 5),
    )
    return pa.table(
        {
            "restaurant_order_id": order_ids,
            "store_id": plan.store_ids.take(pa.array(store)),
            "customer_id": ids.take_or_null(plan.members.customer_ids, orders.customer[order]),
            "ordered_at": ids.timestamps(plan.calendar.day_start_us[day] + tod * US_PER_SECOND),
            "amount": pa.array(orders.amount[order], pa.float64()),
        },
        schema=RESTAURANT_ORDERS.schema,
    )


def _rank_within(group: np.ndarray) -> np.ndarray:
    """1-based position of each element within its run of equal (sorted) group keys."""
    if group.size == 0:
        return group.astype(np.int64)
    new = np.ones(group.size, dtype=bool)
    new[1:] = group[1:] != group[:-1]
    start = np.maximum.accumulate(np.where(new, np.arange(group.size), 0))
    return np.arange(group.size) - start + 1


def _ragged_gather(counts: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line positions that list receipts' contiguous lines in ``order``, and each line's owner.

    ``owner`` is the line's receipt position within ``order``.
    """
    starts = np.cumsum(counts) - counts
    sorted_counts = counts[order]
    out_starts = np.cumsum(sorted_counts) - sorted_counts
    total = int(sorted_counts.sum())
    gather = np.repeat(starts[order] - out_starts, sorted_counts) + np.arange(total)
    owner = np.repeat(np.arange(order.size), sorted_counts)
    return gather, owner


def _rounded(values: np.ndarray) -> list[float]:
    return np.round(values, 6).tolist()


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
