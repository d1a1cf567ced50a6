"""The answers `xsell serve` and `xsell audience` give, read from the published file.

A :class:`Warehouse` is one published file opened read-only: an in-memory DuckDB with the
file attached (DuckDB keeps one database per path in a process, so a plain connect after
a republish would hand back the old file; an attach in a fresh instance opens the new
one). It knows which build it holds (:mod:`xsell.serve.published`), which tables the
build has and which analyses ran (``marts.fct_analysis_coverage``).

Every answer is made of :data:`LOOKUPS`: the rows of one published table for one key (a
customer, a product, a segment), each defined once as SQL. A lookup runs as a query with
the key as its only bound parameter until :meth:`Warehouse.build_index` has read the
same SQL for every key into memory; from then on it is a dictionary look-up (a point
query on a column store scans a row group; the API answers in well under a millisecond
from memory). Nothing a client sends becomes SQL.

Only the schemas ``marts`` and ``ml`` are read (the published file may hold nothing
else). Product names and attributes come from ``marts.dim_products``; a file published
before it existed gets them from the marts that carry names (affinity, recommendations).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from xsell.coverage import Coverage, read_coverage
from xsell.serve.published import BuildInfo, FileChangedError, FileIdentity, build_info

__all__ = ["LOOKUPS", "Answers", "Lookup", "NotFound", "Warehouse"]

log = logging.getLogger("uvicorn.error")

CATALOG = "published"
PRODUCTS = "memory.main.products"  # per open file, see Warehouse._create_products
PRODUCT_COLUMNS = {  # of marts.dim_products, as the API gives them
    "product_id": "varchar",
    "product_name": "varchar",
    "category": "varchar",
    "size_class": "varchar",
    "is_anchor": "boolean",
    "is_addon": "boolean",
    "is_impulse": "boolean",
    "is_merchandise": "boolean",
    "median_unit_price": "double",
    "price_band": "integer",
}
# A lookup with more rows than this is not read into Python objects but copied into an
# indexed in-memory DuckDB table (e.g. the full rule set, hundreds of thousands of rules,
# when the rules_* vars keep everything): a point query then costs about a millisecond.
MAX_INDEX_ROWS = 1_000_000

# Which analyses (marts.fct_analysis_coverage) and tables each answer needs.
NEEDS = {
    "customer": ("customer_profiles", "marts.dim_customers"),
    "rfm": ("rfm", "marts.fct_customer_rfm"),
    "lifetime_value": ("customer_lifetime_value", "ml.ml_customer_lifetime_value"),
    "ml_segment": ("customer_segments", "ml.ml_customer_segments"),
    "restaurant_propensity": ("restaurant_propensity", "ml.ml_restaurant_propensity"),
    "recommendations": ("recommendations", "ml.ml_recommendations"),
    "rules": ("association_rules_product", "marts.fct_association_rules"),
    "category_rules": ("association_rules_category", "marts.fct_association_rules"),
    "complete_the_room": ("recommendations_by_anchor", "ml.ml_recommendations_by_anchor"),
    "similar": ("product_affinity", "marts.fct_product_affinity"),
    "segments": ("rfm", "marts.fct_revenue_at_risk"),
}


@dataclass(frozen=True)
class Lookup:
    """The rows of `table` for one key, in `order` (output column names).

    `key` is the key's expression; a lookup whose key is an element of a list column
    gives `key_test` (true when the bound key is in it) and `key` as `unnest(...)`. A lookup
    without a key (key None) is one list, e.g. all segments."""

    table: str
    columns: str
    order: str
    key: str | None = None
    key_test: str | None = None
    where: str | None = None
    source: str | None = None  # a subquery instead of the table
    size: str = "count(*)"  # how many rows every_sql gives, from the table alone

    def size_sql(self) -> str:
        where = f" where {self.where}" if self.where else ""
        return f"select {self.size} from {self._from()}{where}"

    def _from(self) -> str:
        return self.source or self.table

    def one_sql(self) -> str:
        tests = [part for part in (self.where, self._key_test()) if part]
        where = f" where {' and '.join(tests)}" if tests else ""
        return f"select * from (select {self.columns} from {self._from()}{where}) " \
               f"order by {self.order}"

    def every_sql(self) -> str:
        key = self.key or "null"
        where = f" where {self.where}" if self.where else ""
        return f"select * from (select {key} as lookup_key, {self.columns} " \
               f"from {self._from()}{where}) order by lookup_key, {self.order}"

    def _key_test(self) -> str | None:
        if self.key is None:
            return None
        return self.key_test or f"{self.key} = ?"


CUSTOMER_COLUMNS = (
    "customer_id, has_profile, has_purchase, household_size, distance_km, joined_at, "
    "first_purchase_date, last_purchase_date, purchase_receipts, revenue, avg_order_value, "
    "anchor_receipt_share, recency_score, frequency_score, monetary_score, rfm_cell, "
    "rfm_segment, probability_alive, expected_purchases, expected_spend, lifetime_value, "
    "ml_segment_id, ml_segment_name"
)
MEMBER_COLUMNS = (
    "customer_id, rfm_segment, rfm_cell, ml_segment_name, lifetime_value, "
    "expected_purchases, probability_alive, last_purchase_date"
)
RECOMMENDATION_COLUMNS = (
    "recommendation_rank as rank, product_id, product_name, category, score, reason, "
    "is_repeat_purchase, is_cold_start, as_of_date"
)
RULE_COLUMNS = (
    "antecedent, consequent, support, confidence, lift, rule_basket_count, "
    "antecedent_basket_count, n_baskets"
)
RULE_ORDER = "lift desc, confidence desc, consequent, antecedent"
ROOM_COLUMNS = (
    "anchor_family, recommendation_rank as rank, product_id, product_name, category, "
    "attach_rate, base_rate, lift, together_receipts, anchor_receipts"
)
AFFINITY_COLUMNS = (
    "relation, affinity_rank as rank, related_product_id as product_id, "
    "related_product_name as product_name, related_category as category, "
    "cosine_similarity, together_count, basket_count, related_basket_count, "
    "median_unit_price, related_median_unit_price"
)

LOOKUPS = {
    "customer": Lookup("marts.dim_customers", CUSTOMER_COLUMNS, "customer_id",
                       key="customer_id"),
    "rfm": Lookup(
        "marts.fct_customer_rfm",
        "recency_days, frequency, monetary, recency_score, frequency_score, monetary_score, "
        "rfm_cell, rfm_segment as segment, is_lapsing, as_of_date",
        "segment", key="customer_id",
    ),
    "lifetime_value": Lookup(
        "ml.ml_customer_lifetime_value",
        "probability_alive, expected_purchases, expected_spend, expected_discounted_value as "
        "lifetime_value, horizon_days, discount_rate_annual, as_of_date",
        "lifetime_value", key="customer_id",
    ),
    "ml_segment": Lookup("ml.ml_customer_segments",
                         "segment_id, segment_name, distance_to_centroid", "segment_id",
                         key="customer_id"),
    # the model's probability on the member's latest scored receipt
    "restaurant_propensity": Lookup(
        "ml.ml_restaurant_propensity",
        "restaurant_probability as probability, receipt_id, store_id, sold_date, split",
        "receipt_id", key="customer_id",
        source="(select * from ml.ml_restaurant_propensity where customer_id is not null "
               "qualify row_number() over (partition by customer_id order by sold_date desc, "
               "store_id desc, receipt_id desc) = 1)",
    ),
    "recommendations": Lookup("ml.ml_recommendations", RECOMMENDATION_COLUMNS, "rank",
                              key="customer_id"),
    # what the recommender gives a member without purchases (popularity): the list of the
    # first cold-start member in the table
    "cold_start": Lookup(
        "ml.ml_recommendations", RECOMMENDATION_COLUMNS, "rank",
        where="customer_id = (select min(customer_id) from ml.ml_recommendations "
              "where is_cold_start)",
    ),
    "product": Lookup(PRODUCTS, ", ".join(PRODUCT_COLUMNS), "product_id", key="product_id"),
    "rules": Lookup("marts.fct_association_rules", RULE_COLUMNS, RULE_ORDER,
                    key="unnest(antecedent)", key_test="list_contains(antecedent, ?)",
                    where="item_level = 'product'", size="sum(len(antecedent))"),
    "category_rules": Lookup("marts.fct_association_rules", RULE_COLUMNS, RULE_ORDER,
                             key="unnest(antecedent)", key_test="list_contains(antecedent, ?)",
                             where="item_level = 'category'", size="sum(len(antecedent))"),
    "room": Lookup("ml.ml_recommendations_by_anchor", ROOM_COLUMNS, "rank",
                   key="anchor_family"),
    "completes": Lookup("ml.ml_recommendations_by_anchor", ROOM_COLUMNS,
                        "lift desc, anchor_family", key="product_id"),
    "affinity": Lookup("marts.fct_product_affinity", AFFINITY_COLUMNS,
                       "relation, rank, product_id", key="product_id"),
    "rfm_members": Lookup("marts.dim_customers", MEMBER_COLUMNS,
                          "lifetime_value desc nulls last, customer_id", key="rfm_segment"),
    "ml_members": Lookup("marts.dim_customers", MEMBER_COLUMNS,
                         "lifetime_value desc nulls last, customer_id",
                         key="ml_segment_name"),
    "rfm_segments": Lookup(
        "marts.fct_revenue_at_risk",
        "rfm_segment as name, segment_priority as priority, is_lapsing, customers, "
        "customer_share, revenue, revenue_share, revenue_at_risk, expected_spend, "
        "expected_discounted_value",
        "priority nulls last, name",
    ),
    "ml_segments": Lookup(
        "ml.ml_customer_segments", "segment_name as name, segment_id, customers",
        "segment_id, name",
        source="(select segment_name, min(segment_id) as segment_id, count(*) as customers "
               "from ml.ml_customer_segments group by segment_name)",
    ),
}


class NotFound(LookupError):
    """No such customer, product or segment in the published build; the message says so
    (and why, when the analysis behind it did not run)."""

    def __init__(self, message: str, analysis: dict | None = None):
        super().__init__(message)
        self.analysis = analysis


class Warehouse:
    """One published file, open read-only, with one DuckDB cursor per thread and the
    lookups' in-memory index once built."""

    def __init__(self, path: Path, *, threads: int = 1):
        self.path = Path(path).resolve()
        before = FileIdentity.of(self.path)
        self._con = duckdb.connect(":memory:", config={"threads": threads})
        try:
            literal = str(self.path).replace("'", "''")
            self._con.execute(f"attach '{literal}' as {CATALOG} (read_only)")
            if FileIdentity.of(self.path) != before:
                raise FileChangedError(f"{self.path} was replaced while it was being opened")
            self._con.execute(f"use {CATALOG}")
            self.info: BuildInfo = build_info(self.path, before)
            self.tables = frozenset(
                f"{schema}.{table}"
                for schema, table in self._con.execute(
                    "select schema_name, table_name from duckdb_tables() "
                    "where database_name = ? and schema_name in ('marts', 'ml')",
                    [CATALOG],
                ).fetchall()
            ) | {PRODUCTS}
            self.coverage: Coverage | None = read_coverage(self._con)
            self.product_source = self._create_products()
        except BaseException:
            self._con.close()
            raise
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._index: dict[str, tuple[tuple[str, ...], dict]] = {}
        self._copies: dict[str, str] = {}  # lookup -> indexed in-memory table
        self.index_done = threading.Event()  # build_index ended, complete or not
        self._index_complete = False
        self.active = 0  # requests using this file (see xsell.serve.app.PublishedFile)
        self.retired = False

    @property
    def identity(self) -> FileIdentity:
        return self.info.identity

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (a DuckDB connection is not safe across threads)."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            cursor.execute(f"use {CATALOG}")
            with self._lock:
                self._cursors.append(cursor)
            self._local.cursor = cursor
        return cursor

    def close(self) -> None:
        with self._lock:
            cursors, self._cursors = self._cursors, []
        for cursor in cursors:
            cursor.close()
        self._con.close()

    def answers(self) -> Answers:
        return Answers(self)

    # ------------------------------------------------------------------ lookups

    def lookup(self, name: str, key: str | None = None, limit: int | None = None) -> list[dict]:
        """The rows of LOOKUPS[name] for key (the first `limit`), as fresh dicts; empty
        when its table is missing."""
        return self.page(name, key, 0, limit)[1]

    def page(self, name: str, key: str | None, offset: int, limit: int | None,
             *, count: bool = False) -> tuple[int | None, list[dict]]:
        """(how many rows key has when count, else None; the rows from offset on, at most
        limit of them)."""
        spec = LOOKUPS[name]
        if spec.table not in self.tables:
            return 0, []
        indexed = self._index.get(name)
        if indexed is not None:
            names, rows = indexed
            found = rows.get(key, ())
            stop = None if limit is None else offset + limit
            return len(found), [dict(zip(names, row, strict=True))
                                for row in found[offset:stop]]
        copy = self._copies.get(name)
        if copy is not None:
            sql = f"select * exclude (lookup_key) from {copy} where lookup_key = ?"
            params = [key]
        else:
            sql, params = spec.one_sql(), [] if spec.key is None else [key]
        cursor = self.cursor()
        total = None
        if count:
            total = cursor.execute(f"select count(*) from ({sql})", params).fetchone()[0]
        if copy is not None:
            sql += f" order by {spec.order}"
        if limit is not None or offset:
            sql += " limit ? offset ?"
            params = [*params, limit if limit is not None else 2**62, offset]
        result = cursor.execute(sql, params)
        names = [column[0] for column in result.description]
        return total, [dict(zip(names, map(plain, row), strict=True))
                       for row in result.fetchall()]

    def in_memory(self, names) -> bool:
        """Whether the lookups `names` are answered from memory (or need no table)."""
        return all(name in self._index or LOOKUPS[name].table not in self.tables
                   for name in names)

    @property
    def index_ready(self) -> bool:
        """Every lookup is read into memory (or too large to be, and stays a query)."""
        return self._index_complete

    def build_index(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Read every lookup for every key into memory (until stop() says to stop)."""
        cursor = self._con.cursor()
        cursor.execute(f"use {CATALOG}")
        texts: dict[str, str] = {}  # one object per distinct text (names repeat)

        def value(item):
            item = plain(item)
            return texts.setdefault(item, item) if isinstance(item, str) else item

        try:
            for name, spec in LOOKUPS.items():
                if stop():
                    return
                if spec.table not in self.tables:
                    continue
                count = cursor.execute(spec.size_sql()).fetchone()[0] or 0
                if count > MAX_INDEX_ROWS and spec.key is not None:  # (one list is small)
                    self._copy(cursor, name, spec)
                    log.info("xsell serve: %s has %s rows: an indexed copy answers it",
                             name, count)
                    continue
                result = cursor.execute(spec.every_sql())
                names = tuple(column[0] for column in result.description[1:])
                rows = {
                    key: tuple(tuple(map(value, row[1:])) for row in group)
                    for key, group in itertools.groupby(result.fetchall(), key=lambda r: r[0])
                }
                self._index[name] = (names, rows)
            self._index_complete = True
        finally:
            cursor.close()
            self.index_done.set()

    def _copy(self, cursor, name: str, spec: Lookup) -> None:
        table = f"memory.main.lookup_{name}"  # a name of LOOKUPS, never input
        cursor.execute(f"create table {table} as {spec.every_sql()}")
        cursor.execute(f"create index lookup_{name}_key on {table} (lookup_key)")
        self._copies[name] = table

    # ------------------------------------------------------------------ coverage

    def analysis(self, key: str) -> dict:
        """What the coverage table says about an analysis (over all stores)."""
        analysis, table = NEEDS[key]
        row = self.coverage.get(analysis) if self.coverage else None
        if table not in self.tables:
            return {"analysis": analysis, "status": "not_built",
                    "reason": f"the published build has no table {table}"}
        if row is None:
            return {"analysis": analysis, "status": "ran", "reason": None}
        return {"analysis": analysis, "status": row.status, "reason": row.reason}

    def unavailable(self, key: str) -> dict | None:
        """None when the analysis behind `key` ran; else its status and reason."""
        found = self.analysis(key)
        return None if found["status"] == "ran" else found

    # ------------------------------------------------------------------ products

    def _create_products(self) -> str:
        """The product lookup of this file, a view (or table) in the in-memory catalogue
        with the columns of PRODUCT_COLUMNS."""
        columns = ", ".join(PRODUCT_COLUMNS)
        if "marts.dim_products" in self.tables:
            self._con.execute(f"create view {PRODUCTS} as select {columns} "
                              f"from {CATALOG}.marts.dim_products")
            return "marts.dim_products"
        # A file published before marts.dim_products existed: the names the marts carry.
        parts = []
        if "marts.fct_product_affinity" in self.tables:
            parts += [
                "select product_id, product_name, category from marts.fct_product_affinity",
                "select related_product_id, related_product_name, related_category "
                "from marts.fct_product_affinity",
            ]
        for table in ("ml.ml_recommendations_by_anchor", "ml.ml_recommendations"):
            if table in self.tables:
                parts.append(f"select product_id, product_name, category from {table}")
        if not parts:
            parts = ["select null::varchar, null::varchar, null::varchar where false"]
        unknown = ", ".join(
            f"null::{kind} as {name}" for name, kind in PRODUCT_COLUMNS.items()
            if name not in ("product_id", "product_name", "category", "is_anchor")
        )
        self._con.execute(
            f"create table {PRODUCTS} as select {columns} from ("
            "select product_id, min(product_name) as product_name, min(category) as category, "
            f"coalesce(min(category) in ({self._anchor_families_sql()}), false) as is_anchor, "
            f"{unknown} from ({' union all '.join(parts)}) as named(product_id, product_name, "
            "category) where product_id is not null group by product_id)"
        )
        return "names in marts.fct_product_affinity and ml.ml_recommendations*"

    def _anchor_families_sql(self) -> str:
        sources = [
            f"select anchor_family from {table}"
            for table in ("marts.fct_attach_rates", "ml.ml_recommendations_by_anchor")
            if table in self.tables
        ]
        return " union ".join(sources) if sources else "select null::varchar where false"


class Answers:
    """The answers, from one warehouse's lookups. Every method returns plain dicts and
    lists (JSON-ready) or raises NotFound."""

    def __init__(self, warehouse: Warehouse):
        self.w = warehouse

    def _first(self, name: str, key: str) -> dict | None:
        rows = self.w.lookup(name, key)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ customers

    def _customer_row(self, customer_id: str) -> dict:
        missing = self.w.unavailable("customer")
        if missing:
            raise NotFound(f"No customer {customer_id!r}: customer profiles are not available "
                           f"in this build ({missing['reason']}).", missing)
        row = self._first("customer", customer_id)
        if row is None:
            raise NotFound(f"No customer {customer_id!r} in the published build.")
        return row

    def customer(self, customer_id: str) -> dict:
        row = self._customer_row(customer_id)
        answer = {
            "customer_id": row["customer_id"],
            "profile": pick(row, "has_profile", "household_size", "distance_km", "joined_at"),
            "purchases": pick(row, "has_purchase", "first_purchase_date", "last_purchase_date",
                              "purchase_receipts", "revenue", "avg_order_value",
                              "anchor_receipt_share"),
            "rfm": None,
            "lifetime_value": None,
            "ml_segment": None,
            "restaurant_propensity": None,
            "not_available": {},
        }
        for section in ("rfm", "lifetime_value", "ml_segment", "restaurant_propensity"):
            missing = self.w.unavailable(section)
            if missing:
                answer["not_available"][section] = missing
            else:
                answer[section] = self._first(section, customer_id)
        return answer

    def recommendations(self, customer_id: str, limit: int) -> dict:
        self._customer_row(customer_id)
        answer = {"customer_id": customer_id, "as_of_date": None, "is_cold_start": None,
                  "fallback": None, "not_available": None, "items": []}
        missing = self.w.unavailable("recommendations")
        if missing:
            answer["not_available"] = missing
            return answer
        items = self.w.lookup("recommendations", customer_id, limit)
        if not items:
            items = self.w.lookup("cold_start", None, limit)
            answer["fallback"] = "cold_start"
            if not items:
                answer["not_available"] = {
                    "analysis": "recommendations", "status": "no_result",
                    "reason": "the recommender made no list for this customer, and this "
                              "build has no member without purchases whose popularity list "
                              "could stand in",
                }
        if items:
            answer["as_of_date"] = items[0]["as_of_date"]
            answer["is_cold_start"] = items[0]["is_cold_start"] or bool(answer["fallback"])
        answer["items"] = [
            pick(item, "rank", "product_id", "product_name", "category", "score", "reason",
                 "is_repeat_purchase")
            for item in items
        ]
        return answer

    # ------------------------------------------------------------------ products

    def product(self, product_id: str) -> dict:
        row = self._first("product", product_id)
        if row is None:
            raise NotFound(f"No product {product_id!r} in the published build.")
        return row

    def bundles(self, product_id: str, limit: int) -> dict:
        product = self.product(product_id)
        answer = {"product": product, "rules": [], "category_rules": [],
                  "complete_the_room": [], "completes_rooms": [], "not_available": {}}
        if missing := self.w.unavailable("rules"):
            answer["not_available"]["rules"] = missing
        else:
            answer["rules"] = self._named_rules(self.w.lookup("rules", product_id, limit))
        if missing := self.w.unavailable("category_rules"):
            answer["not_available"]["category_rules"] = missing
        elif product["category"] is not None:
            answer["category_rules"] = [
                {**rule, "antecedent": [{"category": c} for c in rule["antecedent"]],
                 "consequent": {"category": rule["consequent"]}}
                for rule in self.w.lookup("category_rules", product["category"], limit)
            ]
        if missing := self.w.unavailable("complete_the_room"):
            answer["not_available"]["complete_the_room"] = missing
        else:
            if product["is_anchor"]:
                answer["complete_the_room"] = self.w.lookup("room", product["category"], limit)
            answer["completes_rooms"] = self.w.lookup("completes", product_id, limit)
        return answer

    def _named_rules(self, rules: list[dict]) -> list[dict]:
        names: dict[str, dict] = {}

        def named(product_id: str) -> dict:
            if product_id not in names:
                found = self._first("product", product_id) or {}
                names[product_id] = {"product_id": product_id,
                                     "product_name": found.get("product_name"),
                                     "category": found.get("category")}
            return dict(names[product_id])

        return [
            {**rule, "antecedent": [named(i) for i in rule["antecedent"]],
             "consequent": named(rule["consequent"])}
            for rule in rules
        ]

    def similar(self, product_id: str, limit: int) -> dict:
        product = self.product(product_id)
        answer = {"product": product, "similar": [], "upsell": [], "not_available": None}
        if missing := self.w.unavailable("similar"):
            answer["not_available"] = missing
            return answer
        for row in self.w.lookup("affinity", product_id):
            key = "upsell" if row.pop("relation") == "upsell" else "similar"
            if row["rank"] <= limit:
                answer[key].append(row)
        return answer

    # ------------------------------------------------------------------ segments

    def segments(self) -> dict:
        answer = {"rfm": [], "ml": [], "not_available": {}}
        if missing := self.w.unavailable("segments"):
            answer["not_available"]["rfm"] = missing
        else:
            answer["rfm"] = self.w.lookup("rfm_segments")
        if missing := self.w.unavailable("ml_segment"):
            answer["not_available"]["ml"] = missing
        else:
            answer["ml"] = self.w.lookup("ml_segments")
        return answer

    def segment_customers(self, name: str, kind: str | None, limit: int, offset: int) -> dict:
        found = None
        for candidate in [kind] if kind else ["rfm", "ml"]:
            source = "segments" if candidate == "rfm" else "ml_segment"
            if self.w.unavailable(source) or self.w.unavailable("customer"):
                continue
            total, page = self.w.page(f"{candidate}_members", name, offset, limit,
                                      count=True)
            listed = any(s["name"] == name for s in self.w.lookup(f"{candidate}_segments"))
            if total or listed:  # an RFM segment nobody falls in has 0 customers
                found = candidate, total, page
                break
        if found is None:
            raise NotFound(f"No segment {name!r} in the published build (GET /segments lists "
                           "them).")
        kind, total, page = found
        following = offset + len(page)
        return {
            "segment": name,
            "kind": kind,
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": following if following < total else None,
            "customers": page,
        }

    # ------------------------------------------------------------------ health

    def health(self) -> dict:
        rows = [
            {"analysis": row.analysis, "store_id": row.store_id, "title": row.title,
             "status": row.status, "row_count": row.row_count, "reason": row.reason}
            for row in (self.w.coverage or ())
        ]
        return {
            "status": "ok",
            **self.w.info.as_dict(),
            "products_from": self.w.product_source,
            "coverage": {
                "analyses": len(rows),
                "ran": sum(row["status"] == "ran" for row in rows),
                "rows": rows,
            },
        }


def pick(row: dict, *names: str) -> dict:
    return {name: row[name] for name in names}


def plain(value):
    """A DuckDB value as JSON has it: NaN and infinities become null, decimals floats,
    dates ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
