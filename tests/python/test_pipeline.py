"""End to end: a small dirty store -> `xsell run` (dbt build) -> staging and quarantine.

Each dbt invocation costs seconds, so the builds are session fixtures shared by
the assertions below.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from support import run_xsell

from xsell.contract import RAW_TABLES
from xsell.generate import generate_store

pytestmark = pytest.mark.dbt

SMALL_STORE = {"seed": 7, "days": 45, "stores": 1, "visits_per_day": 40}


def _quarantine_counts(build_db: Path, table: str) -> dict[str, int]:
    with duckdb.connect(str(build_db), read_only=True) as con:
        rows = con.execute(
            f"select rejection_reason, count(*) from staging.quarantine_pos__{table} group by 1"
        ).fetchall()
    return dict(rows)


def _raw_rows(raw_dir: Path, table: str, fmt: str) -> int:
    path = raw_dir / f"{table}.{fmt}"
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    with duckdb.connect() as con:
        return con.execute(f"select count(*) from {reader}('{path}')").fetchone()[0]


@pytest.fixture(scope="session")
def parquet_build(tmp_path_factory):
    """A dirty Parquet store built by `xsell run`."""
    work = tmp_path_factory.mktemp("parquet_build")
    raw = work / "raw"
    summary = generate_store(raw, dirty_fraction=0.02, **SMALL_STORE)
    build_db = work / "build.duckdb"
    done = run_xsell(
        ["run", "--raw-dir", str(raw), "--build-db", str(build_db), "--no-generate"], work
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"raw": raw, "build_db": build_db, "summary": summary, "stdout": done.stdout,
            "work": work}


@pytest.fixture(scope="session")
def csv_build(tmp_path_factory):
    """A dirty CSV store (with unparseable text) whose optional campaigns file is absent."""
    work = tmp_path_factory.mktemp("csv_build")
    raw = work / "raw"
    summary = generate_store(raw, dirty_fraction=0.02, fmt="csv", **SMALL_STORE)
    (raw / "campaigns.csv").unlink()
    build_db = work / "build.duckdb"
    done = run_xsell(
        ["run", "--raw-dir", str(raw), "--build-db", str(build_db), "--no-generate"], work
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"raw": raw, "build_db": build_db, "summary": summary}


@pytest.mark.parametrize("table", list(RAW_TABLES))
def test_parquet_raw_rows_equal_staged_plus_quarantined(parquet_build, table):
    raw_rows = _raw_rows(parquet_build["raw"], table, "parquet")
    with duckdb.connect(str(parquet_build["build_db"]), read_only=True) as con:
        staged = con.execute(f"select count(*) from staging.stg_pos__{table}").fetchone()[0]
        rejected = con.execute(
            f"select count(*) from staging.quarantine_pos__{table}"
        ).fetchone()[0]
    assert raw_rows > 0
    assert raw_rows == staged + rejected


@pytest.mark.parametrize("table", list(RAW_TABLES))
def test_parquet_quarantine_counts_equal_injected_per_reason(parquet_build, table):
    ledger = json.loads((parquet_build["raw"] / "_dirty_ledger.json").read_text())
    expected = {reason: n for reason, n in ledger[table].items() if n}
    assert expected, f"the generator injected no defects into {table}"
    assert _quarantine_counts(parquet_build["build_db"], table) == expected


def test_parquet_build_ran_the_reconciliation_tests(parquet_build):
    results = json.loads((parquet_build["work"] / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in results["results"]}
    reconciliations = [uid for uid in statuses if "reconciles_with_quarantine" in uid]
    assert len(reconciliations) == len(RAW_TABLES)
    assert all(statuses[uid] == "pass" for uid in reconciliations)
    assert "Build file:" in parquet_build["stdout"]


def test_csv_quarantine_counts_include_unparseable_values(csv_build):
    ledger = json.loads((csv_build["raw"] / "_dirty_ledger.json").read_text())
    expected = {reason: n for reason, n in ledger["transactions"].items() if n}
    assert {"unparseable_quantity", "unparseable_unit_price", "unparseable_sold_at"} <= set(
        expected
    )
    assert _quarantine_counts(csv_build["build_db"], "transactions") == expected


def test_csv_raw_rows_equal_staged_plus_quarantined(csv_build):
    raw_rows = _raw_rows(csv_build["raw"], "transactions", "csv")
    rejected = sum(_quarantine_counts(csv_build["build_db"], "transactions").values())
    with duckdb.connect(str(csv_build["build_db"]), read_only=True) as con:
        staged = con.execute("select count(*) from staging.stg_pos__transactions").fetchone()[0]
        # Every staged row equals a raw row, cast: nothing is altered on the way.
        altered = con.execute(
            f"""
            select count(*)
            from staging.stg_pos__transactions as staged
            where not exists (
                select 1
                from read_csv('{csv_build["raw"] / "transactions.csv"}', all_varchar = true)
                    as raw
                where staged.receipt_id = raw.receipt_id
                    and staged.line_number = try_cast(raw.line_number as integer)
                    and staged.quantity = try_cast(raw.quantity as integer)
                    and staged.unit_price = try_cast(raw.unit_price as double)
                    and staged.sold_at = try_cast(raw.sold_at as timestamp)
                    and staged.product_id = raw.product_id
            )
            """
        ).fetchone()[0]
    assert raw_rows == staged + rejected
    assert staged > 0.9 * raw_rows
    assert altered == 0


def test_absent_optional_table_reads_as_empty(csv_build):
    with duckdb.connect(str(csv_build["build_db"]), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_pos__campaigns").fetchone()[0] == 0
        columns = [row[0] for row in con.execute("describe staging.stg_pos__campaigns").fetchall()]
    assert "discount_pct" in columns and "campaign_target_id" in columns


def test_run_fails_naming_the_test_when_quarantine_share_is_too_high(tmp_path):
    raw = tmp_path / "raw"
    generate_store(raw, dirty_fraction=0.3, **SMALL_STORE)
    done = run_xsell(
        ["run", "--raw-dir", str(raw), "--build-db", str(tmp_path / "b.duckdb"), "--no-generate"],
        tmp_path,
    )
    assert done.returncode == 1
    assert "xsell run failed at step 'dbt build'" in done.stderr
    assert "quarantine_share_within_limits_quarantine_pos__transactions" in done.stderr


def test_run_names_the_missing_required_file(tmp_path, parquet_build):
    raw = tmp_path / "raw"
    shutil.copytree(parquet_build["raw"], raw)
    (raw / "products.parquet").unlink()
    done = run_xsell(
        ["run", "--raw-dir", str(raw), "--build-db", str(tmp_path / "b.duckdb"), "--no-generate"],
        tmp_path,
    )
    assert done.returncode == 1
    assert f"{raw}/products.parquet does not exist" in done.stdout + done.stderr


def test_run_without_raw_data_and_no_generate_says_what_to_do(tmp_path):
    done = run_xsell(["run", "--raw-dir", str(tmp_path / "none"), "--no-generate"], tmp_path)
    assert done.returncode == 1
    assert "Run `xsell generate` or `xsell import`" in done.stderr


def test_a_failed_quality_gate_stops_before_publishing(tmp_path, monkeypatch):
    """The order of `xsell run`: a build that passes dbt but fails an expectation is
    reported with the expectation, table, column and value, and never published."""
    import xsell.pipeline as pipeline
    from xsell.dbt_runner import DbtResult
    from xsell.project import Paths
    from xsell.quality import Failure, ValidationReport

    raw = tmp_path / "raw"
    generate_store(raw, seed=1, days=2, stores=1, visits_per_day=5)
    paths = Paths(project_dir=tmp_path, raw_dir=raw, build_db=tmp_path / "b.duckdb",
                  published_db=tmp_path / "published.duckdb", reports_dir=tmp_path / "out")
    failure = Failure(suite="marts.fct_attach_rates", table="marts.fct_attach_rates",
                      expectation="expect_column_values_to_be_between", column="attach_rate",
                      arguments="min_value=0, max_value=1", unexpected_count=1,
                      element_count=10, examples=("1.7 (grain=all)",))
    published = []
    monkeypatch.setattr(pipeline, "run_dbt", lambda *a, **k: DbtResult(returncode=0))
    monkeypatch.setattr(pipeline, "preload", lambda: None)
    monkeypatch.setattr(pipeline, "validate",
                        lambda *a, **k: ValidationReport(build_db=paths.build_db,
                                                         failures=[failure]))
    monkeypatch.setattr(pipeline, "publish_build", lambda *a: published.append(a))
    with pytest.raises(pipeline.PipelineError) as error:
        pipeline.run_pipeline(paths, generate_if_empty=False, log=lambda _: None)
    assert error.value.step == "quality gate"
    message = str(error.value)
    assert "marts.fct_attach_rates" in message and "attach_rate" in message and "1.7" in message
    assert published == []
    assert not paths.published_db.exists()
