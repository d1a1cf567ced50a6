"""Helpers of the fault tests: edit a generated raw store by hand, as a user would,
and build it with dbt (staging only, or everything) in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from support import PROJECT_DIR

from xsell.dbt_runner import DbtResult, dbt_env, run_dbt


def read_rows(raw: Path, table: str, fmt: str = "parquet") -> list[dict[str, Any]]:
    """The rows of a raw table, in file order (CSV values as text)."""
    path = raw / f"{table}.{fmt}"
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(
    raw: Path, table: str, rows: list[dict[str, Any]], fmt: str = "parquet",
    types: dict[str, pa.DataType] | None = None, columns: list[str] | None = None,
) -> Path:
    """Replace a raw table by these rows (CSV: every value as text, None as empty)."""
    path = raw / f"{table}.{fmt}"
    names = columns or list(rows[0])
    if fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            writer.writerow(names)
            for row in rows:
                writer.writerow(["" if row.get(n) is None else _text(row.get(n)) for n in names])
        return path
    schema = pq.read_schema(path) if path.exists() else None
    fields = []
    for name in names:
        given = (types or {}).get(name)
        if given is None and schema is not None and name in schema.names:
            given = schema.field(name).type
        fields.append(pa.field(name, given or pa.string()))
    table = pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows],
                                 schema=pa.schema(fields))
    pq.write_table(table, path)
    return path


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(value)  # 2.0 stays "2.0", as a DOUBLE column prints it
    return str(value)


_TARGETS: dict[str, Path] = {}


def shared_target(key: str) -> Path:
    """One dbt target folder per kind of build for this test session, so that dbt's
    partial parsing saves the next build its full parse (seconds each)."""
    if key not in _TARGETS:
        _TARGETS[key] = Path(tempfile.mkdtemp(prefix="xsell-dbt-target-"))
    return _TARGETS[key]


def build(
    raw: Path, fmt: str, db: Path, work: Path, *, select: str | None = "staging",
    variables: dict[str, Any] | None = None, env: dict[str, str] | None = None,
) -> DbtResult:
    """dbt build of the raw folder into db (only the staging models and their tests when
    select is "staging"); dbt's logs under work, its target shared by builds alike."""
    args = ["build"]
    if select:
        args += ["--select", select, "--indirect-selection", "cautious"]
    if variables:
        args += ["--vars", json.dumps(variables, sort_keys=True)]
    environment = dbt_env(raw, fmt, db)
    environment["DBT_LOG_PATH"] = str(work / "logs")
    environment.update(env or {})
    target = shared_target(json.dumps([variables or {}], sort_keys=True))
    return run_dbt(args, PROJECT_DIR, environment, target_path=target, quiet=True)


def quarantine_counts(db: Path, table: str) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            f"select rejection_reason, count(*) from staging.quarantine_pos__{table} group by 1"
        ).fetchall()
    return dict(rows)


def raw_row_count(raw: Path, table: str, fmt: str) -> int:
    rows = read_rows(raw, table, fmt)
    return len(rows)


def staged_count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"select count(*) from staging.stg_pos__{table}").fetchone()[0]


def descendants(pid: int) -> set[int]:
    """Process ids of every descendant of pid (Linux /proc), as seen now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """pid is a running process: one of its threads is not yet a zombie. A killed process
    whose main thread is already a zombie still holds its files (a DuckDB lock among them)
    until its last thread has exited, so the main thread's state alone is not enough."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return True
        except OSError:
            continue
    return False


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
