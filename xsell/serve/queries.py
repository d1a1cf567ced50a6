"""The answers `xsell serve` and `xsell audience` give, read from the published file.

A :class:`Warehouse` is one published file opened read-only: an in-memory DuckDB with the
file attached (DuckDB keeps one database per path in a process, so a plain connect after
a republish would hand back the old file; an attach in a fresh instance opens the new
one). It knows which build it holds (:mod:`xsell.serve.published`), which tables the
build has and which analyses ran (``marts.fct_analysis_coverage``). :class:`Answers`
holds every query: all of them are constant SQL text with bound parameters, so nothing a
client sends becomes SQL.

Only the schemas ``marts`` and ``ml`` are read (the published file may hold nothing
else). Product names and attributes come from ``marts.dim_products``; a build without
it gets them from the marts that carry names (affinity and recommendations).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from decimal import Decimal
from pathlib import Path

import duckdb

from xsell.coverage import Coverage, read_coverage
from xsell.serve.published import BuildInfo, FileChangedError, FileIdentity, build_info

__all__ = ["Answers", "NotFound", "Warehouse"]

CATALOG = "published"
PRODUCTS = "memory.main.products"  # per open file, see Warehouse._create_products

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


class NotFound(LookupError):
    """No such customer, product or segment in the published build; the message says so
    (and why, when the analysis behind it did not run)."""

    def __init__(self, message: str, analysis: dict | None = None):
        super().__init__(message)
        self.analysis = analysis


class Warehouse:
    """One published file, open read-only, with one DuckDB cursor per thread."""

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
            )
            self.coverage: Coverage | None = read_coverage(self._con)
            self.product_source = self._create_products()
        except BaseException:
            self._con.close()
            raise
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
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
        return Answers(self, self.cursor())

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
        """The product lookup of this file, as a view (or table) in the in-memory
        catalogue: product_id, product_name, category, size_class, is_anchor."""
        anchors = self._anchor_families_sql()
        if "marts.dim_products" in self.tables:
            self._con.execute(
                f"create view {PRODUCTS} as select product_id, product_name, category, "
                "size_class, coalesce(is_anchor, false) as is_anchor "
                f"from {CATALOG}.marts.dim_products"
            )
            return "marts.dim_products"
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
        union = " union all ".join(parts)
        self._con.execute(
            f"create table {PRODUCTS} as "
            "select product_id, min(product_name) as product_name, min(category) as category, "
            "null::varchar as size_class, "
            f"coalesce(min(category) in ({anchors}), false) as is_anchor "
            f"from ({union}) as named(product_id, product_name, category) "
            "where product_id is not null group by product_id"
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
    """The queries, on one warehouse through one cursor. Every method returns plain
    dicts and lists (JSON-ready) or raises NotFound."""

    def __init__(self, warehouse: Warehouse, cursor: duckdb.DuckDBPyConnection):
        self.w = warehouse
        self.cur = cursor

    def _rows(self, sql: str, params: list | None = None) -> list[dict]:
        result = self.cur.execute(sql, params or [])
        names = [column[0] for column in result.description]
        return [dict(zip(names, map(plain, row), strict=True)) for row in result.fetchall()]

    def _one(self, sql: str, params: list) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ customers

    def customer(self, customer_id: str) -> dict:
        missing = self.w.unavailable("customer")
        if missing:
            raise NotFound(f"No customer {customer_id!r}: customer profiles are not available "
                           f"in this build ({missing['reason']}).", missing)
        row = self._one(
            "select customer_id, has_profile, has_purchase, household_size, distance_km, "
            "joined_at, first_purchase_date, last_purchase_date, purchase_receipts, revenue, "
            "avg_order_value, anchor_receipt_share, recency_score, frequency_score, "
            "monetary_score, rfm_cell, rfm_segment, probability_alive, expected_purchases, "
            "expected_spend, lifetime_value, ml_segment_id, ml_segment_name "
            "from marts.dim_customers where customer_id = ?",
            [customer_id],
        )
        if row is None:
            raise NotFound(f"No customer {customer_id!r} in the published build.")
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
        sections = {
            "rfm": (
                "select recency_days, frequency, monetary, recency_score, frequency_score, "
                "monetary_score, rfm_cell, rfm_segment as segment, is_lapsing, as_of_date "
                "from marts.fct_customer_rfm where customer_id = ?"
            ),
            "lifetime_value": (
                "select probability_alive, expected_purchases, expected_spend, "
                "expected_discounted_value as lifetime_value, horizon_days, "
                "discount_rate_annual, as_of_date "
                "from ml.ml_customer_lifetime_value where customer_id = ?"
            ),
            "ml_segment": (
                "select segment_id, segment_name, distance_to_centroid "
                "from ml.ml_customer_segments where customer_id = ?"
            ),
            # the model's probability on the member's latest scored receipt
            "restaurant_propensity": (
                "select restaurant_probability as probability, receipt_id, store_id, "
                "sold_date, split from ml.ml_restaurant_propensity where customer_id = ? "
                "order by sold_date desc, store_id desc, receipt_id desc limit 1"
            ),
        }
        for section, sql in sections.items():
            missing = self.w.unavailable(section)
            if missing:
                answer["not_available"][section] = missing
            else:
                answer[section] = self._one(sql, [customer_id])
        return answer

    def recommendations(self, customer_id: str, limit: int) -> dict:
        self._require_customer(customer_id)
        answer = {"customer_id": customer_id, "as_of_date": None, "is_cold_start": None,
                  "fallback": None, "not_available": None, "items": []}
        missing = self.w.unavailable("recommendations")
        if missing:
            answer["not_available"] = missing
            return answer
        items = self._rows(
            "select recommendation_rank as rank, product_id, product_name, category, score, "
            "reason, is_repeat_purchase, is_cold_start, as_of_date "
            "from ml.ml_recommendations where customer_id = ? "
            "order by recommendation_rank limit ?",
            [customer_id, limit],
        )
        if not items:
            items = self._cold_start_list(limit)
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
            answer["is_cold_start"] = items[0]["is_cold_start"]
        answer["items"] = [
            pick(item, "rank", "product_id", "product_name", "category", "score", "reason",
                 "is_repeat_purchase")
            for item in items
        ]
        return answer

    def _cold_start_list(self, limit: int) -> list[dict]:
        """What the recommender gives a member without purchases (popularity): the list
        of the first cold-start member in the table, for a known customer it has no list
        for (README, "Recommendations")."""
        return self._rows(
            "select recommendation_rank as rank, product_id, product_name, category, score, "
            "reason, is_repeat_purchase, true as is_cold_start, as_of_date "
            "from ml.ml_recommendations where customer_id = ("
            "  select min(customer_id) from ml.ml_recommendations where is_cold_start"
            ") order by recommendation_rank limit ?",
            [limit],
        )

    def _require_customer(self, customer_id: str) -> None:
        missing = self.w.unavailable("customer")
        if missing:
            raise NotFound(f"No customer {customer_id!r}: customer profiles are not available "
                           f"in this build ({missing['reason']}).", missing)
        found = self.cur.execute(
            "select count(*) from marts.dim_customers where customer_id = ?", [customer_id]
        ).fetchone()[0]
        if not found:
            raise NotFound(f"No customer {customer_id!r} in the published build.")

    # ------------------------------------------------------------------ products

    def product(self, product_id: str) -> dict:
        row = self._one(
            f"select product_id, product_name, category, size_class, is_anchor "
            f"from {PRODUCTS} where product_id = ?",
            [product_id],
        )
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
            rules = self._rows(
                "select antecedent, consequent, support, confidence, lift, rule_basket_count, "
                "antecedent_basket_count, n_baskets from marts.fct_association_rules "
                "where item_level = 'product' and list_contains(antecedent, ?) "
                "order by lift desc, confidence desc, consequent, antecedent limit ?",
                [product_id, limit],
            )
            answer["rules"] = self._named_rules(rules)
        if missing := self.w.unavailable("category_rules"):
            answer["not_available"]["category_rules"] = missing
        elif product["category"] is not None:
            answer["category_rules"] = [
                {**rule, "antecedent": [{"category": c} for c in rule["antecedent"]],
                 "consequent": {"category": rule["consequent"]}}
                for rule in self._rows(
                    "select antecedent, consequent, support, confidence, lift, "
                    "rule_basket_count, antecedent_basket_count, n_baskets "
                    "from marts.fct_association_rules "
                    "where item_level = 'category' and list_contains(antecedent, ?) "
                    "order by lift desc, confidence desc, consequent, antecedent limit ?",
                    [product["category"], limit],
                )
            ]
        if missing := self.w.unavailable("complete_the_room"):
            answer["not_available"]["complete_the_room"] = missing
        else:
            columns = (
                "anchor_family, recommendation_rank as rank, product_id, product_name, "
                "category, attach_rate, base_rate, lift, together_receipts, anchor_receipts"
            )
            if product["is_anchor"]:
                answer["complete_the_room"] = self._rows(
                    f"select {columns} from ml.ml_recommendations_by_anchor "
                    "where anchor_family = ? order by recommendation_rank limit ?",
                    [product["category"], limit],
                )
            answer["completes_rooms"] = self._rows(
                f"select {columns} from ml.ml_recommendations_by_anchor "
                "where product_id = ? order by lift desc, anchor_family limit ?",
                [product_id, limit],
            )
        return answer

    def _named_rules(self, rules: list[dict]) -> list[dict]:
        ids = sorted({i for rule in rules for i in [*rule["antecedent"], rule["consequent"]]})
        names = {
            row["product_id"]: row
            for row in self._rows(
                f"select product_id, product_name, category from {PRODUCTS} "
                "where list_contains(?, product_id)",
                [ids],
            )
        } if ids else {}

        def named(product_id: str) -> dict:
            found = names.get(product_id, {})
            return {"product_id": product_id, "product_name": found.get("product_name"),
                    "category": found.get("category")}

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
        rows = self._rows(
            "select relation, affinity_rank as rank, related_product_id as product_id, "
            "related_product_name as product_name, related_category as category, "
            "cosine_similarity, together_count, basket_count, related_basket_count, "
            "median_unit_price, related_median_unit_price "
            "from marts.fct_product_affinity where product_id = ? and affinity_rank <= ? "
            "order by relation, affinity_rank, related_product_id",
            [product_id, limit],
        )
        for row in rows:
            relation = row.pop("relation")
            key = "upsell" if relation == "upsell" else "similar"
            answer[key].append(row)
        return answer

    # ------------------------------------------------------------------ segments

    def segments(self) -> dict:
        answer = {"rfm": [], "ml": [], "not_available": {}}
        if missing := self.w.unavailable("segments"):
            answer["not_available"]["rfm"] = missing
        else:
            answer["rfm"] = self._rows(
                "select rfm_segment as name, segment_priority as priority, is_lapsing, "
                "customers, customer_share, revenue, revenue_share, revenue_at_risk, "
                "expected_spend, expected_discounted_value "
                "from marts.fct_revenue_at_risk order by segment_priority nulls last, "
                "rfm_segment"
            )
        if missing := self.w.unavailable("ml_segment"):
            answer["not_available"]["ml"] = missing
        else:
            answer["ml"] = self._rows(
                "select segment_name as name, segment_id, count(*) as customers "
                "from ml.ml_customer_segments group by all order by segment_id, segment_name"
            )
        return answer

    def segment_customers(self, name: str, kind: str | None, limit: int, offset: int) -> dict:
        kinds = [kind] if kind else ["rfm", "ml"]
        column = None
        for candidate in kinds:
            source = "segments" if candidate == "rfm" else "ml_segment"
            if self.w.unavailable(source) or "marts.dim_customers" not in self.w.tables:
                continue
            found = self.cur.execute(
                "select count(*) from marts.dim_customers where "
                + ("rfm_segment" if candidate == "rfm" else "ml_segment_name") + " = ?",
                [name],
            ).fetchone()[0]
            known = found or (candidate == "rfm" and self._rfm_segment_listed(name))
            if known:
                column, kind, total = (
                    "rfm_segment" if candidate == "rfm" else "ml_segment_name", candidate, found
                )
                break
        if column is None:
            raise NotFound(f"No segment {name!r} in the published build (GET /segments lists "
                           "them).")
        customers = self._rows(
            "select customer_id, rfm_segment, rfm_cell, ml_segment_name, lifetime_value, "
            "expected_purchases, probability_alive, last_purchase_date "
            f"from marts.dim_customers where {column} = ? "
            "order by lifetime_value desc nulls last, customer_id limit ? offset ?",
            [name, limit, offset],
        )
        following = offset + len(customers)
        return {
            "segment": name,
            "kind": kind,
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": following if following < total else None,
            "customers": customers,
        }

    def _rfm_segment_listed(self, name: str) -> bool:
        """A segment of the RFM map that no customer falls in (0 customers, not 404)."""
        return bool(self.cur.execute(
            "select count(*) from marts.fct_revenue_at_risk where rfm_segment = ?", [name]
        ).fetchone()[0])

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
