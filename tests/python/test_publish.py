"""Publishing for BI: the build never touches the published file in place.

One tiny store is built and published once for the module; the tests then republish
under readers, kill a build mid-way, fail a build, and export, each against its own
copy of the published file (XSELL_PUBLISHED_DB), never the project's warehouse/.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest
from support import PROJECT_DIR, XSELL, run_xsell

from xsell.export import export_parquet
from xsell.generate import generate_store
from xsell.publish import KEPT_SCHEMAS, PublishError, publish

TINY = {"days": 20, "stores": 1, "visits_per_day": 30}

# Integer sums, so that two reads of the same table agree exactly.
FINGERPRINT_SQL = """
select
    (select count(*) from marts.fct_revenue_mix),
    (select sum(lines) from marts.fct_revenue_mix),
    (select count(*) from marts.fct_attach_rates),
    (select sum(anchor_receipts) from marts.fct_attach_rates)
"""

# A BI tool's stand-in: queries the published file until told to stop, one JSON line per
# read. "held" keeps one read-only connection open throughout; "reopen" opens a new one
# for every read, as a dashboard refresh would.
READER = textwrap.dedent(
    """
    import json, sys, time
    import duckdb

    db, mode, stop, out = sys.argv[1:5]
    sql = sys.argv[5]
    held = duckdb.connect(db, read_only=True) if mode == "held" else None
    deadline = time.monotonic() + 300
    with open(out, "w") as log:
        first = True
        while time.monotonic() < deadline:
            record = {"t": time.time()}
            try:
                con = held or duckdb.connect(db, read_only=True)
                record["fingerprint"] = list(con.execute(sql).fetchone())
                if held is None:
                    con.close()
            except Exception as error:
                record["error"] = f"{type(error).__name__}: {error}"
            log.write(json.dumps(record) + "\\n")
            log.flush()
            if first:
                print("ready", flush=True)
                first = False
            try:
                open(stop).close()
                break
            except FileNotFoundError:
                time.sleep(0.01)
    """
)

# Holds a DuckDB file open (read-write, or read-only) until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    import duckdb

    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("ready", flush=True)
    time.sleep(300)
    """
)


