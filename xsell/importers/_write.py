"""Write the raw contract tables and ``_import.json`` into an output folder."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from xsell import __version__, rawfiles
from xsell.contract import RAW_TABLES
from xsell.importers._base import DataImportError

METADATA_FILE = "_import.json"


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote. ``metadata`` is the content of ``_import.json``."""

    out_dir: Path
    row_counts: dict[str, int]
    notes: list[str]
    source: Path
    sha256: str
    seconds: float
    metadata: dict[str, Any] = field(repr=False)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the command line."""
        counts = ", ".join(f"{name} {n:,}" for name, n in self.row_counts.items() if n)
        lines = [
            f"imported {self.source.name} in {self.seconds:.1f} s into {self.out_dir}",
            f"rows: {counts}",
        ]
        lines += [f"- {note}" for note in self.notes]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def conform(name: str, table: pa.Table) -> pa.Table:
    """Select and cast ``table`` to the contract schema of raw table ``name``."""
    schema = RAW_TABLES[name].schema
    missing = [c for c in schema.names if c not in table.column_names]
    if missing:  # a bug in an importer, not in the user's file
        raise AssertionError(f"{name}: importer produced no column(s) {missing}")
    return table.select(schema.names).cast(schema)


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_raw_tables(
    out_dir: Path,
    tables: dict[str, pa.Table],
    *,
    source: Path,
    sha256: str,
    started: float,
    metadata: dict[str, Any],
    notes: list[str],
    warnings: list[str] | None = None,
) -> ImportSummary:
    """Write every contract table (absent ones empty) and ``_import.json``; return a summary.

    ``notes`` say what the importer did; ``warnings`` what a person should look at
    (both are printed by ``xsell import`` and kept in ``_import.json``).

    Refuses to write into a folder holding ``<table>.csv`` for a contract table:
    the dbt sources would see two candidate files for one table.
    """
    out_dir = Path(out_dir)
    clashes = sorted(out_dir / f"{n}.csv" for n in RAW_TABLES if (out_dir / f"{n}.csv").exists())
    if clashes:
        raise DataImportError(
            f"{out_dir}: holds {', '.join(p.name for p in clashes)}; the import writes Parquet "
            "and the dbt sources must see one file per table. Move those files or choose "
            "another output folder."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    # A half-finished import must not look like the previous, complete one.
    (out_dir / METADATA_FILE).unlink(missing_ok=True)

    row_counts: dict[str, int] = {}
    for name, raw_table in RAW_TABLES.items():
        table = conform(name, tables[name]) if name in tables else raw_table.empty()
        _write_atomic(
            out_dir / f"{name}.parquet",
            lambda tmp, t=table: pq.write_table(t, tmp, compression="zstd"),
        )
        row_counts[name] = table.num_rows

    seconds = time.perf_counter() - started
    content = {
        "xsell_version": __version__,
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        **metadata,
        "source": {
            "path": str(source.resolve()),
            "name": source.name,
            "size_bytes": source.stat().st_size,
            "sha256": sha256,
            **metadata.get("source", {}),
        },
        "row_counts": row_counts,
        "tables": {name: f"{name}.parquet" for name in RAW_TABLES},
        "notes": notes,
        "warnings": list(warnings or []),
    }
    _write_atomic(
        out_dir / METADATA_FILE,
        # default=str: a mapping's YAML may hold dates (a constant sold_at)
        lambda tmp: tmp.write_text(
            json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n"
        ),
    )
    rawfiles.record(out_dir, "xsell import")  # size and sha256 of each file, for xsell run
    return ImportSummary(
        out_dir=out_dir,
        row_counts=row_counts,
        notes=notes,
        source=source,
        sha256=sha256,
        seconds=seconds,
        metadata=content,
        warnings=list(warnings or []),
    )
