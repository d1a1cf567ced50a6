"""The synthetic store generator: contract, determinism, scale, planted behaviour, dirt.

Planted values are recovered from the raw files with DuckDB SQL (as the marts
will measure them), never from generator internals; the expected figures come
from store.yml through load_config(). Tolerances are a few standard errors of
the sample at hand, stated next to each assertion.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.special import hyp2f1

from xsell.contract import RAW_TABLES
from xsell.generate import ConfigError, generate_store, load_config

CONFIG = load_config()
SMALL = {"seed": 7, "days": 45, "stores": 1, "visits_per_day": 40}
SCALE = {"seed": 3, "days": 28, "stores": 1, "visits_per_day": 60}
DIRTY_FRACTION = 0.02


def _tables(out: Path, fmt: str = "parquet") -> duckdb.DuckDBPyConnection:
    """A connection with one view per raw table (all text for CSV, as staging reads it)."""
    con = duckdb.connect()
    for name in RAW_TABLES:
        path = out / f"{name}.{fmt}"
        reader = (
            f"read_parquet('{path}')"
            if fmt == "parquet"
            else f"read_csv('{path}', header = true, all_varchar = true)"
        )
        con.execute(f"create view {name} as select * from {reader}")
    return con


def _scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


# Receipt-level facts, defined the way the marts define them.
RECEIPTS_SQL = """
create table lines as
select transactions.*, products.category, products.size_class
from transactions
inner join products using (product_id);

create table receipts as
select
    receipt_id,
    any_value(store_id) as store_id,
    any_value(customer_id) as customer_id,
    min(sold_at) as sold_at,
    bool_or(quantity > 0) as is_purchase,
    bool_and(quantity < 0) as is_return,
    max(case when size_class = 'LARGE' then category end) as family,
    count(distinct case when size_class = 'LARGE' then category end) as families,
    count(*) filter (where size_class = 'SMALL' and quantity > 0) as addon_lines
from lines
group by receipt_id;

