"""Shared machinery: the error type, loading a source file into DuckDB, typed parsing.

Every importer loads its file into a DuckDB table ``src`` whose ``rowid`` is the
row's position in the file (0-based, header excluded): DuckDB keeps insertion
order for a plain ``create table as select``, and line numbers and error
messages rely on it. CSV cells are loaded as text and parsed here, so that a
bad value is reported with its column and examples instead of failing deep
inside DuckDB's sniffer, and so that every importer parses the same way.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from xsell import timezones
from xsell.files import sha256_of  # noqa: F401  (the importers take it from here)

MAX_EXAMPLES = 5
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "DECIMAL")
_TIME_TYPES = ("TIMESTAMP", "DATE")


class DataImportError(ValueError):
    """The file (or the mapping) cannot be turned into the raw contract at all.

    Raised for structural problems only: a missing column, a value that cannot
    be parsed in a column that must be typed, an invalid mapping. Defective but
    typed rows (negative prices, null customers, duplicates) are not errors:
    they go through to staging, which quarantines them with a reason.
    """


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in (
        (".csv", "csv"), (".csv.gz", "csv"), (".tsv", "csv"), (".tsv.gz", "csv"),
        (".txt", "csv"), (".parquet", "parquet"), (".pq", "parquet"),
        (".xlsx", "xlsx"), (".xlsm", "xlsx"),
    ):
        if name.endswith(suffix):
            return fmt
    if name.endswith(".xls"):
        raise DataImportError(f"{path}: legacy .xls is not supported; save it as .xlsx or CSV")
    raise DataImportError(
        f"{path}: cannot tell the format from the file name; expected .csv, .csv.gz, .tsv, "
        ".parquet or .xlsx (for import_mapped, set `format:` in the mapping)"
    )


def require_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataImportError(f"{path}: file not found")
    return path


# --- loading -----------------------------------------------------------------------------------


def load_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    header: bool = True,
) -> None:
    """Load a CSV (optionally gzipped) into table ``src``, every column as text."""
    options = ["all_varchar = true", f"header = {'true' if header else 'false'}"]
    if delimiter is not None:
        options.append(f"delim = {literal(delimiter)}")
    if encoding is not None:
        options.append(f"encoding = {literal(encoding)}")
    sql = f"create or replace table src as select * from read_csv(?, {', '.join(options)})"
    try:
        con.execute(sql, [str(path)])
    except duckdb.Error as exc:
        if "Invalid unicode" in str(exc):
            line = re.search(r"CSV Error on Line: (\d+)", str(exc))
            raise DataImportError(
                f"{path}: is not {encoding or 'utf-8'} text"
                + (f" (first bad byte on line {line.group(1)})" if line else "")
                + ". Give the file's encoding in the mapping, e.g. `csv: {encoding: latin-1}` "
                "for an export from Windows or Excel (latin-1, utf-8 and utf-16 are read)."
            ) from exc
        raise DataImportError(f"{path}: cannot be read as CSV: {exc}") from exc


def load_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        con.execute("create or replace table src as select * from read_parquet(?)", [str(path)])
    except duckdb.Error as exc:
        raise DataImportError(f"{path}: cannot be read as Parquet: {exc}") from exc


def _cell_text(value: Any) -> str | None:
    """One spreadsheet cell as the text a CSV export would hold."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # 17850.0 -> "17850" (Excel stores every number as a float).
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def load_xlsx(con: duckdb.DuckDBPyConnection, path: Path, *, sheet: str | None = None) -> list[str]:
    """Load one worksheet (the first unless named) into ``src``, every column as text.

    Returns notes (for example the names of the sheets that were not read).
    Rows that are entirely empty (trailing formatted rows) are skipped.
    openpyxl reads about 10-20k rows a second: CSV is much faster for big files.
    """
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types
        raise DataImportError(f"{path}: cannot be read as an .xlsx workbook: {exc}") from exc
    notes: list[str] = []
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
            if len(workbook.sheetnames) > 1:
                notes.append(
                    f"read sheet {worksheet.title!r} only; ignored sheets "
                    + ", ".join(repr(s) for s in workbook.sheetnames[1:])
                )
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise DataImportError(
                f"{path}: no sheet named {sheet!r}; sheets are: {', '.join(workbook.sheetnames)}"
            )
        rows = worksheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            raise DataImportError(f"{path}: sheet {worksheet.title!r} is empty")
        names = [str(h).strip() if h is not None else "" for h in header_row]
        while names and names[-1] == "":
            names.pop()
        if not names or "" in names:
            raise DataImportError(
                f"{path}: sheet {worksheet.title!r} needs a header row with a name in every "
                f"column; found {list(header_row)}"
            )
        columns: list[list[str | None]] = [[] for _ in names]
        width = len(names)
        for row in rows:
            cells = (tuple(row) + (None,) * width)[:width]
            if all(c is None for c in cells):
                continue
            for column, value in zip(columns, cells, strict=True):
                column.append(_cell_text(value))
    finally:
        workbook.close()
    table = pa.table(
        {n: pa.array(c, type=pa.string()) for n, c in zip(names, columns, strict=True)}
    )
    con.register("src_arrow", table)
    con.execute("create or replace table src as select * from src_arrow")
    con.unregister("src_arrow")
    return notes


