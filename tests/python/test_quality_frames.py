"""The quality gate's frames: what it reads from the build is what DuckDB's .df() gives,
whichever route (Arrow or DuckDB's own conversion) each column takes."""

from __future__ import annotations

import os

import duckdb
import pytest

from xsell.quality.gate import _fetch_frame

COLUMNS = {
    "ti": "1::tinyint", "si": "1::smallint", "i": "1::integer", "bi": "1::bigint",
    "hi": "1::hugeint", "uti": "1::utinyint", "ubi": "1::ubigint", "f": "1.5::float",
    "d": "1.5::double", "b": "true", "dec": "1.25::decimal(10, 2)",
    "dt": "date '2020-01-01'", "ts": "timestamp '2020-01-01 10:00:00'",
    "tstz": "timestamptz '2020-01-01 10:00:00+00'", "iv": "interval 1 day", "s": "'a'",
    "tss": "'2020-01-01'::timestamp_s", "tsms": "'2020-01-01'::timestamp_ms",
    "tsns": "'2020-01-01'::timestamp_ns", "tm": "'10:00'::time", "bl": "'x'::blob",
    "lst": "[1, 2]", "st": "{'a': 1}", "nothing": "null",
}


@pytest.fixture(scope="module")
def con():
    with duckdb.connect() as con:
        values = ", ".join(f"{value} as {name}" for name, value in COLUMNS.items())
        nulls = ", ".join(f"null as {name}" for name in COLUMNS)
        con.execute(f"create table t as select {values} union all select {nulls}")
        yield con


@pytest.mark.parametrize("where", ["", "where ti is not null", "where ti is null", "where false"])
def test_frames_are_what_duckdb_df_gives(con, where):
    """Values, nulls, an all-null column and no rows: dtypes and values as .df()'s."""
    query = f"select * from t {where}"
    frame, expected = _fetch_frame(con, query), con.sql(query).df()
    assert list(frame.columns) == list(expected.columns)
    assert list(frame.dtypes) == list(expected.dtypes)
    assert frame.equals(expected)



def test_a_large_build_is_validated_in_one_process():
    from xsell.quality import gate

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("one core: the gate never forks")
    small = {"marts.a": 1_000, "staging.v": None}
    large = {"marts.a": gate.PARALLEL_MAX_ROWS, "marts.b": 1}
    assert gate._worker_count(None, 40, small) == min(gate.DEFAULT_WORKERS, cores)
    assert gate._worker_count(None, 40, large) == 1
    assert gate._worker_count(2, 40, large) == 2  # an explicit count is kept
