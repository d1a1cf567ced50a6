"""Importers: UCI Online Retail (real file when present), mapped CSV/Parquet/XLSX, errors."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xsell.contract import RAW_TABLES
from xsell.importers import (
    DataImportError,
    import_mapped,
    import_online_retail,
)
from xsell.importers._review import fee_word
from xsell.importers.categories import CATEGORIES, categorize
from xsell.importers.online_retail import NON_MERCHANDISE_PATTERNS, REVIEWED_MERCHANDISE

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS = REPO_ROOT.parent / "shared" / "datasets"
UCI_FILE = DATASETS / "online_retail" / "online_retail.csv.gz"
UCI_SHA256 = "737745256ddb4410bfe4e29f2dcb72329b7486e584837f1e84f9a07416cf7d45"

UCI_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def read(out: Path, table: str) -> list[dict]:
    return pq.read_table(out / f"{table}.parquet").to_pylist()


def sql(query: str) -> list[tuple]:
    return duckdb.connect().execute(query).fetchall()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_contract(out: Path) -> None:
    for name, table in RAW_TABLES.items():
        assert pq.read_schema(out / f"{name}.parquet").equals(table.schema), name


# --- the real UCI file -------------------------------------------------------------------------

needs_uci = pytest.mark.skipif(
    not UCI_FILE.is_file(),
    reason=f"shared dataset not found at {UCI_FILE} (../shared/datasets is not part of the repo)",
)


@pytest.fixture(scope="module")
def uci(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("uci") / "raw"
    return out, import_online_retail(UCI_FILE, out)


@pytest.mark.dataset
@needs_uci
class TestOnlineRetailFile:
    def test_published_figures(self, uci):
        out, summary = uci
        tx = f"'{out}/transactions.parquet'"
        [row] = sql(f"""
            select count(*), count(distinct receipt_id), count(distinct customer_id),
                   count(*) filter (where receipt_id like 'C%'),
                   sum(quantity), sum(quantity * unit_price),
                   count(*) filter (where customer_id is null),
                   count(*) filter (where quantity < 0),
                   count(distinct store_id), min(sold_at), max(sold_at)
            from {tx}
        """)
        assert row[:5] == (541_909, 25_900, 4_372, 9_288, 5_176_450)
        assert row[5] == pytest.approx(9_747_747.93, abs=0.01)
        assert row[6:] == (
            135_080, 10_624, 38, dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 12, 9, 12, 50)
        )
        assert summary.row_counts == {
            "transactions": 541_909, "products": 4_070, "customers": 0,
            "restaurant_orders": 0, "campaigns": 0,
        }
        assert_contract(out)

    def test_defective_rows_are_kept(self, uci):
        out, _ = uci
        tx = f"'{out}/transactions.parquet'"
        negative = sql(f"select receipt_id, product_id, unit_price from {tx} where unit_price < 0 "
                       "order by receipt_id")
        assert negative == [("A563186", "B", -11062.06), ("A563187", "B", -11062.06)]
        assert sql(f"select count(*) from {tx} where unit_price = 0") == [(2_515,)]
        # The source's 5,268 exact duplicates survive, with distinct line numbers. On the
        # contract columns there are 5,270: two pairs differ only in their Description
        # (575335/23203 "JUMBO BAG DOILEY PATTERNS" vs "...VINTAGE DOILY ", 554084/23298).
        [(dupes,)] = sql(f"""
            select count(*) - count(distinct (receipt_id, product_id, quantity, unit_price,
                                              sold_at, customer_id, store_id))
            from {tx}""")
        assert dupes == 5_270
        assert sql(f"select count(*) - count(distinct (receipt_id, line_number)) from {tx}") == [
            (0,)
        ]

    def test_line_numbers_follow_file_order(self, uci):
        out, _ = uci
        with gzip.open(UCI_FILE, "rt", encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            next(rows)
            seen: Counter[str] = Counter()
            expected = []
            for row in rows:
                seen[row[0]] += 1
                expected.append((row[0], seen[row[0]], row[1]))
        table = pq.read_table(out / "transactions.parquet",
                              columns=["receipt_id", "line_number", "product_id"])
        got = list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
        assert got == expected
        # "C536379,D,Discount" comes right after invoice 536381 in the file.
        i = got.index(("C536379", 1, "D"))
        assert got[i - 1][0] == "536381"

    def test_text_quirks(self, uci):
        out, _ = uci
        names = {p["product_id"]: p["product_name"] for p in read(out, "products")}
        # Quoted commas survive, inner spaces too; only the ends are trimmed.
        assert "HOOK, 1 HANGER ,MAGIC GARDEN" in names.values()
        assert "INFLATABLE POLITICAL GLOBE" in names.values()
        assert not [n for n in names.values() if n and n != n.strip()]
        assert names["gift_0001_20"] == "Dotcomgiftshop Gift Voucher £20.00"
        assert sum("£" in (n or "") for n in names.values()) == 6  # the voucher products
        # Most frequent description wins over stock notes ("faulty", "damages").
        assert names["22423"] == "REGENCY CAKESTAND 3 TIER"
        assert sum(n is None for n in names.values()) == 112  # codes never described
        # Customer ids lose the float export's ".0"; codes keep their case.
        tx = f"'{out}/transactions.parquet'"
        assert sql(f"select count(*) from {tx} where not regexp_matches(customer_id, "
                   r"'^1[0-9]{4}$')") == [(0,)]
        assert {"85049a", "85049A"} <= set(names)

    def test_products(self, uci):
        out, summary = uci
        products = {p["product_id"]: p for p in read(out, "products")}
        non_merch = {pid for pid, p in products.items() if not p["is_merchandise"]}
        # The patterns find "m" through "M", the gift_0001_* vouchers and the £100 voucher
        # sold under an ordinary code (22016) by its name.
        assert non_merch == {
            "POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK",
            "PADS", "23444", "23574", "23702", "23595", "22016",
            *(f"gift_0001_{v}" for v in (10, 20, 30, 40, 50)),
        }
        assert products["22016"]["product_name"] == "Dotcomgiftshop Gift Voucher £100.00"
        assert {products[p]["category"] for p in non_merch} == {"NON_MERCHANDISE"}
        assert {products[p]["size_class"] for p in non_merch} == {"SMALL"}
        literal = {p for p in NON_MERCHANDISE_PATTERNS if not set(p) & set("*?[")}
        assert literal <= non_merch
        # Every fee-like product is either listed or reviewed as goods: no warning.
        assert summary.metadata["non_merchandise"]["candidates"] == []
        assert {p for p in REVIEWED_MERCHANDISE if products[p]["is_merchandise"]} == {
            "23099", "85168B"
        }
        assert products["85123A"]["category"] == "LAMPS"  # WHITE HANGING HEART T-LIGHT HOLDER
        assert products["22423"]["category"] == "KITCHENWARE"
        assert products["22423"]["size_class"] == "LARGE"
        assert products["85123A"]["size_class"] == "SMALL"
        assert all(p["unit_cost"] is None for p in products.values())
        assert {p["category"] for p in products.values()} <= set(CATEGORIES)
        categories = summary.metadata["product_categories"]
        assert sum(c["products"] for c in categories.values()) == 4_070
        assert sum(c["lines"] for c in categories.values()) == 541_909
        # The keyword table covers almost every line.
        assert categories["UNCATEGORIZED"]["lines"] / 541_909 < 0.01

    def test_size_class_threshold_recomputed(self, uci):
        out, summary = uci
        tx = pq.read_table(out / "transactions.parquet").to_pandas()
        products = pq.read_table(out / "products.parquet").to_pandas().set_index("product_id")
        medians = tx[tx.unit_price > 0].groupby("product_id").unit_price.median()
        merch = medians[products.loc[medians.index, "is_merchandise"]]
        threshold = float(np.quantile(merch, 0.95))
        assert summary.metadata["parameters"]["large_price_threshold"] == pytest.approx(threshold)
        expected_large = set(merch[merch >= threshold].index)
        assert set(products.index[products.size_class == "LARGE"]) == expected_large
        # The top 5% of merchandise median prices plus ties at 9.95 (234 before the £100
        # voucher 22016 became non-merchandise).
        assert len(expected_large) == 233

    def test_import_json(self, uci):
        out, summary = uci
        meta = json.loads((out / "_import.json").read_text(encoding="utf-8"))
        assert meta["source"]["sha256"] == UCI_SHA256 == summary.sha256
        assert meta["source"]["size_bytes"] == 7_611_818
        assert meta["row_counts"]["transactions"] == 541_909
        assert meta["parameters"]["n_stores"] == 38
        assert any("5,268 exact duplicate" in n for n in meta["notes"])
        # The only warning: trailing spaces in descriptions (the fees are all listed).
        assert meta["warnings"] == summary.warnings == [
            "trimmed leading and trailing spaces: 113,452 product_name values (column "
            "'Description'). Identifiers and names are compared trimmed (\"cream cheese \" is "
            "\"cream cheese\")."
        ]
        assert meta["trimmed"] == [{"target": "product_name", "column": "Description",
                                    "values": 113_452, "merged": 0}]
        assert meta["non_merchandise"]["patterns"]["gift_*_*"].startswith("gift vouchers")
        assert len(meta["non_merchandise"]["products"]) == 22

    def test_plain_mapping_warns_about_the_fees_and_the_patterns_find_them(self, uci,
                                                                           tmp_path):
        """Through `xsell import csv`, the fee words find 20 of the 22 products the UCI
        importer lists (not PADS and 23702, which have no fee word in their name) and two
        goods; the UCI importer's own patterns in a mapping give its exact split."""
        out, _ = uci
        uci_products = {p["product_id"]: p for p in read(out, "products")}
        uci_non_merch = {p for p, v in uci_products.items() if not v["is_merchandise"]}
        columns = ("columns: {receipt_id: InvoiceNo, sold_at: InvoiceDate, product_id: "
                   "StockCode, quantity: Quantity, unit_price: UnitPrice, customer_id: "
                   "CustomerID, product_name: Description, store_id: Country}\n")
        plain = import_mapped(UCI_FILE, write(tmp_path / "plain.yml", columns),
                              tmp_path / "plain")
        candidates = {c["product_id"]: c["lines"]
                      for c in plain.metadata["non_merchandise"]["candidates"]}
        assert set(candidates) == (uci_non_merch - {"PADS", "23702"}) | {"23099", "85168B"}
        assert candidates["POST"] == 1_256 and candidates["M"] == 571
        assert plain.warnings[0].startswith(
            "22 products look like fees, deposits, adjustments or placeholders but count as "
            "merchandise: "
            "'POST' 'POSTAGE' (1,256 lines), 'DOT' 'DOTCOM POSTAGE' (710 lines), 'M' 'Manual' "
            "(571 lines)")

        listed = columns + "non_merchandise: " + json.dumps(list(NON_MERCHANDISE_PATTERNS)) \
            + "\nmerchandise: " + json.dumps(list(REVIEWED_MERCHANDISE)) + "\n"
        summary = import_mapped(UCI_FILE, write(tmp_path / "listed.yml", listed),
                                tmp_path / "listed")
        products = read(tmp_path / "listed", "products")
        assert {p["product_id"] for p in products if not p["is_merchandise"]} == uci_non_merch
        assert summary.metadata["non_merchandise"]["candidates"] == []
        assert summary.metadata["parameters"]["large_price_threshold"] == 9.95
        assert summary.metadata["anchors"]["anchors"] == 233


