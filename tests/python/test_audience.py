"""`xsell audience`: the rows equal what the marts say for each filter, the files (CSV and
Parquet) agree, the manifest names the build, and the command never writes over or
deletes what it did not write."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from support import run_xsell

from xsell.generate import generate_store

pytestmark = pytest.mark.dbt

STORE = {"days": 60, "stores": 2, "visits_per_day": 80}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("audience")
    generate_store(work / "raw", seed=9, **STORE)
    done = run_xsell(["run", "--raw-dir", str(work / "raw"), "--build-db",
                      str(work / "build.duckdb"), "--no-generate"], work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"work": work, "db": work / "published.duckdb"}


def audience(built, out: Path, *args: str):
    return run_xsell(["audience", "--out", str(out), *args], built["work"])


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def query(db: Path, sql: str, params=()) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def latest_propensity(db: Path) -> dict[str, float]:
    """Each member's probability on their latest scored receipt, computed here."""
    latest: dict[str, tuple] = {}
    for customer, store, receipt, day, p in query(
        db, "select customer_id, store_id, receipt_id, sold_date, restaurant_probability "
            "from ml.ml_restaurant_propensity where customer_id is not null"):
        key = (day, store, receipt)
        if customer not in latest or key > latest[customer][0]:
            latest[customer] = (key, p)
    return {customer: p for customer, (_, p) in latest.items()}


def test_segment_audience_rows_offers_files_and_manifest(built, tmp_path):
    db, out = built["db"], tmp_path / "at_risk"
    done = audience(built, out, "--segment", "At Risk", "--offers", "3")
    assert done.returncode == 0, done.stderr
    expected = query(db, "select customer_id, lifetime_value, rfm_cell from "
                         "marts.dim_customers where rfm_segment = 'At Risk' "
                         "order by lifetime_value desc nulls last, customer_id")
    assert expected, "the test store has no At Risk customers"
    rows = read_csv(out / "audience.csv")
    assert [r["customer_id"] for r in rows] == [e[0] for e in expected]
    assert all(r["rfm_segment"] == "At Risk" for r in rows)
    assert [float(r["lifetime_value"]) for r in rows] == [e[1] for e in expected]
    assert rows[0]["selected_because"] == f"RFM segment At Risk (cell {expected[0][2]})"
    offers = {}
    for customer, _rank, product, name, reason in query(
        db, "select customer_id, recommendation_rank, product_id, product_name, reason "
            "from ml.ml_recommendations where recommendation_rank <= 3 "
            "order by customer_id, recommendation_rank"):
        offers.setdefault(customer, []).append((product, name, reason))
    for row in rows:
        got = [(row[f"offer_{n}_product_id"], row[f"offer_{n}_product_name"],
                row[f"offer_{n}_reason"]) for n in (1, 2, 3)]
        assert got == offers[row["customer_id"]]
    propensity = latest_propensity(db)
    for row in rows:
        want = propensity.get(row["customer_id"])
        assert (row["restaurant_propensity"] == "") if want is None else \
            math.isclose(float(row["restaurant_propensity"]), want, rel_tol=0, abs_tol=0)

    table = pq.read_table(out / "audience.parquet").to_pylist()
    assert len(table) == len(rows)
    for parquet_row, csv_row in zip(table, rows, strict=True):
        for column, value in csv_row.items():
            parquet_value = parquet_row[column]
            if parquet_value is None:
                assert value == ""
            elif isinstance(parquet_value, float):
                assert float(value) == parquet_value
            else:
                assert str(parquet_value) == value
    raw = (out / "audience.csv").read_bytes()
    raw.decode("utf-8")  # UTF-8 throughout (product names carry accents)
    assert raw.startswith(b"customer_id,rfm_segment,")

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    sha = hashlib.sha256(db.read_bytes()).hexdigest()
    assert manifest["build"]["run_id"] == sha[:12] and manifest["build"]["sha256"] == sha
    assert manifest["row_count"] == len(rows)
    assert manifest["filter"] == {"segment": "At Risk"}
    for name, described in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == described["sha256"]
    assert sorted(p.name for p in out.iterdir()) == ["audience.csv", "audience.parquet",
                                                    "manifest.json"]  # no temp files left
    assert "At Risk" in done.stdout and f"{len(rows):,} customers" in done.stdout


