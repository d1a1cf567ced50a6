"""Raw-contract folders of data shapes xsell was not built against, derived from small
generated stores: every receipt anonymous, members only, no prices, dates without times,
short histories, nobody buying twice, every or no product an anchor, a single receipt,
one day. Each shape is a few thousand lines so that a build takes seconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from xsell import rawfiles
from xsell.generate import generate_store

TABLES = ("transactions", "products", "customers", "restaurant_orders", "campaigns")


def _rewrite(raw: Path, table: str, select: str) -> None:
    """Replace raw/<table>.parquet by `select ... from t` (t = the table as it is)."""
    path = raw / f"{table}.parquet"
    tmp = raw / f".{table}.tmp.parquet"
    con = duckdb.connect()
    con.execute(f"create view t as select * from read_parquet('{path}')")
    con.execute(f"copy ({select}) to '{tmp}' (format parquet)")
    con.close()
    tmp.replace(path)


def _anonymous(raw: Path) -> None:
    _rewrite(raw, "transactions", "select * replace (cast(null as varchar) as customer_id) from t")
    _rewrite(raw, "restaurant_orders",
             "select * replace (cast(null as varchar) as customer_id) from t")
    _rewrite(raw, "customers", "select * from t where false")


def _members_only(raw: Path) -> None:
    # every receipt gets a member: anonymous receipts are given to a member chosen by the
    # receipt id, so the receipt stays one basket
    _rewrite(raw, "transactions", """
        with members as (
            select customer_id, row_number() over (order by customer_id) - 1 as k
            from (select distinct customer_id from t where customer_id is not null)
        ),
        picked as (
            select receipt_id, any_value(customer_id) as customer_id
            from t group by receipt_id
        )
        select t.* replace (coalesce(t.customer_id, members.customer_id) as customer_id)
        from t
        join picked using (receipt_id)
        left join members
            on members.k = hash(t.receipt_id) % (select count(*) from members)
        """)


def _no_prices(raw: Path) -> None:
    _rewrite(raw, "transactions", "select * replace (cast(null as double) as unit_price) from t")
    _rewrite(raw, "products", "select * replace (cast(null as double) as unit_cost) from t")


def _date_only(raw: Path) -> None:
    _rewrite(raw, "transactions",
             "select * replace (cast(cast(sold_at as date) as timestamp) as sold_at) from t")


def _nobody_twice(raw: Path) -> None:
    # each member keeps only their first purchase receipt (returns dropped with the rest)
    _rewrite(raw, "transactions", """
        with first_receipt as (
            select customer_id, arg_min(receipt_id, sold_at) as receipt_id
            from t where customer_id is not null and quantity > 0 group by customer_id
        )
        select t.* from t
        where t.customer_id is null
           or t.receipt_id in (select receipt_id from first_receipt)
        """)


def _all_anchors(raw: Path) -> None:
    _rewrite(raw, "products", "select * replace ('LARGE' as size_class) from t")


def _no_anchors(raw: Path) -> None:
    _rewrite(raw, "products", "select * replace ('SMALL' as size_class) from t")


def _single_receipt(raw: Path) -> None:
    _rewrite(raw, "transactions", """
        select * from t
        where receipt_id = (select min(receipt_id) from t where customer_id is not null
                            and quantity > 0)
        """)


SHAPES: dict[str, tuple[dict, Callable[[Path], None] | None]] = {
    # name: (generate_store arguments, transformation of the raw folder)
    "anonymous": ({"days": 60}, _anonymous),
    "members_only": ({"days": 60}, _members_only),
    "no_prices": ({"days": 60}, _no_prices),
    "date_only": ({"days": 60}, _date_only),
    "days_7": ({"days": 7}, None),
    "days_14": ({"days": 14}, None),
    "nobody_twice": ({"days": 60}, _nobody_twice),
    "all_anchors": ({"days": 60}, _all_anchors),
    "no_anchors": ({"days": 60}, _no_anchors),
    "single_receipt": ({"days": 14}, _single_receipt),
    "one_day": ({"days": 1}, None),
}


def make_shape(name: str, raw: Path, *, seed: int = 7) -> Path:
    """Write the raw folder of shape `name` into raw (replaced if present)."""
    options, transform = SHAPES[name]
    if raw.exists():
        shutil.rmtree(raw)
    generate_store(raw, seed=seed, stores=1, visits_per_day=40, **options)
    if transform is not None:
        transform(raw)
        # the shape's files are what the build should read: recorded as xsell's own
        rawfiles.record(raw, "tests/python/shapes.py")
    return raw