# --- Online Retail, small files ----------------------------------------------------------------

SMALL_UCI = f"""{UCI_HEADER}
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER ,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536366,22633,"HAND WARMER UNION JACK",6,2010-12-01 08:28:00,1.85,,France
536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.0,17850.0,United Kingdom
C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER ,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536367,22423,"REGENCY CAKESTAND 3 TIER",1,2010-12-01 08:34:00,12.75,13047.0,United Kingdom
536367,22424,,1,2010-12-01 08:34:00,0.0,13047.0,United Kingdom
"""

EXPECTED_SMALL_TX = [
    ("536365", 1, "United Kingdom", "17850", "85123A", 6, 2.55, dt.datetime(2010, 12, 1, 8, 26)),
    ("536366", 1, "France", None, "22633", 6, 1.85, dt.datetime(2010, 12, 1, 8, 28)),
    ("536365", 2, "United Kingdom", "17850", "POST", 1, 18.0, dt.datetime(2010, 12, 1, 8, 26)),
    ("C536379", 1, "United Kingdom", "14527", "D", -1, 27.5, dt.datetime(2010, 12, 1, 9, 41)),
    ("536365", 3, "United Kingdom", "17850", "85123A", 6, 2.55, dt.datetime(2010, 12, 1, 8, 26)),
    ("536367", 1, "United Kingdom", "13047", "22423", 1, 12.75, dt.datetime(2010, 12, 1, 8, 34)),
    ("536367", 2, "United Kingdom", "13047", "22424", 1, 0.0, dt.datetime(2010, 12, 1, 8, 34)),
]


def tx_tuples(out: Path) -> list[tuple]:
    cols = ("receipt_id", "line_number", "store_id", "customer_id", "product_id", "quantity",
            "unit_price", "sold_at")
    return [tuple(r[c] for c in cols) for r in read(out, "transactions")]