def test_propensity_threshold_and_rfm_rule(built, tmp_path):
    db = built["db"]
    done = audience(built, tmp_path / "restaurant", "--min-restaurant-propensity", "0.4")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "restaurant" / "audience.csv")
    members = {c for (c,) in query(db, "select customer_id from marts.dim_customers")}
    expected = {c for c, p in latest_propensity(db).items() if p >= 0.4 and c in members}
    assert rows and {r["customer_id"] for r in rows} == expected
    assert all(float(r["restaurant_propensity"]) >= 0.4 for r in rows)

    done = audience(built, tmp_path / "lapsed", "--rfm", "R=1-2,F=4-5", "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "lapsed" / "audience.csv")
    expected = query(db, "select customer_id from marts.dim_customers where recency_score "
                         "between 1 and 2 and frequency_score between 4 and 5 "
                         "order by lifetime_value desc nulls last, customer_id")
    assert [r["customer_id"] for r in rows] == [e[0] for e in expected]
    assert not (tmp_path / "lapsed" / "audience.parquet").exists()


def test_likely_buyers_top_n_and_combined_filters(built, tmp_path):
    db = built["db"]
    product, buyers = query(db, "select product_id, count(*) from ml.ml_recommendations "
                                "group by 1 order by 2 desc, 1 limit 1")[0]
    done = audience(built, tmp_path / "buyers", "--likely-buyers", product, "--top", "25")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "buyers" / "audience.csv")
    expected = query(db, "select r.customer_id from ml.ml_recommendations r join "
                         "marts.dim_customers c using (customer_id) where r.product_id = ? "
                         "order by r.recommendation_rank, r.score desc, "
                         "c.lifetime_value desc nulls last, r.customer_id limit 25", [product])
    assert buyers > 25 and [r["customer_id"] for r in rows] == [e[0] for e in expected]
    assert all(product in r["selected_because"] for r in rows)

    segment = query(db, "select rfm_segment from marts.dim_customers group by 1 "
                        "order by count(*) desc, 1 limit 1")[0][0]
    done = audience(built, tmp_path / "both", "--segment", segment,
                    "--min-restaurant-propensity", "0.3")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "both" / "audience.csv")
    propensity = latest_propensity(db)
    in_segment = {c for (c,) in query(
        db, "select customer_id from marts.dim_customers where rfm_segment = ?", [segment])}
    assert {r["customer_id"] for r in rows} == {
        c for c in in_segment if propensity.get(c, -1) >= 0.3}


def test_refuses_folders_it_did_not_write_and_bad_filters(built, tmp_path):
    foreign = tmp_path / "crm"
    foreign.mkdir()
    (foreign / "contacts.csv").write_text("keep me\n")
    before = (foreign / "contacts.csv").stat()
    done = audience(built, foreign, "--segment", "At Risk")
    assert done.returncode == 1 and "did not write (contacts.csv)" in done.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["contacts.csv"]
    assert (foreign / "contacts.csv").read_text() == "keep me\n"
    assert (foreign / "contacts.csv").stat().st_mtime_ns == before.st_mtime_ns

    a_file = tmp_path / "audience.csv"
    a_file.write_text("someone else's\n")
    done = audience(built, a_file, "--segment", "At Risk")
    assert done.returncode == 1 and "is a file" in done.stderr
    assert a_file.read_text() == "someone else's\n"

    own = tmp_path / "own"
    assert audience(built, own, "--segment", "At Risk").returncode == 0
    (own / ".audience.parquet.4242.tmp").write_bytes(b"left by an interrupted run")
    done = audience(built, own, "--segment", "Champions", "--format", "csv")
    assert done.returncode == 0, done.stderr  # its own folder: replaced, stale file removed
    assert sorted(p.name for p in own.iterdir()) == ["audience.csv", "manifest.json"]
    assert json.loads((own / "manifest.json").read_text())["filter"] == {
        "segment": "Champions"}

    for args, message in [
        (["--segment", "At risk"], "not an RFM segment of this build"),
        (["--segment", "At Risk' or '1'='1"], "not an RFM segment of this build"),
        (["--likely-buyers", "NO-SUCH-PRODUCT"], "no product with that id"),
        (["--likely-buyers", "x' or 1=1 --"], "no product with that id"),
        (["--rfm", "R=6"], "--rfm"),
        (["--rfm", "R=1; drop table x"], "--rfm"),
        ([], "Say who"),
    ]:
        out = tmp_path / f"refused{len(os.listdir(tmp_path))}"
        done = audience(built, out, *args)
        assert done.returncode == 1, args
        assert message in done.stderr, (args, done.stderr)
        assert not out.exists() or not any(out.iterdir()), args


def test_a_filter_whose_analysis_did_not_run_gives_an_empty_audience_and_the_reason(
        built, tmp_path):
    """A copy of the published file in which the restaurant propensity model did not run
    (no restaurant data): the audience is empty, typed, and the manifest says why."""
    db = tmp_path / "published.duckdb"
    shutil.copy(built["db"], db)
    reason = "there is no restaurant data (restaurant_orders is absent or empty)"
    with duckdb.connect(str(db)) as con:
        con.execute("update marts.fct_analysis_coverage set status = 'not_applicable', "
                    "is_applicable = false, row_count = 0, reason = ? "
                    "where analysis = 'restaurant_propensity'", [reason])
        con.execute("delete from ml.ml_restaurant_propensity")
    out = tmp_path / "restaurant"
    done = run_xsell(["audience", "--db", str(db), "--out", str(out),
                      "--min-restaurant-propensity", "0.1"], built["work"])
    assert done.returncode == 0, done.stderr
    assert f"restaurant_propensity: {reason}" in done.stdout
    assert read_csv(out / "audience.csv") == []
    assert (out / "audience.csv").read_text(encoding="utf-8").startswith("customer_id,")
    table = pq.read_table(out / "audience.parquet")
    assert table.num_rows == 0 and str(table.schema.field("lifetime_value").type) == "double"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["row_count"] == 0
    assert manifest["not_available"] == {"restaurant_propensity": reason}

    done = run_xsell(["audience", "--db", str(db), "--out", str(tmp_path / "at_risk"),
                      "--segment", "At Risk"], built["work"])
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "at_risk" / "audience.csv")
    assert rows and all(r["restaurant_propensity"] == "" for r in rows)
