"""The same dbt project on Apache Spark (dbt-spark, `session` method) and on DuckDB.

A small dirty synthetic store (1 store, 60 days) is built twice from the same Parquet
files: `dbt build` on the duckdb target and on the spark target, both with the dbt
Python models off (var python_models; the spark target's default), so both engines
run the same models and tests. Then every SQL mart is read from each engine and
compared row for row after sorting on its key columns.

Rounding: doubles must agree to a relative 1e-9 (absolute 1e-12 near zero), because
the engines add floating-point numbers in different orders; text, integers, booleans,
dates and timestamps (compared as ISO text) must be equal exactly, nulls included.

Run with `make test-spark` (installs the `spark` extra; needs Java 17).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from compare import MartMismatch, assert_marts_match

from xsell.contract import RAW_TABLES
from xsell.generate import generate_store

pytestmark = pytest.mark.spark

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT = str(Path(sys.executable).parent / "dbt")

STORE = {"seed": 5, "days": 60, "stores": 1, "dirty_fraction": 0.01}

# Every SQL mart, with the columns that identify a row (its primary-key tests).
MARTS = {
    "fct_attach_rates_daily": ["anchor_family", "store_id", "sold_date"],
    "fct_attach_rates": ["anchor_family", "store_id"],
    "fct_attach_rates_overall": ["store_id"],
    "fct_addon_lift": ["store_id", "anchor_family", "addon_category"],
    "fct_revenue_mix": ["store_id", "sold_date", "revenue_stream"],
    "fct_impulse_by_hour": ["sold_weekday", "sold_hour"],
    "fct_restaurant_conversion_daily": ["anchor_family", "store_id", "sold_date"],
    "fct_restaurant_conversion": ["anchor_family", "store_id"],
    "fct_restaurant_conversion_by_group": ["shopper_group", "store_id"],
    "fct_restaurant_timing": ["shopper_group", "bucket_order"],
    "fct_product_affinity": ["relation", "product_id", "affinity_rank"],
    "fct_promotion_uplift": ["campaign_target_id"],
    "fct_customer_rfm": ["customer_id"],
    "fct_cohort_retention": ["cohort_month", "months_since_first_purchase"],
    "fct_customer_coverage": ["store_id"],
    "fct_revenue_at_risk": ["rfm_segment"],
    "dim_customers": ["customer_id"],
    "fct_analysis_coverage": ["analysis", "store_id"],
    "fct_sales_lines": ["store_id", "receipt_id", "line_number"],
    "fct_receipts": ["store_id", "receipt_id"],
    "dim_products": ["product_id"],
    "dim_stores": ["store_id"],
    "dim_dates": ["date_day"],
}

# DuckDB type -> Spark type of the same contract data_type.
SAME_TYPE = {
    "VARCHAR": "string",
    "BIGINT": "bigint",
    "INTEGER": "int",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}


def _run_dbt(args: list[str], work: Path, name: str, **env_overrides: str):
    """`dbt <args>` in a subprocess from the project root; output kept in work/<name>.log."""
    env = dict(os.environ)
    env.update(
        {
            "DBT_TARGET_PATH": str(work / f"target_{name}"),
            "DBT_LOG_PATH": str(work / f"logs_{name}"),
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "XSELL_RAW_FORMAT": "parquet",
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
    )
    env.update(env_overrides)
    log = work / f"{name}.log"
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(
            [DBT, *args], cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - started
    results_file = work / f"target_{name}" / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.is_file() else []
    return done.returncode, results, log, seconds


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The store built on both engines: paths, dbt run results and timings."""
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java (17): no `java` on the PATH")
    pytest.importorskip("pyspark", reason="install the spark extra: make test-spark")
    work = tmp_path_factory.mktemp("spark_vs_duckdb")
    raw = work / "raw"
    generate_store(raw, **STORE)
    duckdb_file = work / "duckdb.duckdb"
    spark_dir = work / "spark"

    duck_code, duck_results, duck_log, duck_seconds = _run_dbt(
        ["build", "--vars", "{python_models: false}"], work, "duckdb",
        XSELL_TARGET="duckdb", XSELL_RAW_DIR=str(raw), XSELL_BUILD_DB=str(duckdb_file),
    )
    assert duck_code == 0, _tail(duck_log)
    spark_code, spark_results, spark_log, spark_seconds = _run_dbt(
        ["build"], work, "spark",
        XSELL_TARGET="spark", XSELL_RAW_DIR=str(raw), XSELL_SPARK_DIR=str(spark_dir),
    )
    assert spark_code == 0, _tail(spark_log)
    counts: dict[str, int] = {}
    for result in spark_results:
        kind = result["unique_id"].split(".")[0]
        counts[kind] = counts.get(kind, 0) + 1
    print(
        f"\ndbt build of the test store ({STORE}): duckdb {duck_seconds:.0f} s, "
        f"spark {spark_seconds:.0f} s; nodes run on spark: {counts}"
    )
    return {
        "work": work,
        "raw": raw,
        "duckdb": duckdb_file,
        "spark_dir": spark_dir,
        "duck_results": duck_results,
        "spark_results": spark_results,
    }


