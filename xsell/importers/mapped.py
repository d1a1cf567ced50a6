"""Import any transaction file (CSV, Parquet, XLSX) through a ``mapping.yml``.

The mapping names, for each contract column, the column of the user's file that
holds it::

    format: csv                 # csv | parquet | xlsx; default from the file name
    csv: {delimiter: ";", encoding: latin-1, header: true, decimal: ","}
    columns:
      receipt_id: Invoice       # required
      sold_at: {column: Date, format: "%d/%m/%Y %H:%M"}   # required
      product_id: SKU           # required
      quantity: Qty             # required, whole numbers
      unit_price: Price         # required
      customer_id: Member       # optional, else null (anonymous)
      store_id: Shop            # optional, else the constant `store`
      product_name: Description # optional
      category: Dept            # optional, else UNCATEGORIZED
    store: MAIN
    size_class: {large_price_quantile: 0.95}

See ``MAPPING_KEYS`` and ``TARGETS`` for everything accepted, and
the README ("Use your own data") for a worked example. The mapping is validated before the
file is read; the file's columns are checked before any value is parsed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from xsell.importers._base import (
    DataImportError,
    ParseChecks,
    Parsed,
    customer_id_expr,
    detect_format,
    double_expr,
    integer_expr,
    literal,
    load_csv,
    load_parquet,
    load_xlsx,
    missing_column_error,
    require_file,
    require_rows,
    sha256_of,
    source_columns,
    text_expr,
    timestamp_expr,
)
from xsell.importers._products import derive_products
from xsell.importers._write import ImportSummary, write_raw_tables
from xsell.importers.categories import NON_MERCHANDISE, categorize

REQUIRED_TARGETS = ("receipt_id", "sold_at", "product_id", "quantity", "unit_price")
# target -> what it is (for messages and docs)
TARGETS: dict[str, str] = {
    "receipt_id": "receipt / invoice / order number (text)",
    "sold_at": "sale timestamp; `format` is a strptime pattern, `column` may list a date "
    "and a time column",
    "product_id": "SKU / article number (text)",
    "quantity": "units on the line, whole number, negative for returns",
    "unit_price": "price per unit",
    "customer_id": "loyalty / customer number (text), empty for anonymous shoppers",
    "store_id": "store / shop (text); default: the constant `store`",
    "campaign_id": "promotion applied to the line (text)",
    "line_number": "line position within the receipt; default: file order within receipt",
    "product_name": "product description; the most frequent per product is kept",
    "category": "product category; the most frequent per product is kept",
    "size_class": "LARGE / SMALL per product; default: derived from price",
    "unit_cost": "cost per unit; the per-product median is kept",
}
MAPPING_KEYS = {
    "format": "csv | parquet | xlsx (default: from the file name)",
    "csv": "CSV options: delimiter, encoding (utf-8, utf-16, latin-1), header (true/false; "
    "without a header, columns are named column0, column1, ...), decimal ('.' or ',')",
    "xlsx": "XLSX options: sheet (default: the first sheet)",
    "columns": "target -> source column (see TARGETS)",
    "store": "store_id for every line when columns.store_id is not mapped (default MAIN)",
    "size_class": "{large_price_quantile: 0.95}: products whose median positive unit price is "
    "at or above this quantile of product median prices are LARGE (anchors)",
    "non_merchandise": "list of product_ids that are fees, postage or adjustments",
    "category_keywords": "true: when no category column is mapped, derive the category "
    "from product_name by keyword (xsell.importers.categories); default false",
}
CSV_OPTIONS = ("delimiter", "encoding", "header", "decimal")
XLSX_OPTIONS = ("sheet",)
DEFAULT_STORE = "MAIN"


@dataclass(frozen=True)
class ColumnSpec:
    target: str
    columns: list[str]
    format: str | None = None


@dataclass(frozen=True)
class Mapping:
    format: str
    csv: dict[str, Any]
    xlsx: dict[str, Any]
    columns: dict[str, ColumnSpec]
    store: str
    large_price_quantile: float
    non_merchandise: frozenset[str]
    category_keywords: bool
    raw: dict[str, Any]


def _fail(mapping_path: Path, message: str) -> DataImportError:
    return DataImportError(f"{mapping_path}: {message}")


def _check_keys(mapping_path: Path, where: str, given: dict, allowed) -> None:
    unknown = [k for k in given if k not in allowed]
    if unknown:
        raise _fail(
            mapping_path,
            f"unknown key(s) {', '.join(repr(str(k)) for k in unknown)} in {where}; "
            f"allowed: {', '.join(allowed)}",
        )


def _column_spec(mapping_path: Path, target: str, value: Any) -> ColumnSpec:
    if isinstance(value, str) and value:
        return ColumnSpec(target, [value])
    if isinstance(value, dict):
        _check_keys(mapping_path, f"columns.{target}", value,
                    ("column", "format") if target == "sold_at" else ("column",))
        column = value.get("column")
        columns = [column] if isinstance(column, str) else column
        if (
            not isinstance(columns, list)
            or not columns
            or not all(isinstance(c, str) and c for c in columns)
            or (len(columns) > 1 and target != "sold_at")
        ):
            raise _fail(
                mapping_path,
                f"columns.{target}.column must be a column name"
                + (" or a list of them (date and time)" if target == "sold_at" else "")
                + f", got {column!r}",
            )
        fmt = value.get("format")
        if fmt is not None and not (isinstance(fmt, str) and fmt):
            raise _fail(mapping_path, f"columns.{target}.format must be text, got {fmt!r}")
        return ColumnSpec(target, columns, fmt)
    raise _fail(
        mapping_path, f"columns.{target} must be a column name or {{column: ...}}, got {value!r}"
    )


def load_mapping(mapping_path: Path, data_path: Path) -> Mapping:
    """Read and validate a mapping file (without looking at the data)."""
    mapping_path = require_file(Path(mapping_path))
    try:
        raw = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise _fail(mapping_path, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise _fail(mapping_path, "must be a YAML mapping with at least a `columns:` section")
    _check_keys(mapping_path, "the mapping", raw, tuple(MAPPING_KEYS))

    fmt = raw.get("format") or detect_format(data_path)
    if fmt not in ("csv", "parquet", "xlsx"):
        raise _fail(mapping_path, f"format must be csv, parquet or xlsx, got {fmt!r}")

    csv = raw.get("csv") or {}
    xlsx = raw.get("xlsx") or {}
    for name, options, allowed in (("csv", csv, CSV_OPTIONS), ("xlsx", xlsx, XLSX_OPTIONS)):
        if not isinstance(options, dict):
            raise _fail(mapping_path, f"{name} must be a mapping of options, got {options!r}")
        _check_keys(mapping_path, name, options, allowed)
    if "header" in csv and not isinstance(csv["header"], bool):
        raise _fail(mapping_path, f"csv.header must be true or false, got {csv['header']!r}")
    if csv.get("decimal", ".") not in (".", ","):
        raise _fail(mapping_path, f"csv.decimal must be '.' or ',', got {csv['decimal']!r}")
    for key in ("delimiter", "encoding"):
        if key in csv and not (isinstance(csv[key], str) and csv[key]):
            raise _fail(mapping_path, f"csv.{key} must be text, got {csv[key]!r}")

    columns = raw.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise _fail(
            mapping_path,
            "needs a `columns:` section mapping targets to your columns, e.g. "
            "`receipt_id: Invoice`; required targets: " + ", ".join(REQUIRED_TARGETS),
        )
    unknown = [t for t in columns if t not in TARGETS]
    if unknown:
        raise _fail(
            mapping_path,
            f"unknown target(s) {', '.join(repr(str(t)) for t in unknown)} in columns; "
            f"targets are: {', '.join(TARGETS)}",
        )
    missing = [t for t in REQUIRED_TARGETS if t not in columns]
    if missing:
        raise _fail(mapping_path, f"columns: missing required target(s) {', '.join(missing)}")
    specs = {t: _column_spec(mapping_path, t, v) for t, v in columns.items()}

    store = raw.get("store", DEFAULT_STORE)
    if "store" in raw and "store_id" in specs:
        raise _fail(mapping_path, "give either `store:` or `columns.store_id`, not both")
    if not (isinstance(store, str) and store) and not isinstance(store, int):
        raise _fail(mapping_path, f"store must be text, got {store!r}")

    size = raw.get("size_class") or {}
    if not isinstance(size, dict):
        raise _fail(mapping_path, f"size_class must be {{large_price_quantile: q}}, got {size!r}")
    _check_keys(mapping_path, "size_class", size, ("large_price_quantile",))
    quantile = size.get("large_price_quantile", 0.95)
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not (
        0 <= quantile <= 1
    ):
        raise _fail(
            mapping_path,
            f"size_class.large_price_quantile must be a number from 0 to 1, got {quantile!r}",
        )

    non_merch = raw.get("non_merchandise") or []
    if not isinstance(non_merch, list):
        raise _fail(
            mapping_path, f"non_merchandise must be a list of product ids, got {non_merch!r}"
        )
    keywords = raw.get("category_keywords", False)
    if not isinstance(keywords, bool):
        raise _fail(mapping_path, f"category_keywords must be true or false, got {keywords!r}")

    return Mapping(
        format=fmt,
        csv=csv,
        xlsx=xlsx,
        columns=specs,
        store=str(store),
        large_price_quantile=float(quantile),
        non_merchandise=frozenset(str(p) for p in non_merch),
        category_keywords=keywords,
        raw=raw,
    )


def import_mapped(path: Path, mapping_path: Path, out_dir: Path) -> ImportSummary:
    """Import ``path`` into ``out_dir`` as described by ``mapping_path`` (see module docstring)."""
    started = time.perf_counter()
    path = require_file(Path(path))
    mapping_path = Path(mapping_path)
    m = load_mapping(mapping_path, path)

    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")  # timezone-aware inputs become UTC wall time
        notes = _load(con, path, m)
        types = source_columns(con)
        require_rows(con, path)
        for spec in m.columns.values():
            for column in spec.columns:
                if column not in types:
                    raise DataImportError(
                        missing_column_error(
                            path, column, f"mapped to {spec.target} in {mapping_path.name}",
                            list(types),
                        )
                    )
        exprs = _expressions(con, path, m, types)
        select_list = ",\n".join(f"{sql} as {name}" for name, sql in exprs.items())
        line_number = (
            "line_number_given"
            if "line_number" in m.columns
            else "cast(row_number() over (partition by receipt_id order by src_row) as integer)"
        )
        con.execute(f"""
            create table tx as
            with typed as (select rowid as src_row, {select_list} from src)
            select *, {line_number} as line_number
            from typed
            order by src_row
        """)

        def classify(product_id: str, name: str | None) -> tuple[bool, str | None]:
            if product_id in m.non_merchandise:
                return False, NON_MERCHANDISE
            return True, categorize(name) if m.category_keywords else None

        products = derive_products(
            con, classify=classify, large_price_quantile=m.large_price_quantile
        )
        transactions = con.sql("select * from tx order by src_row").to_arrow_table()
        notes += _notes(con, m, products)
    finally:
        con.close()

    return write_raw_tables(
        out_dir,
        {"transactions": transactions, "products": products.table},
        source=path,
        sha256=sha256_of(path),
        started=started,
        notes=notes,
        metadata={
            "importer": "mapped",
            "source": {"format": m.format},
            "mapping": {
                "path": str(mapping_path.resolve()),
                "sha256": sha256_of(mapping_path),
                "content": m.raw,
            },
            "parameters": {
                "large_price_quantile": m.large_price_quantile,
                "large_price_threshold": products.large_price_threshold,
            },
            "product_categories": products.categories,
        },
    )


def _load(con, path: Path, m: Mapping) -> list[str]:
    if m.format == "csv":
        load_csv(
            con, path,
            delimiter=m.csv.get("delimiter"),
            encoding=m.csv.get("encoding"),
            header=m.csv.get("header", True),
        )
        return []
    if m.format == "parquet":
        load_parquet(con, path)
        return []
    return load_xlsx(con, path, sheet=m.xlsx.get("sheet"))


def _expressions(con, path: Path, m: Mapping, types: dict[str, str]) -> dict[str, str]:
    """SQL per output column; typed columns are checked here (raising on bad values)."""
    specs = m.columns
    decimal_comma = m.csv.get("decimal") == ","

    def one(target: str) -> str:
        return specs[target].columns[0]

    checks = ParseChecks(con, path)

    def checked(target: str, parsed: Parsed, expected: str) -> str:
        return checks.check(" + ".join(specs[target].columns), target, parsed, expected)

    def text(target: str, default: str = "cast(null as varchar)") -> str:
        if target not in specs:
            return default
        column = one(target)
        if target == "customer_id":
            return customer_id_expr(column, types[column])
        return text_expr(column, types[column])

    def number(target: str, *, integer: bool) -> str:
        column = one(target)
        if integer:
            parsed = integer_expr(path, column, types[column], decimal_comma=decimal_comma)
            return checked(target, parsed, "a whole number")
        parsed = double_expr(path, column, types[column], decimal_comma=decimal_comma)
        return checked(target, parsed, "a number")

    sold = specs["sold_at"]
    sold_at = timestamp_expr(path, sold.columns, [types[c] for c in sold.columns], sold.format)
    expected = f"a timestamp in format {sold.format!r}" if sold.format else (
        "an ISO timestamp 'YYYY-MM-DD HH:MM[:SS]' (set columns.sold_at.format for others)"
    )
    sold_at_sql = checked("sold_at", sold_at, expected)

    exprs = {
        "receipt_id": text("receipt_id"),
        "store_id": text("store_id", default=f"cast({literal(m.store)} as varchar)"),
        "customer_id": text("customer_id"),
        "product_id": text("product_id"),
        "quantity": number("quantity", integer=True),
        "unit_price": number("unit_price", integer=False),
        "sold_at": sold_at_sql,
        "campaign_id": text("campaign_id"),
        "line_product_name": text("product_name"),
        "line_category": text("category"),
        "line_size_class": f"upper({text('size_class')})",
        "line_unit_cost": (
            number("unit_cost", integer=False) if "unit_cost" in specs else "cast(null as double)"
        ),
    }
    if "line_number" in specs:
        exprs["line_number_given"] = number("line_number", integer=True)
    checks.raise_if_any()
    return exprs


def _notes(con, m: Mapping, products) -> list[str]:
    lines, receipts, bad_price, no_customer, no_sold_at = con.execute("""
        select
            count(*),
            count(distinct receipt_id),
            count(*) filter (where unit_price <= 0),
            count(*) filter (where customer_id is null),
            count(*) filter (where sold_at is null)
        from tx
    """).fetchall()[0]
    threshold = products.large_price_threshold
    notes = [
        f"{lines:,} line(s), {receipts:,} receipt(s), {products.table.num_rows:,} product(s)",
        f"{bad_price:,} line(s) with zero or negative price, {no_customer:,} without customer, "
        f"{no_sold_at:,} without timestamp: passed through for staging to check",
    ]
    if "store_id" not in m.columns:
        notes.append(f"store_id = {m.store!r} for every line (no store column mapped)")
    if "category" not in m.columns:
        notes.append(
            "category from product_name keywords" if m.category_keywords
            else "category UNCATEGORIZED (no category column mapped)"
        )
    if "size_class" not in m.columns:
        notes.append(
            "size_class LARGE when median positive unit price >= "
            + (f"{threshold:.2f}" if threshold is not None else "n/a")
            + f" (quantile {m.large_price_quantile}): {products.n_large} product(s)"
        )
    return notes