def test_online_retail_small_csv(tmp_path):
    src = write(tmp_path / "or.csv", SMALL_UCI)
    summary = import_online_retail(src, tmp_path / "raw", large_price_quantile=0.5)
    assert tx_tuples(tmp_path / "raw") == EXPECTED_SMALL_TX
    assert all(r["campaign_id"] is None for r in read(tmp_path / "raw", "transactions"))
    products = {p["product_id"]: p for p in read(tmp_path / "raw", "products")}
    assert products["85123A"]["product_name"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert products["22424"]["product_name"] is None
    assert products["22424"]["category"] == "UNCATEGORIZED"
    assert (products["POST"]["is_merchandise"], products["POST"]["category"]) == (
        False, "NON_MERCHANDISE"
    )
    # Merchandise medians 2.55, 1.85, 12.75 -> median 2.55; 22424 never sold above 0.
    assert summary.metadata["parameters"]["large_price_threshold"] == pytest.approx(2.55)
    assert {p: v["size_class"] for p, v in products.items()} == {
        "85123A": "LARGE", "22633": "SMALL", "POST": "SMALL", "D": "SMALL",
        "22423": "LARGE", "22424": "SMALL",
    }
    assert summary.row_counts["transactions"] == 7
    assert any("1 exact duplicate" in n for n in summary.notes)
    assert_contract(tmp_path / "raw")


def test_online_retail_gzip_and_us_dates(tmp_path):
    us = SMALL_UCI.replace("2010-12-01 08:26:00", "12/1/2010 8:26").replace(
        "2010-12-01 09:41:00", "12/1/2010 9:41").replace(
        "2010-12-01 08:28:00", "12/1/2010 8:28").replace("2010-12-01 08:34:00", "12/1/2010 8:34")
    src = tmp_path / "or.csv.gz"
    src.write_bytes(gzip.compress(us.encode("utf-8")))
    summary = import_online_retail(src, tmp_path / "raw")
    assert tx_tuples(tmp_path / "raw") == EXPECTED_SMALL_TX
    assert summary.metadata["source"]["timestamp_format"].startswith("US")


def test_online_retail_xlsx_matches_csv(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Online Retail"
    ws.append(UCI_HEADER.split(","))
    # Typed cells as in the UCI workbook: numeric invoices, float customer ids, datetimes.
    for row in csv.reader(SMALL_UCI.splitlines()[1:]):
        invoice, code, desc, qty, date, price, customer, country = row
        ws.append([
            int(invoice) if invoice.isdigit() else invoice,
            int(code) if code.isdigit() else code,
            desc or None,
            int(qty),
            dt.datetime.fromisoformat(date),
            float(price),
            float(customer) if customer else None,
            country,
        ])
    ws.append([None] * 8)  # a trailing empty row, as Excel leaves them
    wb.create_sheet("Notes").append(["ignored"])
    src = tmp_path / "or.xlsx"
    wb.save(src)
    summary = import_online_retail(src, tmp_path / "raw", large_price_quantile=0.5)
    assert tx_tuples(tmp_path / "raw") == EXPECTED_SMALL_TX
    assert any("'Notes'" in n for n in summary.notes)

    import_online_retail(write(tmp_path / "or.csv", SMALL_UCI), tmp_path / "raw_csv",
                         large_price_quantile=0.5)
    for table in ("transactions", "products"):
        assert pq.read_table(tmp_path / "raw" / f"{table}.parquet").equals(
            pq.read_table(tmp_path / "raw_csv" / f"{table}.parquet")
        ), table


def test_online_retail_missing_column(tmp_path):
    src = write(tmp_path / "or.csv", SMALL_UCI.replace(",UnitPrice,", ",Prize,"))
    with pytest.raises(DataImportError) as err:
        import_online_retail(src, tmp_path / "raw")
    message = str(err.value)
    assert str(src) in message and "'UnitPrice'" in message
    assert "Available columns: 'InvoiceNo', 'StockCode'" in message and "'Prize'" in message
    assert not (tmp_path / "raw").exists()


def test_online_retail_bad_quantity_and_date(tmp_path):
    bad_qty = SMALL_UCI.replace(",6,2010-12-01 08:28:00,", ",six,2010-12-01 08:28:00,")
    with pytest.raises(DataImportError, match=r"column 'Quantity' \(quantity\): 1 value cannot "
                       r"be parsed as a whole number, e\.g\. 'six' \(row 2\)"):
        import_online_retail(write(tmp_path / "q.csv", bad_qty), tmp_path / "raw")
    bad_date = SMALL_UCI.replace("2010-12-01 09:41:00", "yesterday")
    with pytest.raises(DataImportError, match=r"column 'InvoiceDate' \(sold_at\): 1 value .*"
                       r"'yesterday' \(row 4\)"):
        import_online_retail(write(tmp_path / "d.csv", bad_date), tmp_path / "raw")
    with pytest.raises(DataImportError, match="between 0 and 1"):
        import_online_retail(write(tmp_path / "ok.csv", SMALL_UCI), tmp_path / "raw",
                             large_price_quantile=95)


def test_header_only_file_is_an_error(tmp_path):
    with pytest.raises(DataImportError, match=r"empty\.csv: has a header but no data rows"):
        import_online_retail(write(tmp_path / "empty.csv", UCI_HEADER + "\n"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_missing_file_and_exception_type(tmp_path):
    with pytest.raises(DataImportError, match="file not found"):
        import_online_retail(tmp_path / "nope.csv", tmp_path / "raw")
    assert issubclass(DataImportError, ValueError)


def test_refuses_folder_with_csv_tables(tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    write(out / "transactions.csv", "receipt_id\n")
    with pytest.raises(DataImportError, match=r"transactions\.csv"):
        import_online_retail(write(tmp_path / "or.csv", SMALL_UCI), out)
    assert not (out / "transactions.parquet").exists()


def test_reimport_replaces_previous_output(tmp_path):
    out = tmp_path / "raw"
    import_online_retail(write(tmp_path / "or.csv", SMALL_UCI), out)
    # A generator's customers table in the same folder is replaced by an empty one.
    customers = pa.Table.from_pylist(
        [{"customer_id": "1", "household_size": 2, "distance_km": 3.0, "joined_at": None}],
        schema=RAW_TABLES["customers"].schema,
    )
    pq.write_table(customers, out / "customers.parquet")
    two_lines = "\n".join(SMALL_UCI.splitlines()[:3]) + "\n"
    summary = import_online_retail(write(tmp_path / "two.csv", two_lines), out)
    assert summary.row_counts["transactions"] == 2 == len(read(out, "transactions"))
    assert read(out, "customers") == []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{t}.parquet" for t in RAW_TABLES] + ["_import.json", "_raw_files.json"]
    )


# --- categories --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "LAMPS"),  # LAMPS before DECOR's HANGING
        ("PAPER CHAIN KIT 50'S CHRISTMAS ", "CHRISTMAS"),  # CHRISTMAS first
        ("LUNCH BAG RED RETROSPOT", "BAGS"),  # BAGS before KITCHENWARE's LUNCH BOX
        ("SET OF 3 CAKE TINS PANTRY DESIGN", "KITCHENWARE"),  # before STORAGE's TIN
        ("JUMBO STORAGE BAG SUKI", "BAGS"),
        ("SET/4 WHITE RETRO STORAGE CUBES", "STORAGE"),
        ("ASSORTED COLOUR BIRD ORNAMENT", "DECOR"),
        ("CHEST OF DRAWERS GINGHAM HEART", "FURNITURE"),
        ("LIGHTHOUSE", "UNCATEGORIZED"),  # whole words only
        ("DOLLY GIRL MINI BACKPACK", "BAGS"),
        ("mugs", "KITCHENWARE"),  # case-insensitive, plural
        ("", "UNCATEGORIZED"),
        (None, "UNCATEGORIZED"),
    ],
)
def test_categorize(name, category):
    assert categorize(name) == category


# --- mapped importer ---------------------------------------------------------------------------

SALES = """Invoice;Date;SKU;Qty;Price;Member;Description;Dept;Shop
R1;31/01/2024 10:15;SOFA-1;1;899,00;00123;Corner sofa ;Sofas;S1
R2;31/01/2024 10:20;CUSH-1;2;19,90;;Cushion;Textiles;S2
R1;31/01/2024 10:15;CUSH-1;4;19,90;00123;Cushion cover;Textiles;S1
R1;31/01/2024 10:15;MEAT;1;-5,50;17850.0;Meatballs;Food;S1
R3;01/02/2024 09:00;SOFA-1;-1;899,00;00123;CORNER SOFA;Sofas;S1
R3;01/02/2024 09:00;LAMP-7;1;49,00;00123;Lamp;Lighting;S1
"""

SALES_MAPPING = """
format: csv
csv: {delimiter: ";", decimal: ","}
columns:
  receipt_id: Invoice
  sold_at: {column: Date, format: "%d/%m/%Y %H:%M"}
  product_id: SKU
  quantity: Qty
  unit_price: Price
  customer_id: Member
  product_name: Description
  category: Dept
  store_id: Shop
size_class: {large_price_quantile: 0.5}
"""


def mapped(tmp_path: Path, data: str, mapping: str, name: str = "sales.csv"):
    src = write(tmp_path / name, data)
    mp = write(tmp_path / "mapping.yml", mapping)
    return import_mapped(src, mp, tmp_path / "raw")


def test_mapped_csv(tmp_path):
    summary = mapped(tmp_path, SALES, SALES_MAPPING)
    out = tmp_path / "raw"
    assert_contract(out)
    assert tx_tuples(out) == [
        ("R1", 1, "S1", "00123", "SOFA-1", 1, 899.0, dt.datetime(2024, 1, 31, 10, 15)),
        ("R2", 1, "S2", None, "CUSH-1", 2, 19.9, dt.datetime(2024, 1, 31, 10, 20)),
        ("R1", 2, "S1", "00123", "CUSH-1", 4, 19.9, dt.datetime(2024, 1, 31, 10, 15)),
        ("R1", 3, "S1", "17850", "MEAT", 1, -5.5, dt.datetime(2024, 1, 31, 10, 15)),
        ("R3", 1, "S1", "00123", "SOFA-1", -1, 899.0, dt.datetime(2024, 2, 1, 9, 0)),
        ("R3", 2, "S1", "00123", "LAMP-7", 1, 49.0, dt.datetime(2024, 2, 1, 9, 0)),
    ]
    products = {p["product_id"]: p for p in read(out, "products")}
    # Ties: the byte-smallest name wins ("CORNER SOFA" < "Corner sofa"; "Cushion" < "Cushion c…").
    assert {p: (v["product_name"], v["category"], v["size_class"]) for p, v in
            products.items()} == {
        "CUSH-1": ("Cushion", "Textiles", "SMALL"),
        "LAMP-7": ("Lamp", "Lighting", "LARGE"),  # medians 19.9, 49, 899 -> threshold 49
        "MEAT": ("Meatballs", "Food", "SMALL"),  # never sold at a positive price
        "SOFA-1": ("CORNER SOFA", "Sofas", "LARGE"),
    }
    assert summary.metadata["parameters"]["large_price_threshold"] == pytest.approx(49.0)
    meta = json.loads((out / "_import.json").read_text(encoding="utf-8"))
    assert meta["importer"] == "mapped"
    assert meta["mapping"]["content"]["columns"]["quantity"] == "Qty"
    assert len(meta["mapping"]["sha256"]) == 64
    assert meta["row_counts"] == {"transactions": 6, "products": 4, "customers": 0,
                                  "restaurant_orders": 0, "campaigns": 0}


def test_mapped_defaults_store_category_keywords(tmp_path):
    mapping = """
columns:
  receipt_id: Invoice
  sold_at: {column: Date, format: "%d/%m/%Y %H:%M"}
  product_id: SKU
  quantity: Qty
  unit_price: Price
  product_name: Description
csv: {delimiter: ";", decimal: ","}
store: 42
non_merchandise: [MEAT]
category_keywords: true
"""
    mapped(tmp_path, SALES, mapping)
    rows = read(tmp_path / "raw", "transactions")
    assert {r["store_id"] for r in rows} == {"42"}
    assert {r["customer_id"] for r in rows} == {None}
    products = {p["product_id"]: p for p in read(tmp_path / "raw", "products")}
    assert {p: (v["category"], v["is_merchandise"]) for p, v in products.items()} == {
        "CUSH-1": ("TEXTILES", True),
        "LAMP-7": ("LAMPS", True),
        "MEAT": ("NON_MERCHANDISE", False),
        "SOFA-1": ("FURNITURE", True),
    }
    # Without category_keywords (default) and no category column: UNCATEGORIZED.
    mapped(tmp_path, SALES, mapping.replace("category_keywords: true", ""))
    assert {p["category"] for p in read(tmp_path / "raw", "products")} == {
        "UNCATEGORIZED", "NON_MERCHANDISE"
    }


def test_mapped_parquet_typed_columns(tmp_path):
    table = pa.table({
        "order": pa.array([10, 10, 11], pa.int64()),
        "ts": pa.array([dt.datetime(2024, 3, 1, 12, 0)] * 2 + [dt.datetime(2024, 3, 2, 8, 30)],
                       pa.timestamp("ms")),
        "article": pa.array(["A", "B", "A"]),
        "units": pa.array([1.0, 3.0, -1.0]),
        "price": pa.array([10.5, 2.0, 10.5], pa.float32()),
        "loyalty": pa.array([17850.0, None, 99.0]),
        "line": pa.array([5, 7, 1], pa.int16()),
        "cost": pa.array([4.0, 1.0, None]),
        "size": pa.array(["large", "Small", None]),
    })
    src = tmp_path / "sales.parquet"
    pq.write_table(table, src)
    mp = write(tmp_path / "m.yml", """
columns:
  receipt_id: order
  sold_at: ts
  product_id: article
  quantity: units
  unit_price: price
  customer_id: loyalty
  line_number: line
  unit_cost: cost
  size_class: size
""")
    import_mapped(src, mp, tmp_path / "raw")
    assert tx_tuples(tmp_path / "raw") == [
        ("10", 5, "MAIN", "17850", "A", 1, 10.5, dt.datetime(2024, 3, 1, 12, 0)),
        ("10", 7, "MAIN", None, "B", 3, 2.0, dt.datetime(2024, 3, 1, 12, 0)),
        ("11", 1, "MAIN", "99", "A", -1, 10.5, dt.datetime(2024, 3, 2, 8, 30)),
    ]
    products = {p["product_id"]: p for p in read(tmp_path / "raw", "products")}
    assert (products["A"]["size_class"], products["A"]["unit_cost"]) == ("LARGE", 4.0)
    assert (products["B"]["size_class"], products["B"]["unit_cost"]) == ("SMALL", 1.0)


def test_mapped_date_and_time_columns_no_header_tsv(tmp_path):
    data = "R1\t2024-05-01\t14:30\tX\t2\t3.5\nR1\t2024-05-01\t14:30\tY\t1\t0\n"
    mapping = """
format: csv
csv: {delimiter: "\\t", header: false}
columns:
  receipt_id: column0
  sold_at: {column: [column1, column2], format: "%Y-%m-%d %H:%M"}
  product_id: column3
  quantity: column4
  unit_price: column5
"""
    mapped(tmp_path, data, mapping, name="sales.tsv")
    assert tx_tuples(tmp_path / "raw") == [
        ("R1", 1, "MAIN", None, "X", 2, 3.5, dt.datetime(2024, 5, 1, 14, 30)),
        ("R1", 2, "MAIN", None, "Y", 1, 0.0, dt.datetime(2024, 5, 1, 14, 30)),
    ]


def test_mapped_xlsx_named_sheet(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.append(["not", "this"])
    ws = wb.create_sheet("Sales")
    ws.append(["Bon", "Zeit", "Artikel", "Menge", "Preis"])
    ws.append([1001, dt.datetime(2024, 6, 1, 11, 5), 40112, 2, 3.0])
    ws.append(["1002", dt.datetime(2024, 6, 1, 11, 6), "40112", 1, 2.95])
    src = tmp_path / "kasse.xlsx"
    wb.save(src)
    mp = write(tmp_path / "m.yml", """
xlsx: {sheet: Sales}
columns: {receipt_id: Bon, sold_at: Zeit, product_id: Artikel, quantity: Menge, unit_price: Preis}
""")
    import_mapped(src, mp, tmp_path / "raw")
    assert tx_tuples(tmp_path / "raw") == [
        ("1001", 1, "MAIN", None, "40112", 2, 3.0, dt.datetime(2024, 6, 1, 11, 5)),
        ("1002", 1, "MAIN", None, "40112", 1, 2.95, dt.datetime(2024, 6, 1, 11, 6)),
    ]
    with pytest.raises(DataImportError, match=r"no sheet named 'Kasse'; sheets are: Sheet, Sales"):
        import_mapped(src, write(tmp_path / "m2.yml", mp.read_text().replace("Sales}", "Kasse}")),
                      tmp_path / "raw2")


# --- mapped: data errors -----------------------------------------------------------------------


def test_mapped_missing_column_lists_available(tmp_path):
    with pytest.raises(DataImportError) as err:
        mapped(tmp_path, SALES, SALES_MAPPING.replace("quantity: Qty", "quantity: Quantity"))
    message = str(err.value)
    assert "column 'Quantity' (mapped to quantity in mapping.yml) not found" in message
    assert "did you mean 'Qty'?" in message
    assert ("Available columns: 'Invoice', 'Date', 'SKU', 'Qty', 'Price', 'Member', "
            "'Description', 'Dept', 'Shop'") in message
    assert not (tmp_path / "raw").exists()


def test_mapped_bad_timestamps_show_count_and_five_examples(tmp_path):
    bad = ["yesterday", "31/02/2024 10:00", "2024-01-31 10:15", "soon", "n/a", "later", "never"]
    lines = SALES.splitlines()
    data = [lines[0]] + [
        lines[1].replace("31/01/2024 10:15", b) for b in bad + ["yesterday"]
    ] + lines[1:]
    with pytest.raises(DataImportError) as err:
        mapped(tmp_path, "\n".join(data) + "\n", SALES_MAPPING)
    message = str(err.value)
    assert "column 'Date' (sold_at): 8 values cannot be parsed as a timestamp in format " \
        "'%d/%m/%Y %H:%M'" in message
    assert re.findall(r"'([^']*)' \(row (\d+)\)", message) == [
        ("yesterday", "1"), ("31/02/2024 10:00", "2"), ("2024-01-31 10:15", "3"),
        ("soon", "4"), ("n/a", "5"),
    ]


@pytest.mark.parametrize(
    ("replace", "column", "target", "bad", "expected"),
    [
        ("1;899,00", "Qty", "quantity", "1,5", "a whole number"),
        ("1;899,00", "Qty", "quantity", "99999999999", "a whole number"),
        ("1;899,00", "Price", "unit_price", "£899", "a number"),
    ],
)
def test_mapped_bad_numbers(tmp_path, replace, column, target, bad, expected):
    new = f"{bad};899,00" if target == "quantity" else f"1;{bad}"
    data = SALES.replace(replace, new, 1)
    with pytest.raises(DataImportError) as err:
        mapped(tmp_path, data, SALES_MAPPING)
    assert (f"column {column!r} ({target}): 1 value cannot be parsed as {expected}, "
            f"e.g. {bad!r} (row 1)") in str(err.value)


def test_mapped_reports_every_bad_column_at_once(tmp_path):
    data = SALES.replace("31/01/2024 10:20", "tomorrow").replace("4;19,90", "four;19,90")
    data = data.replace("49,00", "EUR 49")
    with pytest.raises(DataImportError) as err:
        mapped(tmp_path, data, SALES_MAPPING)
    lines = str(err.value).splitlines()
    assert lines[0].endswith("sales.csv: 3 columns cannot be parsed (rows count data rows from 1):")
    assert [line.split(":")[0] for line in lines[1:]] == [
        "- column 'Date' (sold_at)", "- column 'Qty' (quantity)", "- column 'Price' (unit_price)"
    ]
    assert "'tomorrow' (row 2)" in lines[1] and "'four' (row 3)" in lines[2]
    assert "'EUR 49' (row 6)" in lines[3]


def test_mapped_iso_default_and_null_cells_pass(tmp_path):
    data = "Invoice,Date,SKU,Qty,Price\nR1,2024-01-02 03:04:05,A,1,2\nR1,,A,,\n,2024-01-02,,3,1\n"
    mapping = ("columns: {receipt_id: Invoice, sold_at: Date, product_id: SKU, quantity: Qty, "
               "unit_price: Price}\n")
    summary = mapped(tmp_path, data, mapping)
    # Empty cells are not parse errors: they reach staging as nulls, which quarantines them.
    assert tx_tuples(tmp_path / "raw") == [
        ("R1", 1, "MAIN", None, "A", 1, 2.0, dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("R1", 2, "MAIN", None, "A", None, None, None),
        (None, 1, "MAIN", None, None, 3, 1.0, dt.datetime(2024, 1, 2)),
    ]
    assert summary.row_counts["products"] == 1
    with pytest.raises(DataImportError, match=r"columns\.sold_at\.format.*'02/01/2024' \(row 1\)"):
        mapped(tmp_path, data.replace("2024-01-02 03:04:05", "02/01/2024"), mapping)


# --- mapped: mapping errors --------------------------------------------------------------------

BASE = "columns: {receipt_id: Invoice, sold_at: Date, product_id: SKU, quantity: Qty, " \
       "unit_price: Price}\n"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (BASE + "stores: X\n", r"unknown key\(s\) 'stores' in the mapping; allowed: format, csv"),
        (BASE.replace("Qty", "Qty, qty: Q"), r"unknown target\(s\) 'qty' in columns; targets are"),
        ("columns: {receipt_id: Invoice, quantity: Qty}\n",
         r"columns: missing required target\(s\) sold_at, product_id"),
        ("format: json\n" + BASE, r"format must be csv, parquet or xlsx, got 'json'"),
        (BASE + "csv: {delim: ';'}\n", r"unknown key\(s\) 'delim' in csv; allowed: delimiter"),
        (BASE + "csv: {header: 'yes'}\n", r"csv\.header must be true or false"),
        (BASE + "csv: {decimal: ';'}\n", r"csv\.decimal must be"),
        (BASE.replace("}", ", store_id: Shop}") + "store: S\n", r"either `store:` or"),
        (BASE + "size_class: {large_price_quantile: 95}\n", r"from 0 to 1, got 95"),
        (BASE + "size_class: {quantile: 0.9}\n", r"unknown key\(s\) 'quantile' in size_class"),
        (BASE.replace("Qty", "{column: Qty, format: '%d'}"),
         r"unknown key\(s\) 'format' in columns\.quantity"),
        (BASE.replace("SKU", "[SKU, Code]"), r"columns\.product_id must be a column name"),
        (BASE.replace("Date", "{column: [D, T, X], fmt: x}"), r"unknown key\(s\) 'fmt'"),
        (BASE + "non_merchandise: POST\n", r"non_merchandise must be a list"),
        (BASE + "category_keywords: sometimes\n", r"category_keywords must be true or false"),
        ("- just\n- a list\n", r"must be a YAML mapping"),
        ("columns: [\n", r"not valid YAML"),
        ("format: csv\n", r"needs a `columns:` section"),
    ],
)
def test_mapping_validation(tmp_path, mapping, message):
    with pytest.raises(DataImportError, match=message) as err:
        mapped(tmp_path, SALES, mapping)
    assert str(tmp_path / "mapping.yml") in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_mapped_unreadable_csv(tmp_path):
    (tmp_path / "bad.csv").write_bytes(b"Invoice,Date\n\xff\xfe\x00,1\n")
    with pytest.raises(DataImportError,
                       match=r"bad\.csv: is not utf-8 text \(first bad byte on line 2\)"):
        import_mapped(tmp_path / "bad.csv", write(tmp_path / "m.yml", BASE), tmp_path / "raw")
    with pytest.raises(DataImportError, match=r"cannot tell the format"):
        mapped(tmp_path, SALES, BASE, name="sales.dat")


# --- mapped: basket-only data, constants, line totals, derived receipts -------------------------

BAKERY = """Date,Time,Transaction,Item
2016-10-30,09:58:11,1,Bread
2016-10-30,10:05:34,2,Scandinavian
2016-10-30,10:05:34,2,Scandinavian
2016-10-30,10:07:57,3,Hot chocolate
2016-10-30,10:07:57,3,Jam
2016-10-30,10:07:57,3,Cookies
2016-10-31,08:08:41,4,Muffin
"""
BAKERY_MAPPING = """
columns:
  receipt_id: Transaction
  sold_at: {column: [Date, Time], format: "%Y-%m-%d %H:%M:%S"}
  product_id: Item
"""


def meta_of(out: Path) -> dict:
    return json.loads((out / "_import.json").read_text(encoding="utf-8"))


def test_basket_only_file_has_null_prices_and_no_invented_anchors(tmp_path):
    summary = mapped(tmp_path, BAKERY, BAKERY_MAPPING)
    out = tmp_path / "raw"
    assert_contract(out)
    rows = read(out, "transactions")
    assert [(r["receipt_id"], r["line_number"], r["product_id"], r["quantity"], r["unit_price"])
            for r in rows] == [
        ("1", 1, "Bread", 1, None), ("2", 1, "Scandinavian", 1, None),
        ("2", 2, "Scandinavian", 1, None), ("3", 1, "Hot chocolate", 1, None),
        ("3", 2, "Jam", 1, None), ("3", 3, "Cookies", 1, None), ("4", 1, "Muffin", 1, None),
    ]
    assert rows[0]["sold_at"] == dt.datetime(2016, 10, 30, 9, 58, 11)
    products = read(out, "products")
    assert len(products) == 6
    assert {(p["size_class"], p["category"], p["is_merchandise"]) for p in products} == {
        ("SMALL", "UNCATEGORIZED", True)
    }
    meta = meta_of(out)
    assert meta["prices"]["source"].startswith("none: unit_price is null on every line")
    assert meta["prices"]["lines_without_unit_price"] == 7
    assert meta["columns"]["quantity"] == "default: 1 on every line"
    assert meta["anchors"]["rule"] == "category"  # seeds/category_attributes.csv, no match
    assert meta["parameters"]["large_price_quantile"] is None
    assert meta["sold_at"]["date_only"] is False
    assert meta["receipts"]["derived"] is False
    assert any(n.startswith("no price mapped") for n in summary.notes)
    assert any(n == "quantity = 1 on every line (no quantity mapped)" for n in summary.notes)
    # No price, no anchors: said once, printed and kept.
    assert len(summary.warnings) == 1
    assert summary.warnings[0].startswith(
        "no product is an anchor (LARGE) among 6 merchandise products")
    assert "Set `anchors:`" in summary.warnings[0]
    assert "large_price_quantile" not in summary.warnings[0]
    assert meta["warnings"] == summary.warnings
    assert "warning: no product is an anchor" in summary.describe()


def test_constants_for_any_target(tmp_path):
    mapping = BAKERY_MAPPING + """  quantity: 2
  store_id: {value: Edinburgh}
  unit_price: {value: "2.50"}
  customer_id: {value: 17}
  category: {value: BAKERY}
"""
    summary = mapped(tmp_path, BAKERY, mapping)
    rows = read(tmp_path / "raw", "transactions")
    assert {(r["quantity"], r["store_id"], r["unit_price"], r["customer_id"]) for r in rows} == {
        (2, "Edinburgh", 2.5, "17")
    }
    assert {p["category"] for p in read(tmp_path / "raw", "products")} == {"BAKERY"}
    meta = meta_of(tmp_path / "raw")
    assert meta["columns"]["store_id"] == "constant 'Edinburgh'"
    assert meta["columns"]["quantity"] == "constant 2"
    # A constant price says nothing about which products are big: no price rule.
    assert meta["anchors"]["rule"] == "category"
    assert {p["size_class"] for p in read(tmp_path / "raw", "products")} == {"SMALL"}
    assert "unit_price = '2.50' on every line (a constant)" in summary.notes
    # A constant sold_at (a one-day market stall) with a date: dates only.
    mapping = BAKERY_MAPPING.replace(
        '{column: [Date, Time], format: "%Y-%m-%d %H:%M:%S"}', "2024-06-01")
    summary = mapped(tmp_path, BAKERY, mapping)
    assert {r["sold_at"] for r in read(tmp_path / "raw", "transactions")} == {
        dt.datetime(2024, 6, 1)
    }
    assert summary.metadata["sold_at"]["detected_from"] == "a constant date"


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("quantity: {value: one}", r"columns\.quantity: constant 'one' is not a whole number"),
        ("quantity: 1.5", r"columns\.quantity: constant 1\.5 is not a whole number"),
        ("quantity: 99999999999", r"constant 99999999999 is not a whole number"),
        ("unit_price: {value: free}", r"columns\.unit_price: constant 'free' is not a number"),
        ("line_total: .nan", r"columns\.line_total: constant nan is not a number"),
        ("store_id: {value: ''}", r"columns\.store_id: constant '' is not text \(it is empty\)"),
        ("store_id: {value: [A, B]}", r"columns\.store_id: constant \['A', 'B'\] is not text"),
        ("size_class: {value: HUGE}", r"columns\.size_class: constant 'HUGE' is not LARGE or"),
        ("customer_id: true", r"columns\.customer_id must be a column name, a number"),
        ("customer_id: {column: Member, value: 1}", r"needs either `column:`.*or `value:`"),
        ("customer_id: {}", r"needs either `column:`"),
    ],
)
def test_constant_validation(tmp_path, columns, message):
    with pytest.raises(DataImportError, match=message):
        mapped(tmp_path, BAKERY, BAKERY_MAPPING + "  " + columns + "\n")
    assert not (tmp_path / "raw").exists()