@pytest.fixture(scope="module")
def spark(builds):
    """A Spark session on the metastore and warehouse the spark build wrote."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark_dir = builds["spark_dir"]
    session = (
        SparkSession.builder.master("local[2]")
        .appName("xsell-spark-test")
        .enableHiveSupport()
        .config("spark.sql.warehouse.dir", str(spark_dir / "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            "jdbc:derby:;databaseName=metastore_db;create=false",
        )
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dderby.system.home={spark_dir} -Dderby.stream.error.file={spark_dir}/derby.log",
        )
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _spark_frame(spark, relation: str) -> tuple[pd.DataFrame, dict[str, str]]:
    frame = spark.table(relation)
    types = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
    columns = [
        f"cast(`{name}` as string) as `{name}`" if kind in ("date", "timestamp") else f"`{name}`"
        for name, kind in types.items()
    ]
    rows = frame.selectExpr(*columns).collect()
    return pd.DataFrame([tuple(row) for row in rows], columns=list(types), dtype=object), types


def _duckdb_frame(con, relation: str) -> tuple[pd.DataFrame, dict[str, str]]:
    schema, table = relation.split(".")
    types = dict(
        con.execute(
            "select column_name, data_type from duckdb_columns() "
            "where schema_name = ? and table_name = ? order by column_index",
            [schema, table],
        ).fetchall()
    )
    columns = [
        f'cast("{name}" as varchar) as "{name}"' if kind in ("DATE", "TIMESTAMP") else f'"{name}"'
        for name, kind in types.items()
    ]
    rows = con.execute(f"select {', '.join(columns)} from {relation}").fetchall()
    return pd.DataFrame(rows, columns=list(types), dtype=object), types


FAILED = {"error", "fail", "runtime error", "skipped"}


def _nodes(results: list[dict]) -> set[str]:
    return {result["unique_id"] for result in results}


def _statuses(results: list[dict]) -> dict[str, str]:
    return {result["unique_id"]: result["status"] for result in results}


def test_spark_build_runs_the_same_models_and_tests_as_duckdb(builds):
    spark_results = builds["spark_results"]
    failed = [r["unique_id"] for r in spark_results if r["status"] in FAILED]
    assert not failed, f"not successful on spark: {failed}"
    # Same nodes, same outcome (the dirty store makes some quarantine-share tests warn).
    assert _statuses(spark_results) == _statuses(builds["duck_results"])
    models = {n for n in _nodes(spark_results) if n.startswith("model.")}
    assert {f"model.xsell.{mart}" for mart in MARTS} <= models
    assert sum(n.startswith("test.") for n in _nodes(spark_results)) > 150
    assert sum(n.startswith("unit_test.") for n in _nodes(spark_results)) >= 5


def test_python_models_and_what_reads_them_are_off_on_spark(builds):
    manifest = json.loads((builds["work"] / "target_spark" / "manifest.json").read_text())
    languages = {node["language"] for node in manifest["nodes"].values() if "language" in node}
    assert languages == {"sql"}
    disabled = {node[0]["name"] for node in manifest["disabled"].values()}
    assert {
        "ml_model_metrics", "ml_customer_lifetime_value", "ml_recommendations",
        "fct_association_rules", "fct_frequent_itemsets", "top_rules",
    } <= disabled


@pytest.mark.parametrize("mart", sorted(MARTS))
def test_mart_equals_the_duckdb_build_row_for_row(builds, spark, mart):
    relation = f"marts.{mart}"
    with duckdb.connect(str(builds["duckdb"]), read_only=True) as con:
        expected, duck_types = _duckdb_frame(con, relation)
    actual, spark_types = _spark_frame(spark, relation)
    assert {name: SAME_TYPE.get(kind, kind) for name, kind in duck_types.items()} == spark_types
    assert len(expected) > 0, f"{mart} is empty: the test store should fill every mart"
    doubles = {name for name, kind in duck_types.items() if kind == "DOUBLE"}
    assert_marts_match(mart, expected, actual, MARTS[mart], doubles)


def test_ml_columns_are_null_without_python_models(spark):
    nulls = spark.sql(
        "select count(*) as rows, count(lifetime_value) as values, count(ml_segment_id) as ids "
        "from marts.dim_customers"
    ).collect()[0]
    assert nulls["rows"] > 0 and nulls["values"] == 0 and nulls["ids"] == 0


@pytest.mark.parametrize("table", list(RAW_TABLES))
def test_staging_keeps_and_quarantines_the_same_rows(builds, spark, table):
    query = (
        f"select rejection_reason, count(*) as n from staging.base_pos__{table} "
        "group by rejection_reason"
    )
    with duckdb.connect(str(builds["duckdb"]), read_only=True) as con:
        expected = dict(con.execute(query).fetchall())
    actual = {row["rejection_reason"]: row["n"] for row in spark.sql(query).collect()}
    assert actual == expected
    if table == "transactions":
        assert len(expected) > 1, "the dirty store should quarantine transaction lines"


def test_missing_raw_files_on_spark(builds, tmp_path):
    """A missing optional table is read as empty, a missing required one is named."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(builds["raw"] / "products.parquet", raw)
    env = {"XSELL_TARGET": "spark", "XSELL_RAW_DIR": str(raw),
           "XSELL_SPARK_DIR": str(tmp_path / "spark")}
    # Two runs: the compile error of a required table ends dbt's run, so a node
    # compiled beside it in the same run may or may not be written by then.
    code, _, log, _ = _run_dbt(
        ["compile", "--select", "base_pos__campaigns"], tmp_path, "optional", **env
    )
    assert code == 0, _tail(log)
    compiled = next((tmp_path / "target_optional" / "compiled").rglob("base_pos__campaigns.sql"))
    assert "where 1 = 0" in compiled.read_text()
    code, _, log, _ = _run_dbt(
        ["compile", "--select", "base_pos__transactions"], tmp_path, "required", **env
    )
    output = log.read_text(errors="replace")
    assert code != 0
    assert "Raw table 'transactions' is required" in output
    assert f"{raw}/transactions.parquet does not exist" in output


def test_the_comparison_fails_on_any_difference():
    left = pd.DataFrame({"k": ["a", "b"], "x": [1.0, 2.0], "n": [1, None]}, dtype=object)
    reordered = left.iloc[::-1].reset_index(drop=True)
    reordered.loc[reordered["k"] == "a", "x"] = 1.0 + 1e-12  # within the tolerance
    assert_marts_match("t", left, reordered, ["k"], {"x"})
    changes = [
        ("x", 0, 1.0 + 1e-6),  # a double beyond the tolerance
        ("x", 1, None),  # a double turned null
        ("n", 0, 2),  # an integer
        ("n", 1, 0),  # a null turned value
        ("n", 0, None),  # a value turned null
        ("k", 0, "c"),  # a key
    ]
    for column, row, value in changes:
        changed = left.copy()
        changed.loc[row, column] = value
        with pytest.raises(MartMismatch):
            assert_marts_match("t", left, changed, ["k"], {"x"})
    with pytest.raises(MartMismatch):
        assert_marts_match("t", left, left.iloc[:1], ["k"], {"x"})
