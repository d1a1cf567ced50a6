"""Derive the products table from transaction lines.

Input: DuckDB table ``tx`` with one row per transaction line and the columns
``product_id``, ``quantity``, ``unit_price``, ``src_row`` and the per-line product
attributes ``line_product_name``, ``line_category``, ``line_size_class``,
``line_unit_cost`` and ``line_cost`` (any may be all null). Output: one row per
distinct non-null ``product_id``.

- product_name: the most frequent trimmed non-null name on the product's lines;
  ties go to the smallest string in byte order (so an upper-case catalogue name
  beats a lower-case stock note such as "damaged" seen as often).
- category: the most frequent given category, else what ``classify`` returns
  (keywords, or NON_MERCHANDISE), else UNCATEGORIZED.
- size_class: the most frequent given LARGE/SMALL, else the ``SizeRule``:

  - ``price``: LARGE when the product's median positive unit price >= the
    ``large_price_quantile`` quantile (linear interpolation) of the median prices
    of merchandise products. Only for prices read from the file;
  - ``list``: LARGE when the product matches the mapping's ``anchors`` list;
  - ``category``: LARGE when the product's category is a LARGE category of
    ``seeds/category_attributes.csv`` (what staging would do with a null size);
  - ``none``: SMALL.

  Products that are not merchandise, or (``price``) never sold at a positive
  price, are SMALL: they cannot be anchors.
- unit_cost: the median given unit cost; else, from line costs, the product's
  total line cost over its total quantity on lines with a positive quantity (so
  quantity x unit_cost adds up to the file's line costs); else null.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from xsell.importers._base import literal
from xsell.importers.categories import UNCATEGORIZED

# (product_id, product_name) -> (is_merchandise, category or None, is_listed_anchor)
Classifier = Callable[[str, str | None], tuple[bool, str | None, bool]]

SEED_FILE = Path("seeds") / "category_attributes.csv"


@dataclass(frozen=True)
class SizeRule:
    """How a product without a given size_class gets one (see the module docstring)."""

    kind: str  # price | list | category | none
    large_price_quantile: float | None = None
    large_categories: tuple[str, ...] = ()

    def describe(self) -> str:
        return {
            "price": f"median positive unit price at or above the {self.large_price_quantile} "
                     "quantile of merchandise products",
            "list": "the mapping's `anchors` list",
            "category": "LARGE categories of seeds/category_attributes.csv ("
                        + ", ".join(self.large_categories) + ")",
            "none": "none (every product without a given size_class is SMALL)",
        }[self.kind]


@dataclass(frozen=True)
class ProductsResult:
    table: pa.Table
    large_price_threshold: float | None
    n_large: int  # merchandise products that are LARGE (the anchors)
    n_merchandise: int
    categories: dict[str, dict[str, int]]  # category -> {"products": n, "lines": n}
    lines_by_product: dict[str, int]
    size_sources: dict[str, int]  # "given" / the rule's kind -> products


def seed_large_categories(project_dir: Path | None) -> tuple[str, ...] | None:
    """LARGE categories of the project's category_attributes seed; None when not found."""
    if project_dir is None:
        from xsell.project import find_project_dir

        try:
            project_dir = find_project_dir()
        except FileNotFoundError:
            return None
    path = Path(project_dir) / SEED_FILE
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        return tuple(
            sorted(
                row["category"] for row in csv.DictReader(handle)
                if (row.get("size_class") or "").upper() == "LARGE"
            )
        )


def _modal(column: str) -> str:
    return f"""
        select product_id, first(v order by n desc, v) as v
        from (
            select product_id, {column} as v, count(*) as n
            from tx
            where product_id is not null and {column} is not null
            group by all
        )
        group by product_id"""


def derive_products(
    con: duckdb.DuckDBPyConnection, *, classify: Classifier, size_rule: SizeRule
) -> ProductsResult:
    con.execute(f"""
        create or replace table product_stats as
        with lines as (
            select
                product_id,
                count(*) as n_lines,
                median(unit_price) filter (where unit_price > 0) as median_price,
                coalesce(
                    median(line_unit_cost),
                    sum(line_cost) filter (where quantity > 0 and line_cost is not null)
                    / nullif(sum(quantity) filter (where quantity > 0
                                                   and line_cost is not null), 0)
                ) as unit_cost
            from tx
            where product_id is not null
            group by product_id
        ),
        names as ({_modal("line_product_name")}),
        given_categories as ({_modal("line_category")}),
        given_sizes as ({_modal("line_size_class")})
        select
            lines.*,
            names.v as product_name,
            given_categories.v as given_category,
            given_sizes.v as given_size_class
        from lines
        left join names using (product_id)
        left join given_categories using (product_id)
        left join given_sizes using (product_id)
        order by product_id
    """)
    rows = con.execute("select product_id, product_name from product_stats").fetchall()
    ids = [pid for pid, _ in rows]
    classified = [classify(pid, name) for pid, name in rows]
    con.register(
        "product_classes",
        pa.table(
            {
                "product_id": pa.array(ids, pa.string()),
                "is_merchandise": pa.array([c[0] for c in classified], pa.bool_()),
                "keyword_category": pa.array([c[1] for c in classified], pa.string()),
                "is_listed_anchor": pa.array([c[2] for c in classified], pa.bool_()),
            }
        ),
    )
    threshold = None
    if size_rule.kind == "price":
        threshold = con.execute(
            f"""
            select quantile_cont(median_price, {float(size_rule.large_price_quantile)!r})
            from product_stats join product_classes using (product_id)
            where is_merchandise and median_price is not null
            """
        ).fetchall()[0][0]
    category = f"coalesce(given_category, keyword_category, '{UNCATEGORIZED}')"
    rule = {
        "price": "false" if threshold is None else f"median_price >= {float(threshold)!r}",
        "list": "is_listed_anchor",
        "category": (
            f"{category} in ({', '.join(literal(c) for c in size_rule.large_categories)})"
            if size_rule.large_categories else "false"
        ),
        "none": "false",
    }[size_rule.kind]
    table = con.sql(f"""
        select
            product_id,
            product_name,
            {category} as category,
            coalesce(
                given_size_class,
                case when is_merchandise and ({rule}) then 'LARGE' else 'SMALL' end
            ) as size_class,
            unit_cost,
            is_merchandise
        from product_stats
        join product_classes using (product_id)
        order by product_id
    """).to_arrow_table()
    n_given = con.execute(
        "select count(*) from product_stats where given_size_class is not null"
    ).fetchall()[0][0]
    con.unregister("product_classes")

    lines_by_product = dict(
        con.execute("select product_id, n_lines from product_stats").fetchall()
    )
    products: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for pid, cat in zip(
        table.column("product_id").to_pylist(), table.column("category").to_pylist(), strict=True
    ):
        products[cat] += 1
        lines[cat] += lines_by_product[pid]
    categories = {
        c: {"products": products[c], "lines": lines[c]}
        for c in sorted(products, key=lambda c: (-lines[c], c))
    }
    merch = table.column("is_merchandise").to_pylist()
    sizes = table.column("size_class").to_pylist()
    n_large = sum(1 for m, s in zip(merch, sizes, strict=True) if m and s == "LARGE")
    return ProductsResult(
        table=table,
        large_price_threshold=None if threshold is None else float(threshold),
        n_large=n_large,
        n_merchandise=sum(1 for m in merch if m),
        categories=categories,
        lines_by_product=lines_by_product,
        size_sources={"given": n_given, size_rule.kind: table.num_rows - n_given},
    )