def test_constant_timestamp_is_checked_before_the_file_is_read(tmp_path):
    mapping = BAKERY_MAPPING.replace(
        '{column: [Date, Time], format: "%Y-%m-%d %H:%M:%S"}',
        '{value: "31/02/2024", format: "%d/%m/%Y"}')
    src = tmp_path / "missing.csv"  # never read: the mapping fails first
    src.write_text("not,a,sales,file\n")
    with pytest.raises(DataImportError, match=r"columns\.sold_at: constant '31/02/2024' is not "
                       r"a timestamp in format '%d/%m/%Y'"):
        import_mapped(src, write(tmp_path / "mapping.yml", mapping), tmp_path / "raw")


TA_FENG_LIKE = (
    '\ufeff"TRANSACTION_DT","CUSTOMER_ID","PRODUCT_ID","AMOUNT","ASSET","SALES_PRICE"\r\n'
    '"11/1/2000","01104905","4710199010372","3","36","46"\r\n'
    '"11/1/2000","01104905","4710857472535","1","48","46"\r\n'
    '"11/1/2000","00418683","4710199010372","1","12","16"\r\n'
    '"11/2/2000","01104905","4710199010372","0","0","0"\r\n'
    '"11/2/2000","01104905","4710199010372","-1","-12","-15.5"\r\n'
    '"11/2/2000","","4710857472535","2","96","90"\r\n'
)
TA_FENG_MAPPING = """
columns:
  sold_at: {column: TRANSACTION_DT, format: "%m/%d/%Y"}
  customer_id: CUSTOMER_ID
  product_id: PRODUCT_ID
  quantity: AMOUNT
  line_total: SALES_PRICE
  line_cost: ASSET
store: TA-FENG
"""


