"""Export the published tables as Parquet, for BI tools that cannot read DuckDB 2.x files.

One file per table of the schemas marts and ml, `<out>/<schema>/<table>.parquet`, and
`<out>/manifest.json` listing each table's rows, columns, types and descriptions (the
same descriptions dbt persists as comments in the DuckDB file). Each file is written
under a temporary name and renamed, and the manifest is written last, so a reader that
goes by the manifest never meets a half-written file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from xsell.publish import PUBLISHED_SCHEMAS

MANIFEST = "manifest.json"


class ExportError(RuntimeError):
    """Nothing can be exported; the message says why and what to do."""


@dataclass
class Exported:
    out_dir: Path
    tables: list[dict] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST

    def describe(self) -> str:
        lines = [f"Exported {len(self.tables)} tables as Parquet to {self.out_dir}:"]
        lines += [f"  {t['file']:<48} {t['rows']:>10,} rows" for t in self.tables]
        lines.append(f"Manifest: {self.manifest}")
        return "\n".join(lines)


def export_parquet(
    db: Path, out_dir: Path, schemas: tuple[str, ...] = PUBLISHED_SCHEMAS
) -> Exported:
    db = Path(db).resolve()
    out_dir = Path(out_dir).resolve()
    if not db.is_file():
        raise ExportError(
            f"No DuckDB file at {db}: run `xsell run` (or `xsell publish`) first, or pass --db."
        )
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as error:
        raise ExportError(f"Cannot open {db} read-only: {error}") from error
    exported = Exported(out_dir=out_dir)
    with con:
        tables = con.execute(
            "select schema_name, table_name, comment from duckdb_tables() "
            "where database_name = current_database() and list_contains(?, schema_name) "
            "order by schema_name, table_name",
            [list(schemas)],
        ).fetchall()
        if not tables:
            raise ExportError(f"{db} has no tables in the schemas {', '.join(schemas)}.")
        for schema, table, comment in tables:
            exported.tables.append(_export_table(con, schema, table, comment, out_dir))
    previous = _read_manifest(out_dir)
    manifest = {
        "source": str(db),
        "duckdb_version": duckdb.__version__,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": exported.tables,
    }
    _write_atomically(exported.manifest, json.dumps(manifest, indent=2).encode() + b"\n")
    # Files of tables that are gone since the last export, and only those: the folder
    # may hold other things.
    current = {t["file"] for t in exported.tables}
    for old in previous.get("tables", []):
        if old.get("file") and old["file"] not in current:
            (out_dir / old["file"]).unlink(missing_ok=True)
    return exported


def _export_table(con, schema: str, table: str, comment: str | None, out_dir: Path) -> dict:
    relative = f"{schema}/{table}.parquet"
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    quoted = f'"{schema}"."{table}"'
    try:
        # One statement reads one snapshot, so the count is the file's row count.
        rows = con.execute(
            f"copy (select * from {quoted}) to '{_sql_string(temp)}' "
            "(format parquet)"
        ).fetchone()[0]
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    columns = con.execute(
        "select column_name, data_type, comment from duckdb_columns() "
        "where database_name = current_database() and schema_name = ? and table_name = ? "
        "order by column_index",
        [schema, table],
    ).fetchall()
    return {
        "schema": schema,
        "table": table,
        "file": relative,
        "rows": int(rows),
        "description": comment or None,
        "columns": [
            {"name": name, "type": data_type, "description": description or None}
            for name, data_type, description in columns
        ],
    }


def _read_manifest(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")
