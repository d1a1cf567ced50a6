"""Import any transaction file (CSV, Parquet, XLSX) through a ``mapping.yml``.

The mapping names, for each contract column, the column of the user's file that
holds it, or a constant::

    format: csv                 # csv | parquet | xlsx; default from the file name
    csv: {delimiter: ";", encoding: latin-1, header: true, decimal: ","}
    columns:
      sold_at: {column: Date, format: "%d/%m/%Y %H:%M"}   # required
      product_id: SKU           # required
      receipt_id: Invoice       # optional: else derived from customer_id and sold_at
      quantity: Qty             # optional, whole numbers; else 1 per line
      unit_price: Price         # optional (or line_total); else null: basket-only data
      customer_id: Member       # optional, else null (anonymous)
      store_id: {value: Leith}  # optional, a constant; else `store:` (default MAIN)
      product_name: Description # optional
      category: Dept            # optional, else UNCATEGORIZED
    non_merchandise: [POST, "*postage*"]
    anchors: ["SOFA-*"]

A text value is a column of the file; ``{column: ...}`` says the same. A YAML
number (``quantity: 1``) or ``{value: ...}`` (``store_id: {value: Leith}``) is a
constant for every line. See ``MAPPING_KEYS`` and ``TARGETS`` for everything
accepted, and the README ("Use your own data") for worked examples. The mapping is
validated (constants included) before the file is read; the file's columns are
checked before any value is parsed.

Derivations (each one recorded in ``_import.json``):

- ``line_total``: unit_price = line_total / quantity as a double, not rounded (a
  rounded price would change the line's amount: 46 / 3 -> 15.33 x 3 = 45.99).
  A line with quantity 0 keeps a null unit_price and its zero quantity: staging
  quarantines it as ``zero_quantity``.
- no ``receipt_id``: a customer's lines at one timestamp (to the second) form a
  receipt, or, when the file has dates only (every sold_at at 00:00:00) or
  ``receipts: {by: day}``, a customer's lines of one day. The id is
  ``<customer_id>@<YYYY-MM-DD[ HH:MM:SS]>``, prefixed by ``<store_id>/`` when the
  store comes from a column. Lines without a customer get no receipt_id (merging
  anonymous shoppers would invent baskets) and staging quarantines them as
  ``missing_receipt_id``.
- ``line_cost``: a product's unit_cost = its line costs over its quantity on lines
  with a positive quantity, so quantity x unit_cost adds up to the file's costs.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from xsell.contract import RAW_TABLES
from xsell.importers._base import (
    INT32_MAX,
    INT32_MIN,
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
from xsell.importers._products import SizeRule, derive_products, seed_large_categories
from xsell.importers._review import (
    ProductPatterns,
    anchor_warning,
    fee_candidates,
    fee_warning,
    pattern_list,
    trim_warning,
    trimmed_text,
)
from xsell.importers._write import ImportSummary, write_raw_tables
from xsell.importers.categories import NON_MERCHANDISE, categorize

REQUIRED_TARGETS = ("sold_at", "product_id")
# Pairs of targets of which a mapping gives at most one.
ALTERNATIVES = (("unit_price", "line_total"), ("unit_cost", "line_cost"))
# target -> what it is (for messages and docs)
TARGETS: dict[str, str] = {
    "receipt_id": "receipt / invoice / order number (text); default: derived from customer_id "
    "and sold_at (see `receipts`)",
    "sold_at": "sale timestamp or date; `format` is a strptime pattern, `column` may list a "
    "date and a time column",
    "product_id": "SKU / article number (text)",
    "quantity": "units on the line, whole number, negative for returns; default: 1",
    "unit_price": "price per unit; without unit_price and line_total, unit_price is null "
    "on every line (basket-only data)",
    "line_total": "amount of the line (quantity x unit price), instead of unit_price; "
    "unit_price = line_total / quantity",
    "customer_id": "loyalty / customer number (text), empty for anonymous shoppers",
    "store_id": "store / shop (text); default: the constant `store`",
    "campaign_id": "promotion applied to the line (text)",
    "line_number": "line position within the receipt; default: file order within receipt",
    "product_name": "product description; the most frequent per product is kept",
    "category": "product category; the most frequent per product is kept",
    "size_class": "LARGE / SMALL per product; default: see `anchors` and `size_class`",
    "unit_cost": "cost per unit; the per-product median is kept",
    "line_cost": "cost of the line, instead of unit_cost; per product, unit_cost = "
    "sum(line_cost) / sum(quantity) over lines with a positive quantity",
}
TEXT_TARGETS = ("receipt_id", "store_id", "customer_id", "product_id", "campaign_id",
                "product_name", "category", "size_class")
INTEGER_TARGETS = ("quantity", "line_number")
NUMBER_TARGETS = ("unit_price", "line_total", "unit_cost", "line_cost")
MAPPING_KEYS = {
    "format": "csv | parquet | xlsx (default: from the file name)",
    "csv": "CSV options: delimiter, encoding (utf-8, utf-16, latin-1), header (true/false; "
    "without a header, columns are named column0, column1, ...), decimal ('.' or ',')",
    "xlsx": "XLSX options: sheet (default: the first sheet)",
    "columns": "target -> source column, or a constant (see TARGETS)",
    "store": "store_id for every line when columns.store_id is not mapped (default MAIN)",
    "receipts": "{by: timestamp | day}: when receipt_id is not mapped, a customer's lines at "
    "one timestamp, or on one day, form a receipt (default: day when the file has dates "
    "only, else timestamp)",
    "size_class": "{large_price_quantile: 0.95}: products whose median positive unit price is "
    "at or above this quantile of product median prices are LARGE (anchors); needs prices "
    "from a column",
    "anchors": "product ids or glob patterns (id or name, case-insensitive) of the anchor "
    "products (LARGE); replaces the price rule",
    "non_merchandise": "product ids or glob patterns (id or name, case-insensitive) of fees, "
    "postage, deposits and adjustments",
    "merchandise": "product ids or glob patterns of products that look like fees but are "
    "goods (silences the warning about them)",
    "category_keywords": "true: when no category column is mapped, derive the category "
    "from product_name by keyword (xsell.importers.categories); default false",
}
CSV_OPTIONS = ("delimiter", "encoding", "header", "decimal")
XLSX_OPTIONS = ("sheet",)
DEFAULT_STORE = "MAIN"
DEFAULT_QUANTILE = 0.95
RECEIPTS_BY = ("timestamp", "day")
SINGLE_LINE_SHARE = 0.9  # derived receipts by timestamp: warn when this many have one line
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%p", "%f", "%X", "%c", "%T", "%R", "%g", "%n")
FEE_ADVICE = (
    "List them (ids, or patterns such as '*postage*') under `non_merchandise:` in the "
    "mapping; list the ones that are goods under `merchandise:` to silence this warning."
)


@dataclass(frozen=True)
class ColumnSpec:
    """One target: read from ``columns`` of the file, or a ``constant`` (SQL) on every line."""

    target: str
    columns: list[str]
    format: str | None = None
    constant: str | None = None
    value: Any = None  # the constant as written in the mapping

    @property
    def is_constant(self) -> bool:
        return self.constant is not None

    def describe(self) -> str:
        if self.is_constant:
            return f"constant {self.value!r}"
        return "column " + " + ".join(repr(c) for c in self.columns)


@dataclass(frozen=True)
class Mapping:
    format: str
    csv: dict[str, Any]
    xlsx: dict[str, Any]
    columns: dict[str, ColumnSpec]
    store: str
    large_price_quantile: float | None  # None: no price rule
    non_merchandise: ProductPatterns
    merchandise: ProductPatterns
    anchors: ProductPatterns | None  # None: not given
    category_keywords: bool
    receipts_by: str | None  # None: from the data (day for dates only)
    raw: dict[str, Any]

    @property
    def price_target(self) -> str | None:
        return next((t for t in ("unit_price", "line_total") if t in self.columns), None)

    @property
    def has_price_column(self) -> bool:
        target = self.price_target
        return target is not None and not self.columns[target].is_constant

    def column_of(self, target: str) -> str | None:
        """The single source column of a target, or None (absent, constant, or joined)."""
        spec = self.columns.get(target)
        if spec is None or spec.is_constant or len(spec.columns) != 1:
            return None
        return spec.columns[0]


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _constant(mapping_path: Path, target: str, value: Any, fmt: str | None) -> ColumnSpec:
    """A constant target, checked and turned into SQL (no file is read)."""

    def bad(expected: str) -> DataImportError:
        return _fail(mapping_path, f"columns.{target}: constant {value!r} is not {expected}")

    if target in INTEGER_TARGETS:
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise bad("a whole number") from None
        if not _is_number(number) or not math.isfinite(number) or number != round(number) or not (
            INT32_MIN <= number <= INT32_MAX
        ):
            raise bad("a whole number")
        sql = f"cast({int(number)} as integer)"
    elif target in NUMBER_TARGETS:
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise bad("a number") from None
        if not _is_number(number) or not math.isfinite(number):
            raise bad("a number")
        sql = f"cast({float(number)!r} as double)"
    elif target == "sold_at":
        if isinstance(value, dt.datetime):
            stamp = value.replace(tzinfo=None)
        elif isinstance(value, dt.date):
            stamp = dt.datetime.combine(value, dt.time())
        elif isinstance(value, str) and value.strip():
            query = "select try_strptime(?, ?)" if fmt else "select try_cast(? as timestamp)"
            try:
                with duckdb.connect() as con:
                    stamp = con.execute(query, [value.strip(), fmt] if fmt else [value.strip()]
                                        ).fetchall()[0][0]
            except duckdb.Error as exc:
                raise _fail(mapping_path, f"columns.sold_at: {exc}") from exc
            if stamp is None:
                raise bad(f"a timestamp in format {fmt!r}" if fmt else "an ISO timestamp")
        else:
            raise bad("a timestamp")
        sql = f"cast({literal(stamp.isoformat(sep=' '))} as timestamp)"
    elif target == "size_class":
        if not isinstance(value, str) or value.strip().upper() not in ("LARGE", "SMALL"):
            raise bad("LARGE or SMALL")
        sql = f"cast({literal(value.strip().upper())} as varchar)"
    else:
        if isinstance(value, bool) or not (_is_number(value) or isinstance(value, str)):
            raise bad("text")
        text = str(value).strip()
        if not text:
            raise bad("text (it is empty)")
        sql = f"cast({literal(text)} as varchar)"
    return ColumnSpec(target, [], fmt, constant=sql, value=value)


def _column_spec(mapping_path: Path, target: str, value: Any) -> ColumnSpec:
    if isinstance(value, str) and value:
        return ColumnSpec(target, [value])
    if _is_number(value) or (target == "sold_at" and isinstance(value, dt.date)):
        return _constant(mapping_path, target, value, None)
    if isinstance(value, dict):
        allowed = ("column", "value", "format") if target == "sold_at" else ("column", "value")
        _check_keys(mapping_path, f"columns.{target}", value, allowed)
        fmt = value.get("format")
        if fmt is not None and not (isinstance(fmt, str) and fmt):
            raise _fail(mapping_path, f"columns.{target}.format must be text, got {fmt!r}")
        if ("column" in value) == ("value" in value):
            raise _fail(
                mapping_path,
                f"columns.{target} needs either `column:` (a column of the file) or "
                f"`value:` (a constant for every line), got {value!r}",
            )
        if "value" in value:
            return _constant(mapping_path, target, value["value"], fmt)
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
        return ColumnSpec(target, columns, fmt)
    raise _fail(
        mapping_path,
        f"columns.{target} must be a column name, a number (a constant), {{column: ...}} or "
        f"{{value: ...}}, got {value!r}",
    )


def _patterns(mapping_path: Path, raw: dict, key: str) -> ProductPatterns | None:
    if key not in raw:
        return None
    value = raw[key]
    if value is None:
        value = []
    if not isinstance(value, list) or not all(
        (isinstance(v, str) and v.strip()) or (_is_number(v) and not isinstance(v, float))
        for v in value
    ):
        raise _fail(
            mapping_path,
            f"{key} must be a list of product ids or patterns (text such as POST or "
            f"'*postage*'), got {value!r}",
        )
    return ProductPatterns(pattern_list(v.strip() if isinstance(v, str) else v for v in value))


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
            "`product_id: SKU`; required targets: " + ", ".join(REQUIRED_TARGETS),
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
    for first, second in ALTERNATIVES:
        if first in columns and second in columns:
            raise _fail(mapping_path, f"columns: give either {first} or {second}, not both")
    specs = {t: _column_spec(mapping_path, t, v) for t, v in columns.items()}

    if "receipt_id" not in specs and "customer_id" not in specs:
        raise _fail(
            mapping_path,
            "columns: map receipt_id, or customer_id so that receipts can be derived "
            "(a customer's lines at one time, or on one day, form a receipt)",
        )
    receipts = raw.get("receipts")
    receipts_by = None
    if receipts is not None:
        if "receipt_id" in specs:
            raise _fail(mapping_path, "receipts applies only when columns.receipt_id is not "
                        "mapped (receipts are then derived)")
        if not isinstance(receipts, dict):
            raise _fail(mapping_path, f"receipts must be {{by: timestamp | day}}, got "
                        f"{receipts!r}")
        _check_keys(mapping_path, "receipts", receipts, ("by",))
        receipts_by = receipts.get("by")
        if receipts_by not in RECEIPTS_BY:
            raise _fail(mapping_path, f"receipts.by must be timestamp or day, got "
                        f"{receipts_by!r}")

    store = raw.get("store", DEFAULT_STORE)
    if "store" in raw and "store_id" in specs:
        raise _fail(mapping_path, "give either `store:` or `columns.store_id`, not both")
    if not (isinstance(store, str) and store) and not (
        isinstance(store, int) and not isinstance(store, bool)
    ):
        raise _fail(mapping_path, f"store must be text, got {store!r}")

    anchors = _patterns(mapping_path, raw, "anchors")
    size = raw.get("size_class") or {}
    if not isinstance(size, dict):
        raise _fail(mapping_path, f"size_class must be {{large_price_quantile: q}}, got {size!r}")
    _check_keys(mapping_path, "size_class", size, ("large_price_quantile",))
    quantile = size.get("large_price_quantile", DEFAULT_QUANTILE)
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not (
        0 <= quantile <= 1
    ):
        raise _fail(
            mapping_path,
            f"size_class.large_price_quantile must be a number from 0 to 1, got {quantile!r}",
        )
    priced = any(t in specs and not specs[t].is_constant for t in ("unit_price", "line_total"))
    if "large_price_quantile" in size:
        if anchors is not None:
            raise _fail(mapping_path, "give either `anchors:` or "
                        "`size_class.large_price_quantile`, not both")
        if not priced:
            raise _fail(
                mapping_path,
                "size_class.large_price_quantile needs prices from a column (unit_price or "
                "line_total); without them anchors come from a size_class column, `anchors:`, "
                "or the categories of seeds/category_attributes.csv",
            )

    non_merch = _patterns(mapping_path, raw, "non_merchandise") or ProductPatterns()
    merch = _patterns(mapping_path, raw, "merchandise") or ProductPatterns()
    keywords = raw.get("category_keywords", False)
    if not isinstance(keywords, bool):
        raise _fail(mapping_path, f"category_keywords must be true or false, got {keywords!r}")

    return Mapping(
        format=fmt,
        csv=csv,
        xlsx=xlsx,
        columns=specs,
        store=str(store),
        large_price_quantile=float(quantile) if priced and anchors is None else None,
        non_merchandise=non_merch,
        merchandise=merch,
        anchors=anchors,
        category_keywords=keywords,
        receipts_by=receipts_by,
        raw=raw,
    )


def _size_rule(m: Mapping, project_dir: Path | None) -> tuple[SizeRule, list[str]]:
    if m.anchors is not None:
        return SizeRule("list"), []
    if m.large_price_quantile is not None:
        return SizeRule("price", m.large_price_quantile), []
    seed = seed_large_categories(project_dir)
    if seed is None:
        return SizeRule("none"), [
            "seeds/category_attributes.csv not found: no category can make a product an anchor"
        ]
    return SizeRule("category", large_categories=seed), []


def import_mapped(
    path: Path, mapping_path: Path, out_dir: Path, *, project_dir: Path | None = None
) -> ImportSummary:
    """Import ``path`` into ``out_dir`` as described by ``mapping_path`` (see module docstring).

    ``project_dir`` locates seeds/category_attributes.csv (default: the xsell project).
    """
    started = time.perf_counter()
    path = require_file(Path(path))
    mapping_path = Path(mapping_path)
    m = load_mapping(mapping_path, path)
    size_rule, notes = _size_rule(m, project_dir)

    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")  # timezone-aware inputs become UTC wall time
        notes += _load(con, path, m)
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
        trimmed = trimmed_text(
            con,
            {t: c for t in TEXT_TARGETS if (c := m.column_of(t)) is not None},
            types,
        )
        select_list = ",\n".join(f"{sql} as {name}" for name, sql in exprs.items())
        con.execute(f"create table typed as select rowid as src_row, {select_list} from src")
        con.execute("drop table src")
        sold_at = _sold_at_kind(con, m, types)
        receipts = _receipts(con, m, sold_at["date_only"])
        line_number = (
            "line_number_given"
            if "line_number" in m.columns
            else "cast(row_number() over (partition by receipt_id order by src_row) as integer)"
        )
        unit_price = (
            "case when quantity <> 0 then line_total / quantity end"
            if m.price_target == "line_total" else "unit_price"
        )
        con.execute(f"""
            create table tx as
            with lines as (
                select * exclude (receipt_id, unit_price),
                    {receipts["sql"]} as receipt_id,
                    {unit_price} as unit_price
                from typed
            )
            select *, {line_number} as line_number
            from lines
            order by src_row
        """)
        con.execute("drop table typed")

        def classify(product_id: str, name: str | None) -> tuple[bool, str | None, bool]:
            if m.non_merchandise.match(product_id, name):
                return False, NON_MERCHANDISE, False
            listed = bool(m.anchors) and m.anchors.match(product_id, name) is not None
            return True, categorize(name) if m.category_keywords else None, listed

        products = derive_products(con, classify=classify, size_rule=size_rule)
        transactions = con.sql(
            f"select {', '.join(RAW_TABLES['transactions'].columns)} from tx order by src_row"
        ).to_arrow_table()
        counts = _counts(con, receipts["derived"])
        counts["bad_price_products"] = con.execute(
            "select product_id, count(*) as n from tx where unit_price <= 0 "
            "group by 1 order by n desc, 1 limit 3"
        ).fetchall()
    finally:
        con.close()

    receipts["receipts"] = counts["receipts"]
    receipts["lines_without_receipt_id"] = counts["no_receipt"]
    receipts.pop("sql")
    candidates = fee_candidates(products.table, products.lines_by_product, m.merchandise)
    notes += _notes(m, products, size_rule, counts, sold_at, receipts)
    warnings = _warnings(m, products, size_rule, counts, receipts, candidates, trimmed)
    non_merch_ids = [
        pid for pid, merch in zip(products.table.column("product_id").to_pylist(),
                                  products.table.column("is_merchandise").to_pylist(),
                                  strict=True)
        if not merch
    ]
    return write_raw_tables(
        out_dir,
        {"transactions": transactions, "products": products.table},
        source=path,
        sha256=sha256_of(path),
        started=started,
        notes=notes,
        warnings=warnings,
        metadata={
            "importer": "mapped",
            "source": {"format": m.format},
            "mapping": {
                "path": str(mapping_path.resolve()),
                "sha256": sha256_of(mapping_path),
                "content": m.raw,
            },
            "columns": _column_sources(m, receipts),
            "sold_at": sold_at,
            "receipts": receipts,
            "prices": {
                "source": _price_source(m),
                "lines_with_zero_quantity": counts["zero_quantity"],
                "lines_without_unit_price": counts["no_price"],
            },
            "parameters": {
                "large_price_quantile": m.large_price_quantile,
                "large_price_threshold": products.large_price_threshold,
            },
            "anchors": {
                "rule": size_rule.kind,
                "described": size_rule.describe(),
                "patterns": list(m.anchors.patterns) if m.anchors is not None else None,
                "size_class_sources": products.size_sources,
                "anchors": products.n_large,
                "merchandise_products": products.n_merchandise,
            },
            "non_merchandise": {
                "patterns": list(m.non_merchandise.patterns),
                "reviewed_as_merchandise": list(m.merchandise.patterns),
                "products": non_merch_ids,
                "candidates": candidates,
            },
            "trimmed": [t.__dict__ for t in trimmed],
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
    """SQL per typed column; typed columns are checked here (raising on bad values)."""
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
        if specs[target].is_constant:
            return specs[target].constant
        column = one(target)
        if target == "customer_id":
            return customer_id_expr(column, types[column])
        return text_expr(column, types[column])

    def number(target: str, default: str = "cast(null as double)") -> str:
        if target not in specs:
            return default
        if specs[target].is_constant:
            return specs[target].constant
        column = one(target)
        if target in INTEGER_TARGETS:
            parsed = integer_expr(path, column, types[column], decimal_comma=decimal_comma)
            return checked(target, parsed, "a whole number")
        parsed = double_expr(path, column, types[column], decimal_comma=decimal_comma)
        return checked(target, parsed, "a number")

    sold = specs["sold_at"]
    if sold.is_constant:
        sold_at_sql = sold.constant
    else:
        sold_at = timestamp_expr(path, sold.columns, [types[c] for c in sold.columns],
                                 sold.format)
        expected = f"a timestamp in format {sold.format!r}" if sold.format else (
            "an ISO timestamp 'YYYY-MM-DD HH:MM[:SS]' (set columns.sold_at.format for others)"
        )
        sold_at_sql = checked("sold_at", sold_at, expected)

    exprs = {
        "receipt_id": text("receipt_id"),
        "store_id": text("store_id", default=f"cast({literal(m.store)} as varchar)"),
        "customer_id": text("customer_id"),
        "product_id": text("product_id"),
        "quantity": number("quantity", default="cast(1 as integer)"),
        "unit_price": number("unit_price"),
        "line_total": number("line_total"),
        "sold_at": sold_at_sql,
        "campaign_id": text("campaign_id"),
        "line_product_name": text("product_name"),
        "line_category": text("category"),
        "line_size_class": f"upper({text('size_class')})",
        "line_unit_cost": number("unit_cost"),
        "line_cost": number("line_cost"),
    }
    if "line_number" in specs:
        exprs["line_number_given"] = number("line_number")
    checks.raise_if_any()
    return exprs


def _sold_at_kind(con, m: Mapping, types: dict[str, str]) -> dict[str, Any]:
    """Whether sold_at holds dates only (no line with a time of day), and how we know."""
    with_value, with_time = con.execute(
        "select count(sold_at), count(*) filter (where cast(sold_at as time) <> time '00:00:00') "
        "from typed"
    ).fetchall()[0]
    spec = m.columns["sold_at"]
    date_only = with_value > 0 and with_time == 0
    if not date_only:
        detected = "values with a time of day" if with_value else "no value"
    elif spec.is_constant:
        detected = "a constant date"
    elif len(spec.columns) == 1 and types[spec.columns[0]].upper() == "DATE":
        detected = "a DATE column"
    elif spec.format and not any(d in spec.format for d in _TIME_DIRECTIVES):
        detected = f"format {spec.format!r} has no time of day"
    else:
        detected = "every value is at 00:00:00"
    return {
        "date_only": date_only,
        "detected_from": detected,
        "source": spec.describe(),
        "format": spec.format,
        "written_as": "midnight timestamps (00:00:00)" if date_only else "timestamps",
    }


def _receipts(con, m: Mapping, date_only: bool) -> dict[str, Any]:
    """The receipt_id SQL over ``typed``: the mapped one, or derived (see module docstring)."""
    if "receipt_id" in m.columns:
        return {"derived": False, "sql": "receipt_id", "source": m.columns["receipt_id"].describe()}
    by = m.receipts_by or ("day" if date_only else "timestamp")
    stamp = "%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:%M:%S"
    by_store = "store_id" in m.columns and not m.columns["store_id"].is_constant
    parts = ["store_id", "'/'"] if by_store else []
    parts += ["customer_id", "'@'", f"strftime(sold_at, {literal(stamp)})"]
    layout = ("<store_id>/" if by_store else "") + "<customer_id>@" + (
        "YYYY-MM-DD" if by == "day" else "YYYY-MM-DD HH:MM:SS"
    )
    return {
        "derived": True,
        "by": by,
        "rule": f"a customer's lines {'of one day' if by == 'day' else 'at one timestamp'}"
        + (" in one store" if by_store else "") + " form a receipt",
        "why": "receipts.by in the mapping" if m.receipts_by else (
            "sold_at has dates only" if date_only else "sold_at has times of day"
        ),
        "id_layout": layout,
        "anonymous_lines": "no receipt_id (staging quarantines them as missing_receipt_id): "
        "merging anonymous shoppers would invent baskets",
        "sql": "case when customer_id is not null and sold_at is not null"
        + (" and store_id is not null" if by_store else "")
        + " then " + " || ".join(parts) + " end",
    }


def _counts(con, derived: bool) -> dict[str, int]:
    row = con.execute(f"""
        with receipts as (
            -- a receipt is a store's receipt number: stores may number from 1 each
            select store_id, receipt_id, count(*) as n
            from tx where receipt_id is not null group by store_id, receipt_id
        )
        select
            (select count(*) from tx),
            (select count(*) from receipts),
            (select count(*) from receipts where n = 1),
            (select count(*) from tx where receipt_id is null),
            (select count(*) from tx where customer_id is null),
            (select count(*) from tx where sold_at is null),
            (select count(*) from tx where unit_price <= 0),
            (select count(*) from tx where unit_price is null),
            (select count(*) from tx where quantity = 0),
            {"(select count(*) from tx where customer_id is null)" if derived else "0"}
    """).fetchall()[0]
    keys = ("lines", "receipts", "single_line_receipts", "no_receipt", "no_customer",
            "no_sold_at", "bad_price", "no_price", "zero_quantity", "anonymous_no_receipt")
    return dict(zip(keys, row, strict=True))


def _price_source(m: Mapping) -> str:
    target = m.price_target
    if target is None:
        return "none: unit_price is null on every line (basket-only data)"
    spec = m.columns[target]
    if target == "line_total":
        return f"line_total ({spec.describe()}) / quantity, not rounded"
    return f"unit_price ({spec.describe()})"


def _column_sources(m: Mapping, receipts: dict[str, Any]) -> dict[str, str]:
    sources = {t: spec.describe() for t, spec in m.columns.items()}
    if receipts["derived"]:
        sources["receipt_id"] = f"derived: {receipts['rule']} ({receipts['id_layout']})"
    sources.setdefault("quantity", "default: 1 on every line")
    sources.setdefault("store_id", f"default: constant {m.store!r}")
    if m.price_target == "line_total":
        sources["unit_price"] = "derived: line_total / quantity (null when quantity is 0)"
    sources.setdefault("unit_price", "none: null on every line")
    if "line_cost" in m.columns:
        sources["unit_cost"] = "derived per product: sum(line_cost) / sum(quantity)"
    return sources


def _notes(m: Mapping, products, size_rule: SizeRule, counts, sold_at, receipts) -> list[str]:
    notes = [
        f"{counts['lines']:,} line(s), {counts['receipts']:,} receipt(s), "
        f"{products.table.num_rows:,} product(s)",
        f"{counts['bad_price']:,} line(s) with zero or negative price, {counts['no_customer']:,} "
        f"without customer, {counts['no_sold_at']:,} without timestamp: passed through for "
        "staging to check",
    ]
    if receipts["derived"]:
        notes.append(
            f"receipt_id derived ({receipts['why']}): {receipts['rule']}, "
            f"id {receipts['id_layout']}"
        )
    if sold_at["date_only"]:
        notes.append(
            f"sold_at has dates only ({sold_at['detected_from']}): written at midnight; "
            "analyses by hour of day are not applicable"
        )
    if m.price_target is None:
        notes.append(
            "no price mapped: unit_price is null on every line (basket-only data); "
            "money-based analyses are not applicable"
        )
    elif m.price_target == "line_total":
        notes.append(
            "unit_price = line_total / quantity, not rounded"
            + (f"; {counts['zero_quantity']:,} line(s) with quantity 0 keep a null unit_price "
               "for staging to quarantine as zero_quantity" if counts["zero_quantity"] else "")
        )
    elif m.columns[m.price_target].is_constant:
        notes.append(f"unit_price = {m.columns['unit_price'].value!r} on every line (a constant)")
    if "quantity" not in m.columns:
        notes.append("quantity = 1 on every line (no quantity mapped)")
    if "store_id" not in m.columns:
        notes.append(f"store_id = {m.store!r} for every line (no store column mapped)")
    if "category" not in m.columns:
        notes.append(
            "category from product_name keywords" if m.category_keywords
            else "category UNCATEGORIZED (no category column mapped)"
        )
    if "size_class" not in m.columns or not m.columns["size_class"].is_constant:
        rule = size_rule.describe()
        if size_rule.kind == "price":
            threshold = products.large_price_threshold
            rule = (
                "median positive unit price >= "
                + (f"{threshold:.2f}" if threshold is not None else "n/a")
                + f" (quantile {size_rule.large_price_quantile})"
            )
        given = products.size_sources.get("given", 0)
        notes.append(
            f"size_class LARGE by {rule}"
            + (f" where no size_class is given ({given:,} given)" if given else "")
            + f": {products.n_large:,} anchor product(s) of {products.n_merchandise:,} "
            "merchandise"
        )
    return notes


def _warnings(m: Mapping, products, size_rule: SizeRule, counts, receipts, candidates,
              trimmed) -> list[str]:
    warnings: list[str | None] = [fee_warning(candidates, FEE_ADVICE)]
    if not (m.anchors is not None and not m.anchors.patterns):  # `anchors: []` = none, on purpose
        advice = (
            "Set `anchors:` (product ids or patterns such as 'SOFA-*'), map a `size_class` "
            "column (LARGE/SMALL), or map categories named as in seeds/category_attributes.csv"
        )
        if size_rule.kind == "price":
            advice += ", or change `size_class: {large_price_quantile: q}`"
        warnings.append(anchor_warning(products.n_merchandise, products.n_large, advice + "."))
    warnings.append(trim_warning(trimmed))
    if receipts["derived"] and counts["anonymous_no_receipt"]:
        n = counts["anonymous_no_receipt"]
        warnings.append(
            f"{n:,} line{'s' if n != 1 else ''} without a customer and without a receipt number: "
            "no receipt can be derived for them (merging anonymous shoppers would invent "
            "baskets), so they have no receipt_id and staging quarantines them as "
            "missing_receipt_id. Map a receipt column if your file has one."
        )
    if counts["bad_price"]:
        n = counts["bad_price"]
        shown = ", ".join(f"{pid!r} ({k:,})" for pid, k in counts["bad_price_products"])
        warnings.append(
            f"{n:,} line{'s' if n != 1 else ''} with a zero or negative price (discounts, "
            f"coupons, refunds ...; most: {shown}): staging quarantines them as "
            "non_positive_unit_price, so the marts count sales before these amounts. They "
            "stay, with their values, in staging.quarantine_pos__transactions."
        )
    if (
        receipts["derived"] and receipts["by"] == "timestamp" and counts["receipts"]
        and counts["single_line_receipts"] / counts["receipts"] >= SINGLE_LINE_SHARE
    ):
        share = counts["single_line_receipts"] / counts["receipts"]
        warnings.append(
            f"{share:.0%} of the receipts derived by customer and timestamp have a single line: "
            "if your file stamps each line with its own time, set `receipts: {by: day}`."
        )
    return [w for w in warnings if w]