def test_line_totals_line_costs_and_receipts_per_customer_and_day(tmp_path):
    summary = mapped(tmp_path, TA_FENG_LIKE, TA_FENG_MAPPING)
    out = tmp_path / "raw"
    assert_contract(out)
    rows = read(out, "transactions")
    day1, day2 = dt.datetime(2000, 11, 1), dt.datetime(2000, 11, 2)
    assert [(r["receipt_id"], r["line_number"], r["customer_id"], r["quantity"], r["sold_at"])
            for r in rows] == [
        ("01104905@2000-11-01", 1, "01104905", 3, day1),
        ("01104905@2000-11-01", 2, "01104905", 1, day1),
        ("00418683@2000-11-01", 1, "00418683", 1, day1),
        ("01104905@2000-11-02", 1, "01104905", 0, day2),
        ("01104905@2000-11-02", 2, "01104905", -1, day2),
        (None, 1, None, 2, day2),  # anonymous: no basket can be derived
    ]
    prices = [r["unit_price"] for r in rows]
    # Not rounded: 46 / 3 stays 15.333..., so quantity x price gives back the line total.
    assert prices[0] == 46 / 3 and prices[0] * 3 == pytest.approx(46, abs=1e-12)
    assert prices[1:] == [46.0, 16.0, None, 15.5, 45.0]  # quantity 0: no price, kept
    products = {p["product_id"]: p for p in read(out, "products")}
    # unit_cost = line costs / quantity over lines with a positive quantity
    assert products["4710199010372"]["unit_cost"] == (36 + 12) / (3 + 1)
    assert products["4710857472535"]["unit_cost"] == (48 + 96) / (1 + 2)
    # medians 15.5 and 45.5 -> quantile 0.95 = 44.0: one anchor of two
    assert summary.metadata["parameters"]["large_price_threshold"] == pytest.approx(44.0)
    assert products["4710857472535"]["size_class"] == "LARGE"
    meta = meta_of(out)
    assert meta["sold_at"] == {
        "date_only": True, "detected_from": "format '%m/%d/%Y' has no time of day",
        "source": "column 'TRANSACTION_DT'", "format": "%m/%d/%Y",
        "written_as": "midnight timestamps (00:00:00)",
    }
    receipts = meta["receipts"]
    assert (receipts["derived"], receipts["by"], receipts["id_layout"]) == (
        True, "day", "<customer_id>@YYYY-MM-DD")
    assert (receipts["receipts"], receipts["lines_without_receipt_id"]) == (3, 1)
    assert meta["prices"]["lines_with_zero_quantity"] == 1
    assert meta["columns"]["unit_price"].startswith("derived: line_total / quantity")
    assert meta["warnings"] == summary.warnings == [
        "1 line without a customer and without a receipt number: no receipt can be derived "
        "for them (merging anonymous shoppers would invent baskets), so they have no "
        "receipt_id and staging quarantines them as missing_receipt_id. Map a receipt column "
        "if your file has one."
    ]
    assert any("1 line(s) with quantity 0 keep a null unit_price" in n for n in summary.notes)


