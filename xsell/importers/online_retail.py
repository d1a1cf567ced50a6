"""Import the UCI "Online Retail" file (CSV, CSV.gz or XLSX) into the raw contract.

Columns: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice,
CustomerID, Country. The "Online Retail II" spellings (Invoice, Price,
Customer ID) are accepted too; header names match ignoring case and spaces.

Decisions (each one visible in ``_import.json``):

- receipt_id = InvoiceNo. Cancellation invoices ("C536379") are receipts of
  their own whose lines are returns: their quantity is already negative and is
  kept. "A" invoices (bad-debt adjustments) are kept too.
- line_number = position of the line within its invoice in file order, 1-based.
  Exact duplicate lines (5,268 in UCI) are kept and get different line numbers:
  whether they are real repeat scans or export errors is staging's call, which
  flags them, not the importer's.
- store_id = Country. UCI is one online shop, but Country is the only place
  attribute in the file and the contract has no other column to keep it, so we
  model one "store" per delivery country (38 of them). Store-level marts then
  read as per-country figures; nothing is lost that a single ``ONLINE`` store
  would have kept.
- customer_id = CustomerID without the float export's ".0" ("17850.0" -> "17850");
  empty -> null (anonymous shopper).
- sold_at = InvoiceDate (ISO "2010-12-01 08:26:00"; the US "12/1/2010 8:26" of
  other UCI exports is recognised too; in XLSX an Excel datetime).
- product_id = StockCode as written. Codes are case-sensitive in the data
  (4,070 codes, 3,958 ignoring case: "85049a" is not "85049A"), so no folding.
- Text is trimmed at both ends (product names, identifiers; a warning counts
  them); inner spaces, commas inside quoted descriptions and "£" are kept.
- Non-product codes (postage, carriage, fees, manual adjustments, discounts,
  bad debt, commissions, samples, gift vouchers) are products with
  ``is_merchandise = false`` and category NON_MERCHANDISE: ``NON_MERCHANDISE_PATTERNS``
  (ids and glob patterns, matched case-insensitively against code and name, as a
  mapping's ``non_merchandise``). Their lines stay in transactions. Products whose
  name holds a fee word are warned about unless listed there or in
  ``REVIEWED_MERCHANDISE`` (the carriage lantern and carriage clock are goods).
- campaign_id is null: the file has no promotion data.
- Nothing is dropped: zero and negative prices, null customers and null
  descriptions go through to staging.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb

from xsell.importers._base import (
    DataImportError,
    ParseChecks,
    count_bad,
    customer_id_expr,
    detect_format,
    double_expr,
    integer_expr,
    load_csv,
    load_xlsx,
    missing_column_error,
    quote,
    require_file,
    require_rows,
    sha256_of,
    source_columns,
    text_expr,
    timestamp_expr,
)
from xsell.importers._products import SizeRule, derive_products
from xsell.importers._review import (
    ProductPatterns,
    anchor_warning,
    fee_candidates,
    fee_warning,
    trim_warning,
    trimmed_text,
)
from xsell.importers._write import ImportSummary, write_raw_tables
from xsell.importers.categories import NON_MERCHANDISE as NON_MERCHANDISE_CATEGORY
from xsell.importers.categories import categorize

# Canonical column -> accepted spellings, compared lower-case without spaces/underscores.
COLUMNS: dict[str, tuple[str, ...]] = {
    "InvoiceNo": ("invoiceno", "invoice"),
    "StockCode": ("stockcode",),
    "Description": ("description",),
    "Quantity": ("quantity",),
    "InvoiceDate": ("invoicedate",),
    "UnitPrice": ("unitprice", "price"),
    "CustomerID": ("customerid",),
    "Country": ("country",),
}

# Products that are not goods, found by inspecting the UCI file: ids or glob patterns,
# matched case-insensitively against the stock code and the product's name (the same
# mechanism as a mapping's `non_merchandise`, see xsell.importers._review).
NON_MERCHANDISE_PATTERNS: dict[str, str] = {
    "POST": "postage",
    "DOT": "dotcom postage",
    "C2": "carriage",
    "23444": "next day carriage",
    "23574": "packing charge",
    "M": "manual adjustment (M and m)",
    "D": "discount",
    "S": "samples",
    "B": "adjust bad debt",
    "BANK CHARGES": "bank charges",
    "AMAZONFEE": "Amazon fee",
    "CRUK": "CRUK commission",
    "PADS": "pads to match all cushions (price 0.001 placeholder)",
    "23702": "high resolution image (a licence, not goods)",
    "23595": "stock adjustment (two zero-price lines, 'adjustment' and 're-adjustment')",
    "gift_*_*": "gift vouchers (gift_0001_20 = a £20 voucher)",
    "*gift voucher*": "gift vouchers under an ordinary stock code (22016 = £100)",
}
# Products whose name holds a fee word (see _review.FEE_WORDS) but that are goods.
REVIEWED_MERCHANDISE: dict[str, str] = {
    "23099": "FRENCH CARRIAGE LANTERN",
    "85168B": "BLACK BAROQUE CARRIAGE CLOCK",
}
NON_MERCHANDISE = ProductPatterns(tuple(NON_MERCHANDISE_PATTERNS))
MERCHANDISE = ProductPatterns(tuple(REVIEWED_MERCHANDISE))

# InvoiceDate formats tried in order; the first under which every value parses wins.
TIMESTAMP_FORMATS: tuple[tuple[str | None, str], ...] = (
    (None, "ISO 'YYYY-MM-DD HH:MM:SS'"),
    ("%m/%d/%Y %H:%M", "US 'M/D/YYYY H:MM'"),
)


def is_merchandise(stock_code: str, name: str | None = None) -> bool:
    return NON_MERCHANDISE.match(stock_code, name) is None


def classify(stock_code: str, name: str | None) -> tuple[bool, str, bool]:
    if not is_merchandise(stock_code, name):
        return False, NON_MERCHANDISE_CATEGORY, False
    return True, categorize(name), False


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "", name).lower()


def _resolve_columns(path: Path, available: list[str]) -> dict[str, str]:
    by_key = {_key(a): a for a in available}
    resolved: dict[str, str] = {}
    for canonical, spellings in COLUMNS.items():
        found = next((by_key[s] for s in spellings if s in by_key), None)
        if found is None:
            raise DataImportError(
                missing_column_error(path, canonical, "UCI Online Retail column", available)
            )
        resolved[canonical] = found
    return resolved


def _sold_at(checks: ParseChecks, column: str, dtype: str) -> tuple[str, str]:
    """The SQL for sold_at and the label of the format every value parses with."""
    candidates = [
        (timestamp_expr(checks.path, [column], [dtype], fmt), label)
        for fmt, label in TIMESTAMP_FORMATS
    ]
    for parsed, label in candidates:
        if not count_bad(checks.con, parsed):
            return parsed.value, label
    tried = " and ".join(label for _, label in TIMESTAMP_FORMATS)
    return checks.check(column, "sold_at", candidates[0][0], f"a timestamp (tried {tried})"), ""


def import_online_retail(
    path: Path, out_dir: Path, *, large_price_quantile: float = 0.95
) -> ImportSummary:
    """Import a UCI Online Retail file into ``out_dir`` (see the module docstring)."""
    started = time.perf_counter()
    path = require_file(Path(path))
    if not 0.0 <= large_price_quantile <= 1.0:
        raise DataImportError(
            f"large_price_quantile must be between 0 and 1, got {large_price_quantile}"
        )
    fmt = detect_format(path)
    if fmt not in ("csv", "xlsx"):
        raise DataImportError(f"{path}: the Online Retail importer reads CSV, CSV.gz or XLSX")

    con = duckdb.connect()
    try:
        notes: list[str] = []
        if fmt == "csv":
            load_csv(con, path, delimiter=",")
        else:
            notes += load_xlsx(con, path)
        types = source_columns(con)
        c = _resolve_columns(path, list(types))
        require_rows(con, path)

        checks = ParseChecks(con, path)
        quantity = checks.check(
            c["Quantity"], "quantity",
            integer_expr(path, c["Quantity"], types[c["Quantity"]]), "a whole number",
        )
        price = checks.check(
            c["UnitPrice"], "unit_price",
            double_expr(path, c["UnitPrice"], types[c["UnitPrice"]]), "a number",
        )
        sold_at, date_format = _sold_at(checks, c["InvoiceDate"], types[c["InvoiceDate"]])
        checks.raise_if_any()

        def text(canonical: str) -> str:
            return text_expr(c[canonical], types[c[canonical]])

        con.execute(f"""
            create table tx as
            with typed as (
                select
                    rowid as src_row,
                    {text("InvoiceNo")} as receipt_id,
                    {text("Country")} as store_id,
                    {customer_id_expr(c["CustomerID"], types[c["CustomerID"]])} as customer_id,
                    {text("StockCode")} as product_id,
                    {quantity} as quantity,
                    {price} as unit_price,
                    {sold_at} as sold_at,
                    cast(null as varchar) as campaign_id,
                    {text("Description")} as line_product_name
                from src
            )
            select
                *,
                cast(row_number() over (partition by receipt_id order by src_row) as integer)
                    as line_number,
                cast(null as varchar) as line_category,
                cast(null as varchar) as line_size_class,
                cast(null as double) as line_unit_cost,
                cast(null as double) as line_cost
            from typed
            order by src_row
        """)
        trimmed = trimmed_text(
            con,
            {"receipt_id": c["InvoiceNo"], "product_id": c["StockCode"],
             "product_name": c["Description"], "customer_id": c["CustomerID"],
             "store_id": c["Country"]},
            types,
        )
        products = derive_products(
            con, classify=classify, size_rule=SizeRule("price", large_price_quantile)
        )
        transactions = con.sql("select * from tx order by src_row").to_arrow_table()
        notes += _notes(con, c, date_format, products, large_price_quantile)
        n_stores = con.execute("select count(distinct store_id) from tx").fetchall()[0][0]
    finally:
        con.close()

    candidates = fee_candidates(products.table, products.lines_by_product, MERCHANDISE)
    warnings = [
        w for w in (
            fee_warning(
                candidates,
                "They stay merchandise: this importer knows the fees of the UCI file only "
                "(NON_MERCHANDISE_PATTERNS); for another file use `xsell import csv` with "
                "`non_merchandise:` in the mapping.",
            ),
            anchor_warning(
                products.n_merchandise, products.n_large,
                "Choose another --large-price-quantile.",
            ),
            trim_warning(trimmed),
        )
        if w
    ]
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
            "importer": "online_retail",
            "source": {"format": fmt, "columns": c, "timestamp_format": date_format},
            "parameters": {
                "large_price_quantile": large_price_quantile,
                "large_price_threshold": products.large_price_threshold,
                "store_id": "Country (one store per country)",
                "n_stores": n_stores,
            },
            "non_merchandise": {
                "patterns": NON_MERCHANDISE_PATTERNS,
                "reviewed_as_merchandise": REVIEWED_MERCHANDISE,
                "products": non_merch_ids,
                "candidates": candidates,
            },
            "trimmed": [t.__dict__ for t in trimmed],
            "product_categories": products.categories,
        },
    )


def _notes(con, c: dict[str, str], date_format: str, products, quantile: float) -> list[str]:
    cols = ", ".join(quote(v) for v in c.values())
    (
        lines, receipts, cancel_lines, negative_qty, zero_price, negative_price,
        no_customer, no_description, duplicates, stores,
    ) = con.execute(f"""
        select
            count(*),
            count(distinct receipt_id),
            count(*) filter (where receipt_id like 'C%'),
            count(*) filter (where quantity < 0),
            count(*) filter (where unit_price = 0),
            count(*) filter (where unit_price < 0),
            count(*) filter (where customer_id is null),
            count(*) filter (where line_product_name is null),
            count(*) - (select count(*) from (select distinct {cols} from src)),
            count(distinct store_id)
        from tx
    """).fetchall()[0]
    n_products = products.table.num_rows
    n_non_merch = products.table.column("is_merchandise").to_pylist().count(False)
    threshold = products.large_price_threshold
    return [
        f"{lines:,} lines, {receipts:,} receipts, {n_products:,} products "
        f"({n_non_merch} not merchandise: postage, fees, adjustments, vouchers)",
        f"{cancel_lines:,} lines from cancellation invoices (C…) kept as returns; "
        f"{negative_qty:,} lines with negative quantity",
        f"{duplicates:,} exact duplicate lines kept with their own line numbers; "
        "staging flags them",
        f"{zero_price:,} zero-price and {negative_price:,} negative-price lines passed through "
        "for staging to quarantine",
        f"{no_customer:,} lines without CustomerID (customer_id null); "
        f"{no_description:,} without Description",
        f"store_id = Country: {stores} stores",
        f"InvoiceDate read as {date_format}",
        "size_class LARGE when median positive unit price >= "
        + (f"{threshold:.2f}" if threshold is not None else "n/a")
        + f" (quantile {quantile} of merchandise products): {products.n_large} products",
    ]
