"""Derive the products table from transaction lines.

Input: DuckDB table ``tx`` with one row per transaction line and the columns
``product_id``, ``unit_price``, ``src_row`` and the per-line product attributes
``line_product_name``, ``line_category``, ``line_size_class``, ``line_unit_cost``
(any may be all null). Output: one row per distinct non-null ``product_id``.

- product_name: the most frequent trimmed non-null name on the product's lines;
  ties go to the smallest string in byte order (so an upper-case catalogue name
  beats a lower-case stock note such as "damaged" seen as often).
- category: the most frequent given category, else what ``classify`` returns
  (keywords, or NON_MERCHANDISE), else UNCATEGORIZED.
- size_class: the most frequent given LARGE/SMALL, else derived: LARGE when the
  product's median positive unit price >= the ``large_price_quantile`` quantile
  (linear interpolation) of the median prices of merchandise products, else
  SMALL. Products that are not merchandise, or that never sold at a positive
  price, are SMALL: they cannot be anchors.
- unit_cost: the median given unit cost, else null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from xsell.importers.categories import UNCATEGORIZED

# (product_id, product_name) -> (is_merchandise, category or None)
Classifier = Callable[[str, str | None], tuple[bool, str | None]]


@dataclass(frozen=True)
class ProductsResult:
    table: pa.Table
    large_price_threshold: float | None
    n_large: int
    categories: dict[str, dict[str, int]]  # category -> {"products": n, "lines": n}


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
    con: duckdb.DuckDBPyConnection, *, classify: Classifier, large_price_quantile: float
) -> ProductsResult:
    con.execute(f"""
        create or replace table product_stats as
        with lines as (
            select
                product_id,
                count(*) as n_lines,
                median(unit_price) filter (where unit_price > 0) as median_price,
                median(line_unit_cost) as unit_cost
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
            }
        ),
    )
    threshold = con.execute(
        f"""
        select quantile_cont(median_price, {float(large_price_quantile)!r})
        from product_stats join product_classes using (product_id)
        where is_merchandise and median_price is not null
        """
    ).fetchall()[0][0]
    threshold_sql = "null" if threshold is None else repr(float(threshold))
    table = con.sql(f"""
        select
            product_id,
            product_name,
            coalesce(given_category, keyword_category, '{UNCATEGORIZED}') as category,
            coalesce(
                given_size_class,
                case
                    when is_merchandise and median_price >= {threshold_sql} then 'LARGE'
                    else 'SMALL'
                end
            ) as size_class,
            unit_cost,
            is_merchandise
        from product_stats
        join product_classes using (product_id)
        order by product_id
    """).to_arrow_table()
    con.unregister("product_classes")

    lines_by_product = dict(
        con.execute("select product_id, n_lines from product_stats").fetchall()
    )
    products: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for pid, category in zip(
        table.column("product_id").to_pylist(), table.column("category").to_pylist(), strict=True
    ):
        products[category] += 1
        lines[category] += lines_by_product[pid]
    categories = {
        c: {"products": products[c], "lines": lines[c]}
        for c in sorted(products, key=lambda c: (-lines[c], c))
    }
    n_large = table.column("size_class").to_pylist().count("LARGE")
    return ProductsResult(
        table=table,
        large_price_threshold=None if threshold is None else float(threshold),
        n_large=n_large,
        categories=categories,
    )