DERIVED = """Shop,Member,When,SKU
S1,7,2024-01-02 10:00:00,A
S1,7,2024-01-02 10:00:00,B
S2,7,2024-01-02 10:00:00,A
S1,7,2024-01-02 11:30:00,C
"""
DERIVED_MAPPING = """
columns: {store_id: Shop, customer_id: Member, sold_at: When, product_id: SKU}
"""


def test_receipt_numbers_that_restart_in_each_store_are_counted_per_store(tmp_path):
    data = "Shop,Bon,When,SKU\nS1,1,2024-01-02 10:00,A\nS1,1,2024-01-02 10:00,B\n" \
           "S2,1,2024-01-02 10:05,A\nS2,2,2024-01-02 10:09,C\n"
    summary = mapped(tmp_path, data, "columns: {store_id: Shop, receipt_id: Bon, sold_at: "
                                     "{column: When, format: '%Y-%m-%d %H:%M'}, product_id: SKU}\n")
    assert summary.metadata["receipts"]["receipts"] == 3  # S1/1, S2/1, S2/2
    assert meta_of(tmp_path / "raw")["receipts"]["receipts"] == 3


def test_discount_lines_are_named_as_quarantined_by_staging(tmp_path):
    data = ("Bon,When,SKU,Total\n1,2024-01-02 10:00:00,SOFA,899.00\n"
            "1,2024-01-02 10:00:00,RABATT,-5.00\n2,2024-01-02 11:00:00,RABATT,-5.00\n"
            "2,2024-01-02 11:00:00,LAMP,20.00\n3,2024-01-02 12:00:00,GIFT,0\n")
    summary = mapped(tmp_path, data, "columns: {receipt_id: Bon, sold_at: When, "
                                     "product_id: SKU, line_total: Total}\n")
    assert [w for w in summary.warnings if "zero or negative price" in w] == [
        "3 lines with a zero or negative price (discounts, coupons, refunds ...; most: "
        "'RABATT' (2), 'GIFT' (1)): staging quarantines them as non_positive_unit_price, so "
        "the marts count sales before these amounts. They stay, with their values, in "
        "staging.quarantine_pos__transactions."
    ]


def test_receipts_per_customer_and_timestamp_or_day(tmp_path):
    summary = mapped(tmp_path, DERIVED, DERIVED_MAPPING)
    assert [r["receipt_id"] for r in read(tmp_path / "raw", "transactions")] == [
        "S1/7@2024-01-02 10:00:00", "S1/7@2024-01-02 10:00:00", "S2/7@2024-01-02 10:00:00",
        "S1/7@2024-01-02 11:30:00",
    ]
    assert summary.metadata["receipts"]["by"] == "timestamp"
    assert summary.metadata["receipts"]["why"] == "sold_at has times of day"
    assert summary.metadata["sold_at"]["date_only"] is False
    assert not [w for w in summary.warnings if "single line" in w]  # 2 of 3 are single

    summary = mapped(tmp_path, DERIVED, DERIVED_MAPPING + "receipts: {by: day}\n")
    assert [(r["receipt_id"], r["line_number"]) for r in read(tmp_path / "raw", "transactions")
            ] == [("S1/7@2024-01-02", 1), ("S1/7@2024-01-02", 2), ("S2/7@2024-01-02", 1),
                  ("S1/7@2024-01-02", 3)]
    assert summary.metadata["receipts"]["why"] == "receipts.by in the mapping"

    # Every line stamped with its own second: one basket per line, which the warning names.
    data = "Member,When,SKU\n7,2024-01-02 10:00:01,A\n7,2024-01-02 10:00:02,B\n" \
           "8,2024-01-02 10:00:03,A\n"
    summary = mapped(tmp_path, data, "columns: {customer_id: Member, sold_at: When, "
                                     "product_id: SKU}\n")
    assert summary.metadata["receipts"]["receipts"] == 3
    assert [w for w in summary.warnings if "single line" in w] == [
        "100% of the receipts derived by customer and timestamp have a single line: if your "
        "file stamps each line with its own time, set `receipts: {by: day}`."
    ]


