"""Incremental builds: the line fact and the baskets after an append equal a full refresh.

A tiny store is built once from its first days ("first"), then its raw transactions are
replaced by all days ("all") and the build runs again incrementally. Between the two
loads the data does what a day's append does in practice:

- the last loaded day D was loaded only until 15:00; its afternoon arrives later;
- one line of a receipt from the day before D (D-1) arrives late: its receipt was
  loaded without it (caught only because the reload window reaches back
  `incremental_lookback_days` = 1 day before D);
- one receipt from D has a line scanned after midnight, on the new day D+1: the basket
  of a receipt that began on an already loaded day must be recomputed whole;
- day D+1 is new.

The incremental result must equal a `--full-refresh` build of the same data, row for
row (EXCEPT ALL both ways), for the line fact, both basket models and four marts
downstream of them (attach rates cross the attach window, revenue mix sums every line,
and the star schema's line and receipt facts, incremental themselves).

Negative case, to show the comparison has teeth: the same append with
`incremental_lookback_days = 0` reloads only from D, so the late line of D-1 is never
loaded; the fact and baskets then differ from the full refresh, and the consistency test
line_fact_matches_staging fails the build. A missing lookback, a filter on the wrong
date or baskets recomputed from the new lines only (instead of all lines of the touched
receipts) would all make the positive comparison fail the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from support import PROJECT_DIR

from xsell import rawfiles
from xsell.dbt_runner import dbt_env, run_dbt
from xsell.generate import generate_store

pytestmark = pytest.mark.dbt

TINY_STORE = {"seed": 5, "days": 14, "stores": 1, "visits_per_day": 30}
SELECTION = [
    "--select",
    "path:models/staging",
    "+int_basket_items",
    "+int_receipts_aggregated",
    "+fct_attach_rates",
    "+fct_revenue_mix",
    "+fct_sales_lines",
    "+fct_receipts",
    "+dim_products",
    "+dim_stores",
    "+dim_dates",
    # the tests of the selected models only (not the foreign keys to dim_customers)
    "--indirect-selection",
    "cautious",
]
COMPARED = [
    "intermediate.int_transaction_lines_enriched",
    "intermediate.int_receipts_aggregated",
    "intermediate.int_basket_items",
    "marts.fct_attach_rates",
    "marts.fct_revenue_mix",
    "marts.fct_sales_lines",
    "marts.fct_receipts",
]


def _split_raw(raw_all: Path, raw_first: Path) -> dict[str, str]:
    """Rewrite raw_all's transactions (one line moved past midnight) and write the first
    load to raw_first (other tables copied as they are). Returns the planted cases."""
    shutil.copytree(raw_all, raw_first)
    path = raw_all / "transactions.parquet"
    with duckdb.connect() as con:
        con.execute(f"create table lines as select * from read_parquet('{path}')")
        last_day = con.execute("select max(cast(sold_at as date)) from lines").fetchone()[0]
        loaded_day = con.execute(
            "select max(cast(sold_at as date)) from lines where cast(sold_at as date) < ?",
            [last_day],
        ).fetchone()[0]

        def receipt_on(day: str) -> str:
            # a receipt of that morning with at least two lines, chosen deterministically
            return con.execute(
                f"""
                select receipt_id from lines
                where cast(sold_at as date) = {day} and extract(hour from sold_at) < 15
                group by receipt_id having count(*) >= 2
                order by receipt_id limit 1
                """
            ).fetchone()[0]

        late_receipt = receipt_on(f"date '{loaded_day}' - 1")
        midnight_receipt = receipt_on(f"date '{loaded_day}'")
        con.execute(
            """
            update lines set sold_at = cast(? as date) + interval 5 minute
            where receipt_id = ? and line_number = (
                select max(line_number) from lines where receipt_id = ?
            )
            """,
            [last_day, midnight_receipt, midnight_receipt],
        )
        con.execute(f"copy (select * from lines order by all) to '{path}' (format parquet)")
        con.execute(
            f"""
            copy (
                select * from lines
                where sold_at < cast(? as date) + interval 15 hour
                    and not (receipt_id = ? and line_number = (
                        select max(line_number) from lines where receipt_id = ?
                    ))
                order by all
            ) to '{raw_first / "transactions.parquet"}' (format parquet)
            """,
            [loaded_day, late_receipt, late_receipt],
        )
    return {"late_receipt": late_receipt, "midnight_receipt": midnight_receipt}


def _dbt(args: list[str], raw: Path, db: Path, work: Path, name: str):
    env = dbt_env(raw, "parquet", db)
    env["DBT_LOG_PATH"] = str(work / "logs" / name)
    return run_dbt(args, PROJECT_DIR, env, target_path=work / "target" / name, quiet=True)


def _copy_db(source: Path, target: Path) -> None:
    shutil.copy(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copy(wal, target.with_name(target.name + ".wal"))


def _differences(db_a: Path, db_b: Path) -> dict[str, tuple[int, int]]:
    """Per table, rows only in a and rows only in b (EXCEPT ALL both ways); doubles are
    rounded to 9 decimals, as sums may add the same values in another order."""
    found = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{db_a}' as a (read_only)")
        con.execute(f"attach '{db_b}' as b (read_only)")
        for table in COMPARED:
            schema, name = table.split(".")
            columns = con.execute(
                """
                select column_name, data_type from duckdb_columns()
                where database_name = 'a' and schema_name = ? and table_name = ?
                order by column_index
                """,
                [schema, name],
            ).fetchall()
            assert columns, f"{table} missing"
            select = ", ".join(
                f'round("{column}", 9) as "{column}"' if kind == "DOUBLE" else f'"{column}"'
                for column, kind in columns
            )
            only = []
            for left, right in (("a", "b"), ("b", "a")):
                only.append(con.execute(
                    f"select count(*) from (select {select} from {left}.{table} "
                    f"except all select {select} from {right}.{table})"
                ).fetchone()[0])
            found[table] = tuple(only)
    return found


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    work = tmp_path_factory.mktemp("incremental")
    raw_all, raw_first = work / "raw_all", work / "raw_first"
    generate_store(raw_all, **TINY_STORE)
    planted = _split_raw(raw_all, raw_first)
    for raw in (raw_all, raw_first):  # rewritten by hand on purpose: accept them
        rawfiles.accept(raw)
    incremental, negative = work / "incremental.duckdb", work / "negative.duckdb"

    first = _dbt(["build", *SELECTION], raw_first, incremental, work, "first")
    assert first.ok, first.summary()
    _copy_db(incremental, negative)

    appended = _dbt(["build", *SELECTION], raw_all, incremental, work, "appended")
    no_lookback = _dbt(
        ["build", *SELECTION, "--vars", "{incremental_lookback_days: 0}"],
        raw_all, negative, work, "no_lookback",
    )
    no_lookback_diff = _differences(negative, incremental)
    refreshed = _dbt(["build", *SELECTION, "--full-refresh"], raw_all, negative, work, "full")
    return {
        "planted": planted, "raw_first": raw_first, "raw_all": raw_all,
        "incremental": incremental, "full": negative,
        "appended": appended, "no_lookback": no_lookback,
        "no_lookback_diff": no_lookback_diff, "refreshed": refreshed,
    }


def test_split_plants_the_boundary_cases(builds):
    """The first load really lacks the late line, the afternoon of its last day and the
    after-midnight line, so the comparison below exercises them."""
    first, every = builds["raw_first"], builds["raw_all"]
    with duckdb.connect() as con:
        counts = {
            name: con.execute(f"select count(*) from '{raw}/transactions.parquet'").fetchone()[0]
            for name, raw in (("first", first), ("all", every))
        }
        late_lines = [
            con.execute(
                f"select count(*) from '{raw}/transactions.parquet' where receipt_id = ?",
                [builds["planted"]["late_receipt"]],
            ).fetchone()[0]
            for raw in (first, every)
        ]
    assert counts["first"] < counts["all"]
    assert late_lines[0] == late_lines[1] - 1


def test_incremental_append_equals_full_refresh(builds):
    assert builds["appended"].ok, builds["appended"].summary()
    assert builds["refreshed"].ok, builds["refreshed"].summary()
    differences = _differences(builds["incremental"], builds["full"])
    assert differences == {table: (0, 0) for table in COMPARED}
    with duckdb.connect(str(builds["incremental"]), read_only=True) as con:
        days = con.execute(
            "select count(distinct sold_date) from intermediate.int_transaction_lines_enriched"
        ).fetchone()[0]
        straddling = con.execute(
            "select count(distinct sold_date) from intermediate.int_transaction_lines_enriched "
            "where receipt_id = ?",
            [builds["planted"]["midnight_receipt"]],
        ).fetchone()[0]
    assert days == TINY_STORE["days"]
    assert straddling == 2


def test_without_lookback_the_late_line_is_lost_and_the_build_says_so(builds):
    """Negative case: reloading only from the last loaded day misses the late line of the
    day before; the comparison sees it, and so does the consistency test."""
    result = builds["no_lookback"]
    assert not result.ok
    assert any("line_fact_matches_staging" in f.unique_id for f in result.failures), (
        result.summary()
    )
    differences = builds["no_lookback_diff"]
    fact = differences["intermediate.int_transaction_lines_enriched"]
    assert fact == (0, 1)  # the incremental build holds every line but the late one
    assert differences["intermediate.int_receipts_aggregated"] != (0, 0)