create table receipt_categories as
select distinct receipt_id, category from lines where quantity > 0;
"""


@pytest.fixture(scope="session")
def year(tmp_path_factory) -> Path:
    """The default store (one year, two stores, 120 visits a day), seed 42."""
    out = tmp_path_factory.mktemp("year")
    generate_store(out, seed=42)
    return out


@pytest.fixture(scope="session")
def db(year):
    con = _tables(year)
    con.execute(RECEIPTS_SQL)
    yield con
    con.close()


@pytest.fixture(scope="session")
def twins(tmp_path_factory) -> dict[str, Path]:
    """The small store generated twice with one seed and once with another."""
    root = tmp_path_factory.mktemp("twins")
    for name, seed in (("a", 7), ("b", 7), ("other", 8)):
        generate_store(root / name, **{**SMALL, "seed": seed})
    return {name: root / name for name in ("a", "b", "other")}


@pytest.fixture(scope="session")
def dirty_stores(tmp_path_factory) -> dict[str, Path]:
    """The small store clean and dirty, as Parquet and CSV."""
    root = tmp_path_factory.mktemp("dirty")
    for fmt in ("parquet", "csv"):
        generate_store(root / f"clean_{fmt}", fmt=fmt, **SMALL)
        generate_store(root / f"dirty_{fmt}", fmt=fmt, dirty_fraction=DIRTY_FRACTION, **SMALL)
    return {p.name: p for p in root.iterdir()}


# --- contract and determinism -------------------------------------------------------------


def test_every_table_is_written_with_the_contract_schema(twins):
    for name, table in RAW_TABLES.items():
        schema = pq.read_schema(twins["a"] / f"{name}.parquet").remove_metadata()
        assert schema.equals(table.schema), name
    ledger = json.loads((twins["a"] / "_dirty_ledger.json").read_text())
    assert ledger == {name: {} for name in RAW_TABLES}


def test_csv_has_a_header_with_the_contract_columns(dirty_stores):
    for name, table in RAW_TABLES.items():
        with open(dirty_stores["clean_csv"] / f"{name}.csv", encoding="utf-8") as f:
            header = f.readline().strip().replace('"', "").split(",")
        assert header == table.columns, name


def test_identifiers_have_the_documented_shapes(twins):
    con = _tables(twins["a"])
    bad = _scalar(
        con,
        """
        select count(*) from transactions
        where not regexp_full_match(receipt_id, 'S0[1-9]-2025\\d{4}-\\d{5}')
            or not regexp_full_match(product_id, 'P\\d{5}')
            or not regexp_full_match(coalesce(customer_id, 'C0000000'), 'C\\d{7}')
            or store_id != substr(receipt_id, 1, 3)
        """,
    )
    assert bad == 0
    # line numbers run 1..n within each receipt
    gaps = _scalar(
        con,
        """
        select count(*) from (
            select receipt_id, min(line_number) as lo, max(line_number) as hi, count(*) as n,
                count(distinct line_number) as distinct_n
            from transactions group by receipt_id
        ) where lo != 1 or hi != n or distinct_n != n
        """,
    )
    assert gaps == 0


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(twins):
    files = sorted(p.name for p in twins["a"].iterdir())
    assert len(files) == len(RAW_TABLES) + 3  # _generator.json, ledger, _raw_files.json
    for name in files:
        assert (twins["a"] / name).read_bytes() == (twins["b"] / name).read_bytes(), name
    for name in ("transactions", "products", "customers", "restaurant_orders", "campaigns"):
        a = (twins["a"] / f"{name}.parquet").read_bytes()
        assert a != (twins["other"] / f"{name}.parquet").read_bytes(), name


def test_generator_json_records_seed_config_and_true_row_counts(twins):
    info = json.loads((twins["a"] / "_generator.json").read_text())
    con = _tables(twins["a"])
    actual = {name: _scalar(con, f"select count(*) from {name}") for name in RAW_TABLES}
    assert info["seed"] == 7
    assert info["row_counts"] == actual
    assert info["config"]["days"] == 45 and info["config"]["visits_per_day"] == 40
    assert info["config"]["basket"] == CONFIG.to_dict()["basket"]


def test_progress_is_reported_once_per_chunk(tmp_path):
    messages: list[str] = []
    summary = generate_store(tmp_path, progress=messages.append, **SMALL)
    assert len(messages) == math.ceil(SMALL["days"] / CONFIG.chunk_days)
    assert messages[-1].startswith("days 45/45")
    assert f"{summary.row_counts['transactions']:,} lines" in messages[-1]


def test_empty_optional_table_is_still_written(tmp_path):
    config = dataclasses.replace(
        CONFIG, campaigns=dataclasses.replace(CONFIG.campaigns, per_year=0)
    )
    summary = generate_store(tmp_path, config=config, days=14, stores=1, visits_per_day=20)
    table = pq.read_table(tmp_path / "campaigns.parquet")
    assert summary.row_counts["campaigns"] == table.num_rows == 0
    assert table.schema.remove_metadata().equals(RAW_TABLES["campaigns"].schema)
    assert _scalar(_tables(tmp_path), "select count(campaign_id) from transactions") == 0


# --- scale and chunking -------------------------------------------------------------------


def _purchase_receipts(out: Path) -> int:
    return _scalar(
        _tables(out),
        "select count(distinct receipt_id) from transactions where quantity > 0",
    )


def test_doubling_days_stores_or_visits_doubles_receipts(tmp_path):
    counts = {}
    variants = {
        "base": {},
        "days": {"days": 2 * SCALE["days"]},
        "stores": {"stores": 2 * SCALE["stores"]},
        "visits": {"visits_per_day": 2 * SCALE["visits_per_day"]},
    }
    for name, change in variants.items():
        params = {**SCALE, **change}
        counts[name] = _purchase_receipts(generate_store(tmp_path / name, **params).out_dir)
        target = params["days"] * params["stores"] * params["visits_per_day"]
        # Poisson noise on >= 1,680 visits is < 2.5 %; members add a little more.
        assert abs(counts[name] / target - 1) < 0.06, (name, counts[name], target)
    for name in ("days", "stores", "visits"):
        assert 1.85 < counts[name] / counts["base"] < 2.15, (name, counts)


def test_chunk_size_does_not_change_the_plan(tmp_path):
    """Products, members, campaigns and visits per store-day are fixed before chunking."""
    outs = {}
    for chunk_days in (7, 31):
        config = dataclasses.replace(CONFIG, chunk_days=chunk_days)
        outs[chunk_days] = generate_store(
            tmp_path / str(chunk_days), config=config, **SMALL
        ).out_dir
    for name in ("products", "customers", "campaigns"):
        a, b = (outs[c] / f"{name}.parquet" for c in (7, 31))
        assert a.read_bytes() == b.read_bytes(), name
    per_day = (
        "select store_id, sold_at::date as day, customer_id, count(distinct receipt_id) as n "
        "from transactions where quantity > 0 group by all order by all"
    )
    assert _tables(outs[7]).execute(per_day).fetchall() == (
        _tables(outs[31]).execute(per_day).fetchall()
    )
    # Returns wait across chunk boundaries: with 7-day chunks most come from an earlier chunk.
    returns = {}
    for chunk_days, out in outs.items():
        returns[chunk_days] = _scalar(
            _tables(out),
            f"""
            select count(*) filter (where exists (
                    select 1 from transactions as p
                    where p.quantity > 0 and p.customer_id = r.customer_id
                        and p.product_id = r.product_id and p.unit_price = r.unit_price
                        and (p.sold_at::date - date '{CONFIG.start_date}') // {chunk_days}
                            < (r.sold_at::date - date '{CONFIG.start_date}') // {chunk_days}
                )) / count(*)
            from transactions as r where r.quantity < 0 and r.customer_id is not null
            """,
        )
    assert returns[7] > 0.7  # a delay of 1..30 days mostly crosses a 7-day boundary
    assert returns[31] < returns[7]


# --- planted behaviour, recovered from the raw files ----------------------------------------


def test_total_receipts_and_member_share(db):
    target = CONFIG.days * CONFIG.stores * CONFIG.visits_per_day  # 87,600
    purchases = _scalar(db, "select count(*) from receipts where is_purchase")
    assert abs(purchases / target - 1) < 0.02  # Poisson sd 0.3 %
    members = _scalar(
        db, "select avg((customer_id is not null)::int) from receipts where is_purchase"
    )
    # The member total swings with heavy-tailed visit rates (sd ~1 point at this size).
    assert abs(members - CONFIG.customers.member_receipt_share) < 0.03


def test_traffic_follows_opening_hours_and_weekdays(db):
    hours = db.execute(
        "select min(hour(sold_at)), max(hour(sold_at)) from receipts where is_purchase"
    ).fetchone()
    assert hours == (CONFIG.calendar.open_hour, CONFIG.calendar.close_hour - 1)
    by_weekday = dict(
        db.execute(
            "select isodow(sold_at), count(*) / count(distinct sold_at::date) from receipts "
            "where is_purchase group by 1"
        ).fetchall()
    )
    planted = CONFIG.calendar.weekday_weights[5] / CONFIG.calendar.weekday_weights[1]  # Sat/Tue
    assert abs(by_weekday[6] / by_weekday[2] - planted) < 0.15  # 52 days each, sd ~0.04


def test_anchor_share_and_one_family_per_receipt(db):
    n, share, most = db.execute(
        "select count(*), avg((family is not null)::int), max(families) from receipts "
        "where is_purchase"
    ).fetchone()
    planted = CONFIG.basket.anchor_receipt_share
    assert abs(share - planted) < 4 * _se(planted, n)  # +- 0.006
    assert most == 1


def test_anchor_probability_rises_with_household_size(db):
    share = dict(
        db.execute(
            "select household_size, avg((family is not null)::int) "
            "from receipts inner join customers using (customer_id) "
            "where is_purchase group by 1"
        ).fetchall()
    )
    planted = CONFIG.basket.household_anchor_multiplier
    # ~1,600 receipts of six-person households (se of the ratio ~0.05)
    assert abs(share[6] / share[1] - planted[5] / planted[0]) < 0.2
    assert abs(share[3] / share[2] - planted[2] / planted[1]) < 0.1


def test_anchor_receipts_carry_at_least_two_addon_lines(db):
    n, share, mean = db.execute(
        "select count(*), avg((addon_lines >= 2)::int), avg(addon_lines) from receipts "
        "where is_purchase and family is not null"
    ).fetchone()
    planted = CONFIG.basket.addon_min2_share
    assert abs(share - planted) < 4 * _se(planted, n)  # +- 0.005
    assert 3.0 < mean < 3.5


LIFT_SQL = """
with purchases as (select * from receipts where is_purchase),
total as (select count(*) as n from purchases),
category_share as (
    select category, count(*) / any_value(total.n) as p
    from receipt_categories inner join purchases using (receipt_id) cross join total
    group by category
),
family_size as (
    select family, count(*) as n from purchases where family is not null group by family
),
joint as (
    select family, category, count(*) as n
    from purchases inner join receipt_categories using (receipt_id)
    where family is not null and category not in (select family from family_size)
    group by family, category
)
select joint.family, joint.category, joint.n / family_size.n as p_given, family_size.n,
    category_share.p