def test_dates_only_detected_from_values_and_date_columns(tmp_path):
    data = "Member,Day,SKU\n7,2024-01-02,A\n7,2024-01-02,B\n8,2024-01-03,A\n"
    summary = mapped(tmp_path, data, "columns: {customer_id: Member, sold_at: Day, "
                                     "product_id: SKU}\n")
    assert summary.metadata["sold_at"]["date_only"] is True
    assert summary.metadata["sold_at"]["detected_from"] == "every value is at 00:00:00"
    assert [r["receipt_id"] for r in read(tmp_path / "raw", "transactions")] == [
        "7@2024-01-02", "7@2024-01-02", "8@2024-01-03"]
    assert any(n.startswith("sold_at has dates only (every value is at 00:00:00)")
               for n in summary.notes)

    table = pa.table({"day": pa.array([dt.date(2024, 3, 1), dt.date(2024, 3, 2)], pa.date32()),
                      "member": ["1", "1"], "sku": ["A", "B"]})
    pq.write_table(table, tmp_path / "sales.parquet")
    summary = import_mapped(
        tmp_path / "sales.parquet",
        write(tmp_path / "m.yml", "columns: {sold_at: day, customer_id: member, "
                                  "product_id: sku}\n"),
        tmp_path / "raw_parquet",
    )
    assert summary.metadata["sold_at"]["detected_from"] == "a DATE column"
    assert [r["sold_at"] for r in read(tmp_path / "raw_parquet", "transactions")] == [
        dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2)]


SHOP = """Invoice,Date,SKU,Qty,Price,Description
R1,2024-01-02 10:00,SOFA-1,1,899,Corner sofa
R1,2024-01-02 10:00,DEL,1,49,Home delivery
R1,2024-01-02 10:00,m,1,-10,Manual
R2,2024-01-02 11:00,DEP-1,1,0.5,Bottle deposit
R2,2024-01-02 11:00,CUSH-1,2,19.9,Cushion
R3,2024-01-02 12:00,DEP-1,1,0.5,Bottle deposit
R3,2024-01-02 12:00,LAMP-1,1,49,Carriage lamp
R3,2024-01-02 12:00,FEE,1,5,Service
"""
SHOP_MAPPING = """
columns: {receipt_id: Invoice, sold_at: Date, product_id: SKU, quantity: Qty, unit_price: Price,
          product_name: Description}
non_merchandise: [M, "*deliv*"]
"""


def test_non_merchandise_patterns_and_fee_candidates(tmp_path):
    summary = mapped(tmp_path, SHOP, SHOP_MAPPING)
    products = {p["product_id"]: p for p in read(tmp_path / "raw", "products")}
    # "M" finds "m" (case-insensitive); "*deliv*" finds DEL by its name.
    assert {p for p, v in products.items() if not v["is_merchandise"]} == {"DEL", "m"}
    assert products["DEL"]["category"] == "NON_MERCHANDISE"
    candidates = summary.metadata["non_merchandise"]["candidates"]
    assert [(c["product_id"], c["word"], c["lines"]) for c in candidates] == [
        ("DEP-1", "deposit", 2), ("FEE", "fee", 1), ("LAMP-1", "carriage", 1)
    ]
    [warning] = [w for w in summary.warnings if "look like fees" in w]
    assert warning.startswith(
        "3 products look like fees, deposits, adjustments or placeholders but count as "
        "merchandise: "
        "'DEP-1' 'Bottle deposit' (2 lines), 'FEE' 'Service' (1 line), 'LAMP-1' 'Carriage "
        "lamp' (1 line). List them")
    assert summary.metadata["non_merchandise"]["products"] == ["DEL", "m"]

    summary = mapped(tmp_path, SHOP, SHOP_MAPPING.replace(
        '"*deliv*"]', '"*deliv*", "dep-?", fee]\nmerchandise: ["*lamp"]'))
    products = {p["product_id"]: p for p in read(tmp_path / "raw", "products")}
    assert {p for p, v in products.items() if not v["is_merchandise"]} == {
        "DEL", "DEP-1", "FEE", "m"}
    assert summary.metadata["non_merchandise"]["candidates"] == []
    assert not [w for w in summary.warnings if "look like fees" in w]


@pytest.mark.parametrize(("name", "word"), [
    ("Tragetasche", "tragetasche"), ("LIEF Lieferservice", "lieferservice"),
    ("Rabatt 5%", "rabatt"), ("Flaschenpfand", "pfand"), ("Versandkosten", "versand"),
    ("Frais de livraison", "frais"), ("Envío", "envío"), ("Korting 10", "korting"),
    ("NONE", "none"), (" n/a ", "n/a"), ("Bag fee", "fee"), ("BANK CHARGES", "bank charge"),
    # goods
    ("Bread", None), ("Portobello mushrooms", None), ("Tütensuppe", None),
    ("Lieferbar: Sofa Lido", None), ("JUMBO BAG RED", None), ("Nonesuch teapot", None),
    ("Feeder for birds", None), ("Chargeur USB", None),
])
def test_fee_words_in_several_languages_and_placeholders(name, word):
    assert fee_word(None, name) == word


def test_anchors_from_a_list_or_none_and_the_share_warning(tmp_path):
    base = SALES_MAPPING.replace("size_class: {large_price_quantile: 0.5}\n", "")
    summary = mapped(tmp_path, SALES, base + 'anchors: ["sofa-*"]\n')
    sizes = {p["product_id"]: p["size_class"] for p in read(tmp_path / "raw", "products")}
    assert sizes == {"SOFA-1": "LARGE", "CUSH-1": "SMALL", "LAMP-7": "SMALL", "MEAT": "SMALL"}
    assert summary.metadata["anchors"]["rule"] == "list"
    assert summary.metadata["parameters"] == {"large_price_quantile": None,
                                              "large_price_threshold": None}

    def anchor_warnings():
        return [w for w in summary.warnings if "anchor" in w]

    assert anchor_warnings() == []
    summary = mapped(tmp_path, SALES, base + "anchors: []\n")  # no anchors, on purpose
    assert {p["size_class"] for p in read(tmp_path / "raw", "products")} == {"SMALL"}
    assert anchor_warnings() == []
    summary = mapped(tmp_path, SALES, base + "anchors: [nothing-matches]\n")
    assert anchor_warnings()[0].startswith("no product is an anchor (LARGE) among 4 ")

    # Quantile 0: every product sold at a positive price is an anchor, 3 of 4.
    summary = mapped(tmp_path, SALES, base + "size_class: {large_price_quantile: 0}\n")
    [warning] = anchor_warnings()
    assert warning.startswith("3 of 4 merchandise products (75%) are anchors (LARGE)")
    assert warning.endswith("or change `size_class: {large_price_quantile: q}`.")


def test_anchors_from_seed_categories_without_prices(tmp_path):
    data = "Bon,Zeit,Artikel,Gruppe\n1,2024-01-02 10:00,S1,SOFAS\n1,2024-01-02 10:00,L1,LAMPS\n" \
           "2,2024-01-02 11:00,L1,LAMPS\n3,2024-01-02 12:00,X,Sofas\n"
    mapping = ("columns: {receipt_id: Bon, sold_at: Zeit, product_id: Artikel, "
               "category: Gruppe}\n")
    summary = mapped(tmp_path, data, mapping)
    sizes = {p["product_id"]: p["size_class"] for p in read(tmp_path / "raw", "products")}
    # Categories are compared as written, as staging joins them to the seed.
    assert sizes == {"S1": "LARGE", "L1": "SMALL", "X": "SMALL"}
    assert summary.metadata["anchors"]["rule"] == "category"
    assert "SOFAS" in summary.metadata["anchors"]["described"]
    assert summary.warnings == []

    src = tmp_path / "sales.csv"
    summary = import_mapped(src, tmp_path / "mapping.yml", tmp_path / "raw2",
                            project_dir=tmp_path)  # no seeds/ there
    assert summary.metadata["anchors"]["rule"] == "none"
    assert any("seeds/category_attributes.csv not found" in n for n in summary.notes)
    assert summary.warnings[0].startswith("no product is an anchor")


def test_trimmed_ids_and_names_are_counted(tmp_path):
    data = ("Invoice,Date,SKU,Qty,Price,Description\n"
            "R1,2024-01-02 10:00,A ,1,2,cream cheese \n"
            "R1,2024-01-02 10:00,A,1,2,cream cheese\n"
            "R2,2024-01-02 10:00, B,1,3,bagel\n")
    summary = mapped(tmp_path, data, SHOP_MAPPING.replace("non_merchandise: [M, \"*deliv*\"]",
                                                          "anchors: [b]"))
    assert {p["product_id"]: p["product_name"] for p in read(tmp_path / "raw", "products")} == {
        "A": "cream cheese", "B": "bagel"}
    assert summary.metadata["trimmed"] == [
        {"target": "product_id", "column": "SKU", "values": 2, "merged": 1},
        {"target": "product_name", "column": "Description", "values": 1, "merged": 0},
    ]
    assert summary.warnings == [
        "trimmed leading and trailing spaces: 2 product_id values (column 'SKU'), of which 1 "
        "then equal another product_id; 1 product_name value (column 'Description'). "
        "Identifiers and names are compared trimmed (\"cream cheese \" is \"cream cheese\")."
    ]


