"""Before a build: can this raw folder be built? If not, say why in a line per problem.

dbt would stop on the same problems (macros/staging/raw_source.sql), but only after its
start-up, and a few of them (a file of the other format, an unreadable Parquet footer)
with DuckDB's words; these checks name the file, the column and the problem first.
Reading stops at the header (CSV) or the footer (Parquet): a ragged line further down
is reported by dbt with its line number.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq

from xsell.contract import RAW_TABLES
from xsell.project import RAW_FORMATS


class InputError(RuntimeError):
    """The raw folder cannot be built as it is; the message names what to fix."""


def contract_files_by_table(raw_dir: Path) -> dict[str, list[Path]]:
    """Each raw-contract table with the files of it in raw_dir (any format)."""
    return {
        table: [raw_dir / f"{table}.{fmt}" for fmt in RAW_FORMATS
                if (raw_dir / f"{table}.{fmt}").is_file()]
        for table in RAW_TABLES
    }


def check_structure(raw_dir: Path, fmt: str) -> None:
    """InputError listing every structural problem of the raw folder read as fmt."""
    raw_dir = Path(raw_dir)
    problems: list[str] = []
    for table, files in contract_files_by_table(raw_dir).items():
        if len(files) > 1:
            problems.append(
                f"{table} has two files, {files[0].name} and {files[1].name}: keep one "
                f"(this build reads {fmt})."
            )
            continue
        if not files and RAW_TABLES[table].required:
            problems.append(
                f"Raw table '{table}' is required but {raw_dir}/{table}.{fmt} does not exist: "
                "create it with `xsell generate` or `xsell import`."
            )
            continue
        if files and files[0].suffix != f".{fmt}":
            problems.append(
                f"{files[0]} is {files[0].suffix[1:]}, but this folder's transactions are "
                f"{fmt}: the build would not read it. Write every table in one format."
            )
            continue
        if files:
            problems.extend(_check_file(files[0], table, fmt))
    if problems:
        raise InputError(
            f"The raw folder {raw_dir} cannot be built:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def _check_file(path: Path, table: str, fmt: str) -> list[str]:
    contract = RAW_TABLES[table]
    if path.stat().st_size == 0:
        optional = "" if contract.required else " (or remove it: the table is optional)"
        return [f"{path} is empty (0 bytes): write it again{optional}."]
    try:
        names, has_rows = _csv_shape(path) if fmt == "csv" else _parquet_shape(path)
    except (OSError, ValueError, csv.Error, UnicodeDecodeError) as error:
        return [f"{path} cannot be read as {fmt}: {str(error).splitlines()[0]}"]
    found = {name.lower() for name in names}
    missing = [c for c in contract.columns if c.lower() not in found]
    if missing:
        return [
            f"{path} has no column {', '.join(missing)} (the raw contract's {table} columns "
            f"are {', '.join(contract.columns)}; the file has {', '.join(names) or 'none'})."
        ]
    if table == "transactions" and not has_rows:
        return [
            f"{path} has no rows (only its "
            f"{'header line' if fmt == 'csv' else 'schema'}): there are no transactions "
            "to build from. Import or generate the data again."
        ]
    return []


def _csv_shape(path: Path) -> tuple[list[str], bool]:
    """The header's column names and whether a data line follows (CSV quoting rules)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        has_rows = any(any(field.strip() for field in row) for row in _first(reader, 1))
    return [name.strip() for name in header], has_rows


def _first(reader, n: int):
    for i, row in enumerate(reader):
        if i >= n:
            return
        yield row


def _parquet_shape(path: Path) -> tuple[list[str], bool]:
    metadata = pq.read_metadata(path)
    return list(metadata.schema.to_arrow_schema().names), metadata.num_rows > 0


def describe_folder(raw_dir: Path) -> tuple[list[str], list[str]]:
    """The raw-contract tables present in raw_dir and the other files (names)."""
    tables = [p.name for files in contract_files_by_table(raw_dir).values() for p in files]
    others = sorted(
        p.name for p in raw_dir.iterdir() if p.name not in tables
    ) if raw_dir.is_dir() else []
    return tables, others