def require_rows(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # An empty import would replace the previous raw tables with nothing.
    if not con.execute("select count(*) from src").fetchall()[0][0]:
        raise DataImportError(f"{path}: has a header but no data rows")


def source_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Column name -> DuckDB type name of ``src``, in file order."""
    return {name: str(dtype) for name, dtype, *_ in con.execute("describe src").fetchall()}


def missing_column_error(path: Path, column: str, purpose: str, available: list[str]) -> str:
    by_lower = {a.lower(): a for a in available}
    close = difflib.get_close_matches(column.lower(), list(by_lower), n=1, cutoff=0.5)
    hint = f"; did you mean {by_lower[close[0]]!r}?" if close else "."
    return (
        f"{path}: column {column!r} ({purpose}) not found{hint} "
        f"Available columns: {', '.join(repr(a) for a in available)}"
    )


# --- typed parsing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """SQL for one typed target: ``raw`` is shown in errors, ``value`` is the parsed value,
    ``bad`` is true where the cell holds something that does not parse."""

    raw: str
    value: str
    bad: str


def _base_type(dtype: str) -> str:
    return dtype.split("(")[0].split(" ")[0].upper()


def _unsupported(path: Path, column: str, dtype: str, expected: str) -> DataImportError:
    return DataImportError(f"{path}: column {column!r} has type {dtype}; expected {expected}")


def _text(col: str) -> str:
    return f"nullif(trim({col}), '')"


def text_expr(column: str, dtype: str) -> str:
    """An identifier or label as trimmed text, empty -> null; integral floats lose their .0."""
    col = quote(column)
    base = _base_type(dtype)
    if base == "VARCHAR":
        return _text(col)
    if base in _FLOAT_TYPES:
        return (
            f"case when isfinite({col}::double) and {col} = trunc({col}) "
            f"then cast(cast({col} as hugeint) as varchar) else cast({col} as varchar) end"
        )
    return f"cast({col} as varchar)"


def customer_id_expr(column: str, dtype: str) -> str:
    # Exports from pandas/Excel write numeric loyalty ids as floats ("17850.0").
    return rf"regexp_replace({text_expr(column, dtype)}, '^([0-9]+)\.0+$', '\1')"


def integer_expr(path: Path, column: str, dtype: str, *, decimal_comma: bool = False) -> Parsed:
    col = quote(column)
    base = _base_type(dtype)
    if base == "VARCHAR":
        raw = _text(col)
        text = f"replace({raw}, ',', '.')" if decimal_comma else raw
        number = f"try_cast({text} as double)"
    elif base in _NUMERIC_TYPES:
        raw = f"cast({col} as varchar)"
        number = f"cast({col} as double)"
    else:
        raise _unsupported(path, column, dtype, "whole numbers")
    value = (
        f"case when isfinite({number}) and {number} = round({number}) "
        f"and {number} between {INT32_MIN} and {INT32_MAX} then cast({number} as integer) end"
    )
    return Parsed(raw=raw, value=value, bad=f"({raw} is not null and ({value}) is null)")


def double_expr(path: Path, column: str, dtype: str, *, decimal_comma: bool = False) -> Parsed:
    col = quote(column)
    base = _base_type(dtype)
    if base == "VARCHAR":
        raw = _text(col)
        text = f"replace({raw}, ',', '.')" if decimal_comma else raw
        number = f"try_cast({text} as double)"
    elif base in _NUMERIC_TYPES:
        raw = f"cast({col} as varchar)"
        number = f"cast({col} as double)"
    else:
        raise _unsupported(path, column, dtype, "numbers")
    value = f"case when isfinite({number}) then {number} end"
    return Parsed(raw=raw, value=value, bad=f"({raw} is not null and ({value}) is null)")


def timestamp_expr(
    path: Path, columns: list[str], dtypes: list[str], fmt: str | None
) -> Parsed:
    """Parse one column, or several joined by a space (a date and a time column)."""
    if len(columns) == 1 and _base_type(dtypes[0]) != "VARCHAR":
        col = quote(columns[0])
        if not _base_type(dtypes[0]).startswith(_TIME_TYPES):
            raise _unsupported(path, columns[0], dtypes[0], "timestamps or text")
        raw = f"cast({col} as varchar)"
        value = timezones.column_sql(col, dtypes[0], timezones.store_timezone())
        if value is None:  # TIMESTAMPTZ: instants, local time needs the stores' zone
            raise _unsupported(path, columns[0], dtypes[0], "local times, or set "
                               f"{timezones.ZONE_ENV} to the stores' time zone")
        return Parsed(raw=raw, value=value, bad="false")
    parts = [_text(f"cast({quote(c)} as varchar)") for c in columns]
    raw = parts[0] if len(parts) == 1 else "(" + " || ' ' || ".join(parts) + ")"
    value = timezones.text_sql(raw, fmt, timezones.store_timezone())  # offsets: xsell.timezones
    return Parsed(raw=raw, value=value, bad=f"({raw} is not null and ({value}) is null)")


def count_bad(con: duckdb.DuckDBPyConnection, parsed: Parsed) -> int:
    return con.execute(f"select count(*) from src where {parsed.bad}").fetchall()[0][0]


def describe_bad(
    con: duckdb.DuckDBPyConnection, column: str, target: str, parsed: Parsed, expected: str
) -> str | None:
    """What is wrong with one typed column (count and examples), or None when all cells parse."""
    n_bad = count_bad(con, parsed)
    if not n_bad:
        return None
    examples = con.execute(
        f"select {parsed.raw} as raw, min(rowid) + 1 as row from src where {parsed.bad} "
        f"group by raw order by row limit {MAX_EXAMPLES}"
    ).fetchall()
    shown = ", ".join(f"{raw!r} (row {row})" for raw, row in examples)
    return (
        f"column {column!r} ({target}): {n_bad:,} value{'s' if n_bad != 1 else ''} "
        f"cannot be parsed as {expected}, e.g. {shown}"
        + timezones.offset_hint([raw for raw, _ in examples])
        + (number_hint([raw for raw, _ in examples]) if "number" in expected else "")
    )


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:([.,' ])\d{3})+(?:(?!\1)[.,]\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")


def number_hint(values: list) -> str:
    """A sentence for an import error when the numbers are written the local way."""
    texts = [v.strip() for v in values if isinstance(v, str)]
    if texts and all(_THOUSANDS.match(v) and not _DECIMAL_COMMA.match(v) for v in texts):
        return (". The numbers carry thousands separators (as in "
                f"{texts[0]!r}): export them without, e.g. 1569.99 or 1569,99")
    if texts and all(_DECIMAL_COMMA.match(v) for v in texts):
        return '. The numbers use a decimal comma: set `csv: {decimal: ","}` in the mapping'
    return ""


class ParseChecks:
    """Check every typed column, then report all the bad ones in one error."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con, self.path = con, path
        self.problems: list[str] = []

    def check(self, column: str, target: str, parsed: Parsed, expected: str) -> str:
        """Record a problem if any cell of ``column`` does not parse; return the value SQL."""
        try:
            problem = describe_bad(self.con, column, target, parsed, expected)
        except duckdb.Error as exc:  # e.g. an invalid strptime format
            problem = f"column {column!r} ({target}): {exc}"
        if problem:
            self.problems.append(problem)
        return parsed.value

    def raise_if_any(self) -> None:
        note = " (rows count data rows from 1)"
        if len(self.problems) == 1:
            raise DataImportError(f"{self.path}: {self.problems[0]}{note}")
        if self.problems:
            raise DataImportError(
                f"{self.path}: {len(self.problems)} columns cannot be parsed{note}:\n"
                + "\n".join(f"- {p}" for p in self.problems)
            )