def fingerprint(db: Path) -> list[int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return list(con.execute(FINGERPRINT_SQL).fetchone())


def table_digests(db: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(schema, table) -> (rows, order-free hash of the rows) of every base table."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database() order by all").fetchall()
        return {(schema, table): con.execute(
            f'select count(*), coalesce(bit_xor(hash(t)), 0) from "{schema}"."{table}" t'
        ).fetchone() for schema, table in tables}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def xsell_env(workdir: Path, published: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
            "DO_NOT_TRACK": "1",
            "XSELL_PUBLISHED_DB": str(published),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_script(script: str, *args: str) -> subprocess.Popen:
    """Start a Python script in its own process and wait until it says it is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"helper process did not start: {line}{proc.stderr.read()}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Store A built and published by `xsell run`; store B generated, not built."""
    work = tmp_path_factory.mktemp("publish")
    raw_a, raw_b = work / "raw_a", work / "raw_b"
    generate_store(raw_a, seed=3, **TINY)
    generate_store(raw_b, seed=4, **{**TINY, "days": 24})
    build_a, published_a = work / "build_a.duckdb", work / "published_a.duckdb"
    done = run_xsell(
        ["run", "--raw-dir", str(raw_a), "--build-db", str(build_a), "--no-generate"],
        work,
        XSELL_PUBLISHED_DB=str(published_a),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {
        "work": work,
        "raw_b": raw_b,
        "build_a": build_a,
        "published_a": published_a,
        "fingerprint_a": fingerprint(published_a),
        "stdout": done.stdout,
    }


@pytest.mark.dbt
def test_run_publishes_a_copy_of_the_build(built):
    published = built["published_a"]
    assert f"Published for BI tools: {published}" in built["stdout"]
    assert not Path(f"{published}.wal").exists()
    # BI reads the marts, the models' outputs and the seeds: the same rows as the build's;
    # dbt's working schemas stay in the build file
    build_tables, published_tables = table_digests(built["build_a"]), table_digests(published)
    assert {schema for schema, _ in build_tables} >= {"staging", "intermediate", "marts", "ml"}
    assert published_tables == {k: v for k, v in build_tables.items() if k[0] in KEPT_SCHEMAS}
    assert len(published_tables) > 40
    with duckdb.connect(str(published), read_only=True) as con:
        described = con.execute(
            "select count(*), count(comment) from duckdb_columns() where schema_name = 'marts'"
        ).fetchone()
    assert described[1] > 0  # the column descriptions persist_docs wrote came along


@pytest.mark.dbt
def test_readers_see_the_old_or_the_new_build_while_run_republishes(built, tmp_path):
    published = tmp_path / "xsell.duckdb"
    publish(built["build_a"], published)
    stop_file = tmp_path / "stop"
    logs = {mode: tmp_path / f"{mode}.jsonl" for mode in ("held", "reopen")}
    readers = {
        mode: start_script(READER, str(published), mode, str(stop_file), str(log),
                           FINGERPRINT_SQL)
        for mode, log in logs.items()
    }
    build_b = tmp_path / "build_b.duckdb"
    try:
        done = run_xsell(
            ["run", "--raw-dir", str(built["raw_b"]), "--build-db", str(build_b),
             "--no-generate"],
            tmp_path,
            XSELL_PUBLISHED_DB=str(published),
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        fingerprint_b = fingerprint(build_b)
        # Let the reopening reader meet the new file before stopping both.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and str(fingerprint_b).replace(" ", "") not in (
            logs["reopen"].read_text().replace(" ", "")
        ):
            time.sleep(0.05)
        stop_file.touch()
        for reader in readers.values():
            reader.wait(timeout=30)
    finally:
        for reader in readers.values():
            stop(reader)

    fingerprint_a = built["fingerprint_a"]
    assert fingerprint_a != fingerprint_b  # the test can tell the two builds apart
    assert f"Published for BI tools: {published}" in done.stdout
    assert fingerprint(published) == fingerprint_b

    reads = {mode: [json.loads(line) for line in log.read_text().splitlines()]
             for mode, log in logs.items()}
    for mode, records in reads.items():
        errors = [r["error"] for r in records if "error" in r]
        assert not errors, f"{mode} reader: {errors[:3]}"
        assert len(records) >= 20, f"{mode} reader made only {len(records)} reads"
    # The reader holding the old file open keeps a complete, consistent old build.
    assert {tuple(r["fingerprint"]) for r in reads["held"]} == {tuple(fingerprint_a)}
    # New connections see the old build, then the new one, never anything else.
    seen = [tuple(r["fingerprint"]) for r in reads["reopen"]]
    assert set(seen) == {tuple(fingerprint_a), tuple(fingerprint_b)}
    switch = seen.index(tuple(fingerprint_b))
    assert set(seen[:switch]) == {tuple(fingerprint_a)}
    assert set(seen[switch:]) == {tuple(fingerprint_b)}


@pytest.mark.dbt
def test_a_build_killed_mid_way_leaves_the_published_file_unchanged(built, tmp_path):
    published = tmp_path / "xsell.duckdb"
    publish(built["build_a"], published)
    before = sha256(published)
    build = tmp_path / "build_killed.duckdb"
    proc = subprocess.Popen(
        [XSELL, "run", "--raw-dir", str(built["raw_b"]), "--build-db", str(build),
         "--no-generate"],
        cwd=PROJECT_DIR,
        env=xsell_env(tmp_path, published),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: xsell and the dbt it runs
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    output, deadline = [], time.monotonic() + 120
    try:
        # Kill once dbt has written its first model into the build file.
        while not any("OK created" in line for line in output):
            assert time.monotonic() < deadline, "dbt did not start:\n" + "".join(output)
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                assert proc.poll() is None, "xsell ended early:\n" + "".join(output)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    assert build.exists()  # dbt had begun writing the build file
    assert not any("Published" in line for line in output)
    assert sha256(published) == before
    assert fingerprint(published) == built["fingerprint_a"]


@pytest.mark.dbt
def test_a_failed_build_does_not_publish(built, tmp_path):
    raw = tmp_path / "raw_dirty"
    generate_store(raw, seed=5, dirty_fraction=0.3, **TINY)
    published = tmp_path / "xsell.duckdb"
    publish(built["build_a"], published)
    before = sha256(published)
    done = run_xsell(
        ["run", "--raw-dir", str(raw), "--build-db", str(tmp_path / "build.duckdb"),
         "--no-generate"],
        tmp_path,
        XSELL_PUBLISHED_DB=str(published),
    )
    assert done.returncode == 1
    assert "failed at step 'dbt build'" in done.stderr
    assert "quarantine" in done.stderr  # the failing test is named
    assert "Published" not in done.stdout
    assert sha256(published) == before


@pytest.mark.dbt
def test_export_writes_one_parquet_per_table_with_the_db_row_counts(built, tmp_path):
    out = tmp_path / "export"
    done = run_xsell(
        ["export", "--format", "parquet", "--out", str(out)],
        tmp_path,
        XSELL_PUBLISHED_DB=str(built["published_a"]),  # the default --db
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(built["published_a"]), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('marts', 'ml') order by 1, 2"
        ).fetchall()
        expected = {
            f"{schema}/{table}.parquet": (
                con.execute(f"select count(*) from {schema}.{table}").fetchone()[0],
                [c[0] for c in con.execute(f"describe {schema}.{table}").fetchall()],
            )
            for schema, table in tables
        }
        comments = dict(
            ((schema, table, column), comment)
            for schema, table, column, comment in con.execute(
                "select schema_name, table_name, column_name, comment from duckdb_columns() "
                "where schema_name in ('marts', 'ml')"
            ).fetchall()
        )
    assert len(expected) >= 10
    files = {p.relative_to(out).as_posix() for p in out.rglob("*.parquet")}
    assert files == set(expected)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {t["file"]: t["rows"] for t in manifest["tables"]} == {
        file: rows for file, (rows, _) in expected.items()
    }
    with duckdb.connect() as con:
        for file, (rows, columns) in expected.items():
            path = out / file
            assert con.execute(f"select count(*) from '{path}'").fetchone()[0] == rows, file
            assert [c[0] for c in con.execute(f"describe select * from '{path}'").fetchall()] \
                == columns, file
    # The dbt column descriptions travel with the files.
    described = {
        (t["schema"], t["table"], c["name"]): c["description"]
        for t in manifest["tables"] for c in t["columns"]
    }
    assert described == {key: comment or None for key, comment in comments.items()}
    assert any(described.values())


# Fast checks on hand-made files: no dbt.


def make_db(path: Path, rows: int = 10) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(f"create table marts.fct_demo as select range as id from range({rows})")


def test_publish_refuses_a_missing_build_file(tmp_path):
    published = tmp_path / "xsell.duckdb"
    done = run_xsell(
        ["publish", "--build-db", str(tmp_path / "absent.duckdb")],
        tmp_path,
        XSELL_PUBLISHED_DB=str(published),
    )
    assert done.returncode == 1
    assert "No build file at" in done.stderr
    assert not published.exists()


def test_publish_refuses_a_build_file_another_process_holds(tmp_path):
    build, published = tmp_path / "build.duckdb", tmp_path / "xsell.duckdb"
    make_db(build)
    for mode in ("rw", "ro"):
        holder = start_script(HOLDER, str(build), mode)
        try:
            with pytest.raises(PublishError, match="Another process has the build file"):
                publish(build, published)
        finally:
            stop(holder)
    assert not published.exists()
    assert not list(tmp_path.glob(".xsell.duckdb.*"))  # no temp file left behind
    publish(build, published)  # free again


def test_publish_folds_the_wal_into_the_copy(tmp_path):
    build, published = tmp_path / "build.duckdb", tmp_path / "xsell.duckdb"
    # A writer that dies without checkpointing leaves its last rows in the WAL only.
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, duckdb
            con = duckdb.connect({str(build)!r})
            con.execute("set checkpoint_threshold = '10GB'")
            con.execute("create schema marts")
            con.execute("create table marts.fct_demo as select range as id from range(1000)")
            os._exit(0)
        """)],
        check=True,
    )
    assert Path(f"{build}.wal").exists()
    result = publish(build, published)
    assert result.tables == {"marts": 1}
    assert not Path(f"{build}.wal").exists()
    assert not Path(f"{published}.wal").exists()
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_demo").fetchone()[0] == 1000


def test_publish_drops_a_stale_wal_beside_the_published_file(tmp_path):
    build, published = tmp_path / "build.duckdb", tmp_path / "xsell.duckdb"
    make_db(build, rows=7)
    publish(build, published)
    # A crashed read-write client of the old file: DuckDB would refuse the new file
    # with this WAL beside it ("WAL does not match database file").
    Path(f"{published}.wal").write_bytes(b"\0" * 4096)
    publish(build, published)
    assert not Path(f"{published}.wal").exists()
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_demo").fetchone()[0] == 7


def test_publish_refuses_while_a_client_has_the_published_file_open_read_write(tmp_path):
    build, published = tmp_path / "build.duckdb", tmp_path / "xsell.duckdb"
    make_db(build)
    publish(build, published)
    before = sha256(published)
    writer = start_script(HOLDER, str(published), "rw")
    try:
        with pytest.raises(PublishError, match="open read-write"):
            publish(build, published)
    finally:
        stop(writer)
    assert sha256(published) == before
    reader = start_script(HOLDER, str(published), "ro")  # readers never block a publish
    try:
        publish(build, published)
    finally:
        stop(reader)


def test_export_removes_the_files_of_tables_that_are_gone(tmp_path):
    db, out = tmp_path / "xsell.duckdb", tmp_path / "export"
    make_db(db)
    with duckdb.connect(str(db)) as con:
        con.execute("create table marts.fct_old as select 1 as id")
        con.execute("create schema staging")
        con.execute("create table staging.not_exported as select 1 as id")
    export_parquet(db, out)
    assert (out / "marts" / "fct_old.parquet").exists()
    (out / "notes.txt").write_text("mine")
    with duckdb.connect(str(db)) as con:
        con.execute("drop table marts.fct_old")
    exported = export_parquet(db, out)
    assert [t["file"] for t in exported.tables] == ["marts/fct_demo.parquet"]
    assert not (out / "marts" / "fct_old.parquet").exists()
    assert (out / "notes.txt").exists()
    assert not (out / "staging").exists()