def test_line_total_parse_errors_name_column_count_and_rows(tmp_path):
    data = TA_FENG_LIKE.replace('"46"\r\n', '"46 NT$"\r\n', 1)
    with pytest.raises(DataImportError) as err:
        mapped(tmp_path, data, TA_FENG_MAPPING)
    assert ("column 'SALES_PRICE' (line_total): 1 value cannot be parsed as a number, "
            "e.g. '46 NT$' (row 1)") in str(err.value)
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (BASE.replace("Price}", "Price, line_total: Total}"),
         r"give either unit_price or line_total, not both"),
        (BASE.replace("}", ", unit_cost: C, line_cost: LC}"),
         r"give either unit_cost or line_cost, not both"),
        ("columns: {sold_at: Date, product_id: SKU}\n",
         r"map receipt_id, or customer_id so that receipts can be derived"),
        (BASE + "receipts: {by: day}\n", r"receipts applies only when columns\.receipt_id"),
        (BASE.replace("receipt_id: Invoice", "customer_id: M") + "receipts: {by: week}\n",
         r"receipts\.by must be timestamp or day, got 'week'"),
        (BASE.replace("receipt_id: Invoice", "customer_id: M") + "receipts: day\n",
         r"receipts must be \{by: timestamp \| day\}"),
        (BASE.replace(", unit_price: Price", "") + "size_class: {large_price_quantile: 0.9}\n",
         r"large_price_quantile needs prices from a column"),
        (BASE + "anchors: [A]\nsize_class: {large_price_quantile: 0.9}\n",
         r"either `anchors:` or `size_class\.large_price_quantile`"),
        (BASE + "anchors: SOFA\n", r"anchors must be a list of product ids or patterns"),
        (BASE + "merchandise: [{id: A}]\n", r"merchandise must be a list of product ids"),
        (BASE + "non_merchandise: ['']\n", r"non_merchandise must be a list of product ids"),
    ],
)
def test_new_mapping_options_are_validated(tmp_path, mapping, message):
    with pytest.raises(DataImportError, match=message) as err:
        mapped(tmp_path, SALES, mapping)
    assert str(tmp_path / "mapping.yml") in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_cli_import_csv_prints_every_warning(tmp_path):
    from click.testing import CliRunner

    from xsell.cli import main

    src = write(tmp_path / "bakery.csv", BAKERY)
    mp = write(tmp_path / "mapping.yml", BAKERY_MAPPING)
    result = CliRunner().invoke(
        main, ["import", "csv", str(src), "--mapping", str(mp), "--out", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    printed = [line[len("warning: "):] for line in result.output.splitlines()
               if line.startswith("warning: ")]
    assert printed == meta_of(tmp_path / "raw")["warnings"] and len(printed) == 1


LOCAL = "Bon;When;SKU;Name;Price\n1;2024-01-02 10:00:00;S1;Sofa;{a}\n" \
        "1;2024-01-02 10:00:00;L1;{name};{b}\n"
LOCAL_MAPPING = ("columns: {receipt_id: Bon, sold_at: When, product_id: SKU, "
                 "product_name: Name, unit_price: Price}\n")


def test_a_windows_export_is_named_with_the_encoding_to_set(tmp_path):
    src = tmp_path / "sales.csv"
    src.write_bytes(LOCAL.format(a="899.00", b="19.90", name="Möbelknauf").encode("cp1252"))
    mp = write(tmp_path / "mapping.yml", LOCAL_MAPPING)
    with pytest.raises(DataImportError) as err:
        import_mapped(src, mp, tmp_path / "raw")
    assert str(err.value) == (
        f"{src}: is not utf-8 text (first bad byte on line 3). Give the file's encoding in "
        "the mapping, e.g. `csv: {encoding: latin-1}` for an export from Windows or Excel "
        "(latin-1, utf-8 and utf-16 are read).")
    write(mp, LOCAL_MAPPING + "csv: {encoding: latin-1}\n")
    import_mapped(src, mp, tmp_path / "raw")
    names = {p["product_name"] for p in read(tmp_path / "raw", "products")}
    assert names == {"Sofa", "Möbelknauf"}


@pytest.mark.parametrize(("a", "b", "hint"), [
    ("899,00", "19,90", '. The numbers use a decimal comma: set `csv: {decimal: ","}` in '
                        "the mapping"),
    ("1.899,00", "1.019,90", ". The numbers carry thousands separators (as in '1.899,00'): "
                             "export them without, e.g. 1569.99 or 1569,99"),
    ("n/a", "19.90", ""),
])
def test_local_number_formats_get_a_hint(tmp_path, a, b, hint):
    with pytest.raises(DataImportError) as err:
        mapped(tmp_path, LOCAL.format(a=a, b=b, name="Lamp"), LOCAL_MAPPING)
    assert str(err.value).endswith(hint + " (rows count data rows from 1)")
    assert "cannot be parsed as a number" in str(err.value)
    if not hint:  # text that is no number: no advice about number formats
        assert "decimal comma" not in str(err.value) and "separators" not in str(err.value)


def test_cli_paths_are_read_from_the_current_directory(tmp_path, monkeypatch):
    """`xsell import csv sales.csv --out raw` in a folder of one's own writes ./raw, not a
    raw folder inside the project; the printed next step names it absolutely."""
    from click.testing import CliRunner

    from xsell.cli import main

    write(tmp_path / "bakery.csv", BAKERY)
    write(tmp_path / "mapping.yml", BAKERY_MAPPING)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["import", "csv", "bakery.csv", "--mapping", "mapping.yml", "--out", "raw"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "raw" / "transactions.parquet").is_file()
    assert not (REPO_ROOT / "raw").exists()
    assert f"Next: xsell run --raw-dir {tmp_path / 'raw'}" in result.output


# --- the README's examples ---------------------------------------------------------------------


def readme_blocks(section: str) -> list[tuple[str, str]]:
    """(language, text) of the fenced blocks in one '### ' section of docs/your-data.md."""
    readme = (REPO_ROOT / "docs" / "your-data.md").read_text(encoding="utf-8")
    start = readme.index(f"### {section}\n")
    end = readme.find("\n## ", start)
    following = readme.find("\n### ", start + 1)
    end = min(e for e in (end, following) if e != -1)
    return re.findall(r"```(\w+)\n(.*?)```", readme[start:end], re.DOTALL)


def test_docs_worked_mapping_imports_as_described(tmp_path):
    blocks = dict(readme_blocks("A worked mapping")[:2])
    src = write(tmp_path / "sales_2024.csv", blocks["text"])
    summary = import_mapped(src, write(tmp_path / "mapping.yml", blocks["yaml"]),
                            tmp_path / "raw")
    assert tx_tuples(tmp_path / "raw") == [
        ("100234", 1, "Berlin", "000123", "S-1001", 1, 899.0, dt.datetime(2024, 1, 31, 10, 15)),
        ("100234", 2, "Berlin", "000123", "K-2040", 4, 19.9, dt.datetime(2024, 1, 31, 10, 15)),
        ("100234", 3, "Berlin", "000123", "VERSAND", 1, 49.0,
         dt.datetime(2024, 1, 31, 10, 15)),
        ("100235", 1, "Berlin", None, "K-2040", -1, 19.9, dt.datetime(2024, 1, 31, 10, 20)),
    ]
    products = {p["product_id"]: p for p in read(tmp_path / "raw", "products")}
    assert not products["VERSAND"]["is_merchandise"]
    assert summary.metadata["non_merchandise"]["candidates"] == []


def test_docs_ta_feng_mapping_is_the_shipped_file():
    import yaml

    [(_, shown)] = [b for b in readme_blocks("Ta-Feng grocery: no receipt numbers, dates only, "
                                             "line totals") if b[0] == "yaml"]
    shipped = REPO_ROOT / "examples" / "ta_feng.yml"
    assert yaml.safe_load(shown) == yaml.safe_load(shipped.read_text(encoding="utf-8"))


def test_docs_bakery_mapping_imports_the_bakery_file(tmp_path):
    [(_, shown)] = [b for b in readme_blocks("A basket-only till export") if b[0] == "yaml"]
    summary = mapped(tmp_path, BAKERY, shown)
    assert {r["store_id"] for r in read(tmp_path / "raw", "transactions")} == {"EDINBURGH"}
    assert summary.metadata["prices"]["lines_without_unit_price"] == 7
    assert [w.split(":")[0] for w in summary.warnings] == [
        "no product is an anchor (LARGE) among 6 merchandise products"]