from joint
inner join family_size using (family)
inner join category_share using (category)
"""


def test_planted_lifts_are_recovered(db):
    measured = {(f, c): (pg, n, p) for f, c, pg, n, p in db.execute(LIFT_SQL).fetchall()}
    planted_pairs = [(f, c) for f, row in CONFIG.basket.lifts.items() for c in row]
    assert len(planted_pairs) >= 6
    for family, category in planted_pairs:
        p_given, n, p = measured[(family, category)]
        tolerance = min(0.2, max(0.08, 4 * _se(p_given, n) / p))
        lift = p_given / p
        assert abs(lift - CONFIG.basket.lift(family, category)) < tolerance, (family, category)
    default = [pg / p for (f, c), (pg, _, p) in measured.items() if (f, c) not in planted_pairs]
    assert abs(np.mean(default) - CONFIG.basket.default_lift) < 0.05  # mean of 66 pairs


def test_restaurant_rates_and_timing_among_members(db):
    rates = dict(
        db.execute(
            """
            with matched as (
                select distinct receipts.receipt_id
                from receipts
                inner join restaurant_orders as o
                    on o.customer_id = receipts.customer_id
                    and o.store_id = receipts.store_id
                    and o.ordered_at::date = receipts.sold_at::date
                    and abs(epoch(o.ordered_at) - epoch(receipts.sold_at)) between 1800 and 10800
                where receipts.is_purchase
            )
            select family is not null, avg((matched.receipt_id is not null)::int)
            from receipts left join matched using (receipt_id)
            where is_purchase and customer_id is not null
            group by 1
            """
        ).fetchall()
    )
    # ~18,800 member anchor receipts (se 0.004) and ~34,700 others (se 0.002)
    assert abs(rates[True] - CONFIG.restaurant.anchor_rate) < 0.02
    assert abs(rates[False] - CONFIG.restaurant.other_rate) < 0.012
    unmatched, before, total = db.execute(
        """
        select
            count(*) filter (where not exists (
                select 1 from receipts as r
                where r.is_purchase and r.customer_id = o.customer_id
                    and r.store_id = o.store_id and r.sold_at::date = o.ordered_at::date
                    and abs(epoch(o.ordered_at) - epoch(r.sold_at)) between 1800 and 10800
            )),
            count(*) filter (where exists (
                select 1 from receipts as r
                where r.is_purchase and r.customer_id = o.customer_id
                    and o.ordered_at < r.sold_at
                    and epoch(r.sold_at) - epoch(o.ordered_at) between 1800 and 10800
            )),
            count(*)
        from restaurant_orders as o
        where o.customer_id is not null
        """
    ).fetchone()
    assert unmatched == 0
    assert 0.1 < before / total < 0.5  # some before checkout, most after


def test_restaurant_propensity_rises_with_distance(db):
    near, far = db.execute(
        """
        with visits as (
            select receipts.receipt_id, customers.distance_km,
                exists (
                    select 1 from restaurant_orders as o
                    where o.customer_id = receipts.customer_id
                        and o.store_id = receipts.store_id
                        and abs(epoch(o.ordered_at) - epoch(receipts.sold_at))
                            between 1800 and 10800
                ) as ate
            from receipts inner join customers using (customer_id)
            where receipts.is_purchase and receipts.family is null
        )
        select avg(ate::int) filter (where distance_km < 5),
            avg(ate::int) filter (where distance_km >= 40)
        from visits
        """
    ).fetchone()
    planted = CONFIG.restaurant.distance_multiplier[-1] / CONFIG.restaurant.distance_multiplier[0]
    assert abs(far / near - planted) < 0.4  # ~4,700 near and ~2,200 far receipts


def test_restaurant_amount_grows_with_household(db):
    single, family = db.execute(
        """
        select avg(amount) filter (where household_size = 1),
            avg(amount) filter (where household_size >= 4)
        from restaurant_orders inner join customers using (customer_id)
        """
    ).fetchone()
    assert family > 1.8 * single


def test_impulse_categories_sell_more_in_the_afternoon(db):
    impulse = ", ".join(f"'{c}'" for c in CONFIG.impulse.categories)
    rows = db.execute(
        f"""
        with flagged as (
            select receipts.receipt_id, hour(sold_at) as hour,
                bool_or(category in ({impulse})) as impulse,
                bool_or(category = 'STORAGE') as storage
            from receipts inner join receipt_categories using (receipt_id)
            where is_purchase group by all
        )
        select hour >= 16 and hour < 20, avg(impulse::int), avg(storage::int)
        from flagged where hour < 12 or (hour >= 16 and hour < 20) group by 1
        """
    ).fetchall()
    by_period = {afternoon: (imp, sto) for afternoon, imp, sto in rows}
    morning, afternoon = by_period[False], by_period[True]
    assert afternoon[0] - morning[0] > 0.08  # planted: ~0.43 -> ~0.58
    assert abs(afternoon[1] - morning[1]) < 0.03  # a category without impulse curve stays flat


def test_campaigns_lift_their_category_and_carry_the_discount(db):
    rows = db.execute(
        """
        with shares as (
            select c.campaign_id, c.target_category,
                avg((rc.receipt_id is not null)::int) filter (
                    where r.sold_at >= c.starts_at and r.sold_at < c.ends_at) as during,
                avg((rc.receipt_id is not null)::int) filter (
                    where r.sold_at < c.starts_at or r.sold_at >= c.ends_at) as outside
            from campaigns as c
            cross join receipts as r
            left join receipt_categories as rc
                on rc.receipt_id = r.receipt_id and rc.category = c.target_category
            where r.is_purchase
            group by all
        )
        select campaign_id, during / outside from shares
        """
    ).fetchall()
    assert len(rows) == round(CONFIG.campaigns.per_year)
    uplift = np.mean([ratio for _, ratio in rows])
    # sd of the mean ratio ~0.015; the one-category fallback of small baskets pulls ~-0.015
    assert abs(uplift - CONFIG.campaigns.uplift) < 0.08
    wrong = db.execute(
        """
        with regular as (
            select product_id, max(unit_price) as price from lines
            where campaign_id is null and quantity > 0 group by product_id
        )
        select
            count(*) filter (where l.campaign_id is null and c.campaign_id is not null),
            count(*) filter (where l.campaign_id is not null and c.campaign_id is null),
            count(*) filter (where l.campaign_id is not null and abs(
                l.unit_price - round(regular.price * (1 - c.discount_pct / 100), 2)) > 0.005),
            count(*) filter (where l.campaign_id is not null)
        from lines as l
        inner join regular using (product_id)
        left join campaigns as c
            on l.category = c.target_category and l.sold_at >= c.starts_at
            and l.sold_at < c.ends_at
        where l.quantity > 0
        """
    ).fetchone()
    assert wrong[:3] == (0, 0, 0)
    assert wrong[3] > 1000


def test_returns_share_delay_and_receipts(db):
    returned, bought = db.execute(
        "select count(*) filter (where quantity < 0), count(*) filter (where quantity > 0) "
        "from transactions"
    ).fetchone()
    returns = CONFIG.returns
    # returns due after the last day are not written
    expected = returns.line_share * (1 - (returns.max_days + 1) / 2 / CONFIG.days)
    assert abs(returned / bought - expected) < 5 * math.sqrt(expected / bought)  # +- 0.0016
    mixed = _scalar(db, "select count(*) from receipts where not is_purchase and not is_return")
    assert mixed == 0
    unmatched = _scalar(
        db,
        f"""
        select count(*) from transactions as r
        where r.quantity < 0 and r.customer_id is not null and not exists (
            select 1 from transactions as p
            where p.quantity = -r.quantity and p.customer_id = r.customer_id
                and p.store_id = r.store_id and p.product_id = r.product_id
                and p.unit_price = r.unit_price
                and r.sold_at::date - p.sold_at::date between 1 and {returns.max_days}
        )
        """,
    )
    assert unmatched == 0


def test_member_visits_follow_the_planted_bgnbd(db, year):
    end = np.datetime64(CONFIG.start_date) + np.timedelta64(CONFIG.days, "D")
    repeats, age = (
        db.execute(
            f"""
            select count(*) - 1, epoch(timestamp '{end}' - min(sold_at)) / 86400
            from receipts where is_purchase and customer_id is not null
            group by customer_id
            """
        )
        .fetchnumpy()
        .values()
    )
    bg = CONFIG.customers.bgnbd
    stay = (bg.alpha / (bg.alpha + age)) ** bg.r  # P(X(T) = 0)
    expected_mean = (
        (bg.a + bg.b - 1)
        / (bg.a - 1)
        * (1 - stay * hyp2f1(bg.r, bg.b, bg.a + bg.b - 1, age / (bg.alpha + age)))
    )
    assert repeats.size > 10_000
    # se: 0.0033 for the zero share, 0.02 for the mean (17,000 members)
    assert abs(np.mean(repeats == 0) - stay.mean()) < 0.015
    assert abs(repeats.mean() - expected_mean.mean()) < 0.1


def test_members_join_on_their_first_visit(db):
    late, never, households, median_km = db.execute(
        """
        with first as (
            select customer_id, min(sold_at) as first_at from receipts
            where is_purchase and customer_id is not null group by 1
        )
        select count(*) filter (where first.first_at != customers.joined_at),
            count(*) filter (where first.customer_id is null),
            count(distinct household_size) filter (where household_size between 1 and 6),
            median(distance_km)
        from customers left join first using (customer_id)
        """
    ).fetchone()
    assert (late, never, households) == (0, 0, 6)
    assert abs(median_km - CONFIG.customers.distance_median_km) < 0.5


def test_members_rebuy_their_favourite_addons_without_moving_popularity(db):
    """Taste: a member's add-on line is their favourite product of the category with
    probability t, else a popular draw. Two of a member's visits with the same category
    then hold the same product with probability t^2 + (1 - t^2) s, s = sum of squared
    product shares in the category (two popular draws agreeing). t is recovered from
    consecutive visit pairs, s from anonymous shoppers (who have no taste)."""
    taste = CONFIG.customers.taste_share
    pairs, same, by_chance = db.execute(
        """
        with addon as (
            select customer_id, receipt_id, sold_at, line_number, category, product_id
            from lines where size_class = 'SMALL' and quantity > 0
        ),
        popularity as (
            select category, count(*) / sum(count(*)) over (partition by category) as share
            from addon where customer_id is null group by category, product_id
        ),
        concentration as (
            select category, sum(share * share) as same_by_chance
            from popularity group by category
        ),
        visits as (  -- a member's first line of the category on each receipt
            select customer_id, category, receipt_id, any_value(sold_at) as sold_at,
                arg_min(product_id, line_number) as product_id
            from addon where customer_id is not null
            group by customer_id, category, receipt_id
        ),
        numbered as (
            select *, row_number() over (
                partition by customer_id, category order by sold_at, receipt_id
            ) as k
            from visits
        ),
        pairs as (  -- visits 1-2, 3-4, ...: disjoint pairs
            select a.category, (a.product_id = b.product_id)::int as same
            from numbered as a inner join numbered as b
                on a.customer_id = b.customer_id and a.category = b.category and b.k = a.k + 1
            where a.k % 2 = 1
        )
        select count(*), avg(same), avg(same_by_chance)
        from pairs inner join concentration using (category)
        """
    ).fetchone()
    assert pairs > 10_000
    recovered = math.sqrt((same - by_chance) / (1 - by_chance))
    se = _se(same, pairs) / (2 * taste * (1 - by_chance))  # delta method
    assert abs(recovered - taste) < 5 * se + 1e-3, (recovered, taste, se)
    assert same > 2 * by_chance  # far from a store without taste
    # favourites are drawn by popularity, so members' lines keep the anonymous shares: the
    # share of add-on lines on each category's three most popular products (clustered by
    # member: tolerance ~5 SE over the members, not the lines)
    shares = dict(
        db.execute(
            """
            with addon as (
                select customer_id is not null as member, category, product_id
                from lines where size_class = 'SMALL' and quantity > 0
            ),
            counts as (
                select category, product_id, sum(case when member then 0 else 1 end) as n
                from addon group by category, product_id
            ),
            ranked as (
                select category, product_id,
                    row_number() over (partition by category order by n desc, product_id) as r
                from counts
            )
            select member, avg((r <= 3)::int)
            from addon inner join ranked using (category, product_id) group by member
            """
        ).fetchall()
    )
    assert abs(shares[True] - shares[False]) < 0.02, shares


def test_addons_carry_higher_margins_than_anchors(db):
    margins = dict(
        db.execute(
            """
            select products.category, avg(1 - products.unit_cost / lines.unit_price)
            from lines inner join products using (product_id)
            where lines.campaign_id is null and lines.quantity > 0 group by 1
            """
        ).fetchall()
    )
    for spec in (*CONFIG.catalogue.anchors, *CONFIG.catalogue.addons):
        assert abs(margins[spec.name] - spec.margin) < 0.01, spec.name  # cost rounded to cents
    assert min(c.margin for c in CONFIG.catalogue.addons) > max(
        f.margin for f in CONFIG.catalogue.anchors
    )


# --- dirty rows ---------------------------------------------------------------------------

# Staging's checks in its precedence order, on text (CSV) or typed values cast to text.
CHECKS = {
    "transactions": [
        ("missing_receipt_id", "receipt_id is null"),
        ("missing_store_id", "store_id is null"),
        ("missing_product_id", "product_id is null"),
        ("missing_quantity", "quantity is null"),
        ("unparseable_quantity", "try_cast(quantity as integer) is null"),
        ("zero_quantity", "try_cast(quantity as integer) = 0"),
        ("missing_unit_price", "unit_price is null"),
        ("unparseable_unit_price", "try_cast(unit_price as double) is null"),
        ("non_positive_unit_price", "try_cast(unit_price as double) <= 0"),
        ("missing_sold_at", "sold_at is null"),
        ("unparseable_sold_at", "try_cast(sold_at as timestamp) is null"),
        (
            "sold_at_out_of_range",
            "try_cast(sold_at as timestamp) not between '2000-01-01' and '2099-12-31 23:59:59'",
        ),
        (
            "unknown_product",
            "product_id not in (select product_id from products where product_id is not null)",
        ),
    ],
    "products": [
        ("missing_product_id", "product_id is null"),
        ("missing_category", "category is null"),
        ("invalid_size_class", "size_class not in ('LARGE', 'SMALL')"),
        ("negative_unit_cost", "try_cast(unit_cost as double) < 0"),
    ],
    "customers": [
        ("missing_customer_id", "customer_id is null"),
        ("invalid_household_size", "try_cast(household_size as integer) not between 1 and 99"),
        ("negative_distance_km", "try_cast(distance_km as double) < 0"),
    ],
    "restaurant_orders": [
        ("missing_restaurant_order_id", "restaurant_order_id is null"),
        ("missing_store_id", "store_id is null"),
        ("unparseable_ordered_at", "try_cast(ordered_at as timestamp) is null"),
        ("non_positive_amount", "try_cast(amount as double) <= 0"),
    ],
    "campaigns": [
        (
            "invalid_campaign_period",
            "try_cast(ends_at as timestamp) <= try_cast(starts_at as timestamp)",
        ),
    ],
}
KEYS = {
    "transactions": ("receipt_id, line_number", "duplicate_line"),
    "products": ("product_id", "duplicate_product_id"),
    "customers": ("customer_id", "duplicate_customer_id"),
    "restaurant_orders": ("restaurant_order_id", "duplicate_restaurant_order_id"),
    "campaigns": ("campaign_id, target_category, target_product_id", "duplicate_campaign_target"),
}


def _checked(table: str) -> str:
    """SQL: every row as text with its rejection reason (null when staging keeps it)."""
    cases = " ".join(f"when {condition} then '{reason}'" for reason, condition in CHECKS[table])
    key, duplicate = KEYS[table]
    columns = ", ".join(RAW_TABLES[table].columns)
    return f"""
        with text_rows as (select columns(*)::varchar from {table}),
        checked as (select *, case {cases} end as reason from text_rows),
        ranked as (
            select *, row_number() over (
                partition by {key}, reason is null order by {columns}) as key_rank
            from checked
        )
        select {columns},
            coalesce(reason, case when key_rank > 1 then '{duplicate}' end) as rejection
        from ranked
    """


def _rejections(out: Path, fmt: str) -> dict[str, dict[str, int]]:
    """Rows per rejection reason: first failing check wins, duplicates among valid rows."""
    con = _tables(out, fmt)
    return {
        table: dict(
            con.execute(
                f"select rejection, count(*) from ({_checked(table)}) "
                "where rejection is not null group by 1"
            ).fetchall()
        )
        for table in RAW_TABLES
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_dirty_ledger_matches_what_staging_would_reject(dirty_stores, fmt):
    ledger = json.loads((dirty_stores[f"dirty_{fmt}"] / "_dirty_ledger.json").read_text())
    assert _rejections(dirty_stores[f"dirty_{fmt}"], fmt) == ledger
    assert _rejections(dirty_stores[f"clean_{fmt}"], fmt) == {name: {} for name in RAW_TABLES}
    for table in RAW_TABLES:
        assert ledger[table], f"nothing injected into {table}"
    unparseable = {"unparseable_quantity", "unparseable_unit_price", "unparseable_sold_at"}
    reasons = set(ledger["transactions"])
    if fmt == "csv":
        assert unparseable <= reasons and len(reasons) == 11
    else:
        assert not unparseable & reasons and len(reasons) == 8


def test_dirty_share_and_spread_over_reasons(dirty_stores):
    ledger = json.loads((dirty_stores["dirty_csv"] / "_dirty_ledger.json").read_text())
    clean_lines = _scalar(
        _tables(dirty_stores["clean_csv"], "csv"), "select count(*) from transactions"
    )
    counts = ledger["transactions"].values()
    assert abs(sum(counts) - DIRTY_FRACTION * clean_lines) <= 1
    assert max(counts) - min(counts) <= 1  # round-robin


def test_dirty_rows_are_added_and_clean_rows_untouched(dirty_stores):
    """Dropping the rejected rows of the dirty store gives back the clean store exactly."""
    con = _tables(dirty_stores["dirty_parquet"])
    for table in RAW_TABLES:
        clean = dirty_stores["clean_parquet"] / f"{table}.parquet"
        columns = ", ".join(RAW_TABLES[table].columns)
        kept = f"select {columns} from ({_checked(table)}) where rejection is null"
        original = f"select columns(*)::varchar from read_parquet('{clean}')"
        for a, b in ((kept, original), (original, kept)):
            assert _scalar(con, f"select count(*) from (({a}) except all ({b}))") == 0, table


def test_csv_holds_unparseable_text_that_fails_to_cast(dirty_stores):
    ledger = json.loads((dirty_stores["dirty_csv"] / "_dirty_ledger.json").read_text())
    con = _tables(dirty_stores["dirty_csv"], "csv")
    bad = con.execute(
        """
        select count(*) filter (where try_cast(quantity as integer) is null),
            count(*) filter (where try_cast(unit_price as double) is null),
            count(*) filter (where try_cast(sold_at as timestamp) is null)
        from transactions
        """
    ).fetchone()
    expected = tuple(
        ledger["transactions"][f"unparseable_{c}"] for c in ("quantity", "unit_price", "sold_at")
    )
    assert bad == expected


# --- configuration ------------------------------------------------------------------------


def test_config_is_frozen_and_user_yaml_overrides_single_keys(tmp_path):
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONFIG.days = 1  # type: ignore[misc]
    path = tmp_path / "mine.yml"
    path.write_text("basket:\n  lifts:\n    TABLES: {KITCHENWARE: 1.7}\ndays: 30\n")
    mine = load_config(path)
    assert mine.days == 30 and mine.basket.lift("TABLES", "KITCHENWARE") == 1.7
    assert mine.basket.lift("TABLES", "CHAIRS") == CONFIG.basket.lift("TABLES", "CHAIRS")
    assert mine.catalogue == CONFIG.catalogue
    path.write_text("basket:\n  anchor_share: 0.3\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(path)


def test_unplantable_parameters_are_rejected(tmp_path):
    lifts = {**CONFIG.basket.lifts, "TABLES": {"KITCHENWARE": 4.0}}
    config = dataclasses.replace(CONFIG, basket=dataclasses.replace(CONFIG.basket, lifts=lifts))
    with pytest.raises(ConfigError, match="KITCHENWARE"):
        generate_store(tmp_path, config=config, days=14)
    assert not any(tmp_path.glob("*.parquet"))
