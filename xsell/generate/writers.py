"""Chunked, atomic writers for raw-contract tables (Parquet or CSV).

Each chunk becomes one Parquet row group (or a CSV block), so memory holds one
chunk at a time. Files are written under a temporary name and renamed when
complete, so an interrupted run never leaves a half-written table that looks
finished. Nothing time-dependent is written: same input, same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv")


def to_text(table: pa.Table) -> pa.Table:
    """Every column as text the way a CSV carries it (timestamps to the second)."""
    columns = []
    for column in table.columns:
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("s")).cast(pa.string())
        elif not pa.types.is_string(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def override_text(table: pa.Table, overrides: dict[str, tuple[np.ndarray, list[str]]]) -> pa.Table:
    """Replace the text at the given row positions (e.g. unparseable values) per column."""
    for name, (positions, values) in overrides.items():
        if len(positions) == 0:
            continue
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[positions] = True
        order = np.argsort(positions, kind="stable")
        replacement = pa.array([values[i] for i in order], pa.string())
        column = table.column(name).combine_chunks()
        index = table.column_names.index(name)
        table = table.set_column(index, name, pc.replace_with_mask(column, mask, replacement))
    return table


class TableSink:
    """One raw table being written chunk by chunk."""

    def __init__(self, out_dir: Path, name: str, schema: pa.Schema, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
        self.path = out_dir / f"{name}.{fmt}"
        self.partial = out_dir / f".{name}.{fmt}.partial"
        self.fmt = fmt
        self.rows = 0
        if fmt == "parquet":
            self._writer = pq.ParquetWriter(self.partial, schema, compression="zstd")
        else:
            text_schema = pa.schema([(f.name, pa.string()) for f in schema])
            options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
            self._writer = pacsv.CSVWriter(self.partial, text_schema, write_options=options)

    def write(
        self, table: pa.Table, overrides: dict[str, tuple[np.ndarray, list[str]]] | None = None
    ) -> None:
        """Append a chunk; overrides (CSV only) replace text at row positions."""
        if table.num_rows == 0:
            return
        if self.fmt == "parquet":
            self._writer.write_table(table, row_group_size=table.num_rows)
        else:
            self._writer.write_table(override_text(to_text(table), overrides or {}))
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()

    def commit(self) -> None:
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        try:
            self._writer.close()
        finally:
            self.partial.unlink(missing_ok=True)
