"""xsell.frames: DuckDB results read through Arrow equal DuckDB's own .df()."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from xsell.frames import frame_of

COLUMNS = """
    i::int as plain_int,
    case when i > 0 then i end::int as nullable_int,
    'r' || i as text,
    case when i > 0 then 'y' end as nullable_text,
    null::varchar as empty_text,
    date '2020-01-01' + i::int as day,
    timestamp '2020-01-01 10:00' + to_hours(i) as moment,
    1.5::decimal(10, 2) as price,
    sum(i) over () as hugeint_sum,
    i::bigint as big,
    i > 0 as flag,
    case when i > 0 then true end as nullable_flag,
    [i, i + 1] as numbers,
    ['a' || i, 'b'] as words,
    i / 3 as ratio,
    i::float as single
"""


@pytest.mark.parametrize("rows", [0, 1, 4])
def test_frame_of_equals_duckdb_df(rows):
    con = duckdb.connect()
    query = f"select {COLUMNS} from range({rows}) as t(i) order by i"
    expected = con.sql(query).df()
    got = frame_of(con.sql(query))
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected)
    if rows:
        # the point of reading through Arrow: text is pandas' string dtype, not objects
        assert isinstance(got["text"].dtype, pd.StringDtype)
        assert str(got["hugeint_sum"].dtype) == "float64"
        assert str(got["nullable_int"].dtype) == "Int32"


def test_frame_of_keeps_the_column_order_and_names():
    con = duckdb.connect()
    got = frame_of(con.sql("select 1 as b, 'x' as a, 2 as c"))
    assert list(got.columns) == ["b", "a", "c"]
    assert got.iloc[0].tolist() == [1, "x", 2]


def test_frame_of_reads_chosen_text_columns_as_categoricals():
    con = duckdb.connect()
    query = ("select 'r' || (i // 2) as receipt, case when i % 3 > 0 then 'c' || (i % 3) end "
             "as customer, i from range(6) as t(i) order by i")
    got = frame_of(con.sql(query), categorical=["receipt", "customer"])
    plain = con.sql(query).df()
    assert isinstance(got["receipt"].dtype, pd.CategoricalDtype)
    assert got["receipt"].cat.categories.size == 3  # one string per distinct id
    assert got["receipt"].astype(str).tolist() == plain["receipt"].tolist()
    assert got["customer"].isna().tolist() == plain["customer"].isna().tolist()
    assert got["customer"].dropna().astype(str).tolist() == plain["customer"].dropna().tolist()
    pd.testing.assert_series_equal(got["i"], plain["i"])
    with pytest.raises(KeyError, match="nope"):
        frame_of(con.sql(query), categorical=["nope"])


def test_to_arrow_writes_categorical_text_as_varchar_and_arrow_dates_as_date():
    from xsell.frames import to_arrow
    from xsell.ml.evaluation import DATE_DTYPE

    frame = pd.DataFrame({
        "id": pd.Categorical.from_codes([0, 1, 0, -1], categories=["a", "b"]),
        "day": pd.array([pd.Timestamp("2025-01-02").date()] * 4, dtype=DATE_DTYPE),
        "value": [1.0, 2.0, 3.0, 4.0],
    })
    con = duckdb.connect()
    con.register("result", to_arrow(frame))
    con.execute("create table t as select * from result")
    assert [row[:2] for row in con.execute("describe t").fetchall()] == [
        ("id", "VARCHAR"), ("day", "DATE"), ("value", "DOUBLE")]
    assert con.execute("select id from t order by value").fetchall() == [
        ("a",), ("b",), ("a",), (None,)]
