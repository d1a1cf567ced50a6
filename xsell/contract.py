"""The raw contract: the canonical tables every input is converted into.

The synthetic generator and the importers write these tables (Parquet, or CSV
for hand-made inputs) into one folder, by default ``data/raw/``, one file per
table named ``<table>.parquet`` or ``<table>.csv``. dbt reads them as sources
(``models/staging/_staging__sources.yml``); staging casts, checks and
quarantines. This module is the single Python definition of their columns.

Identifiers are text (loyalty numbers and SKUs often carry leading zeros).
Timestamps are naive local store time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class RawTable:
    name: str
    grain: str
    required: bool
    schema: pa.Schema

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def empty(self) -> pa.Table:
        return self.schema.empty_table()


TRANSACTIONS = RawTable(
    name="transactions",
    grain="one receipt line",
    required=True,
    schema=pa.schema(
        [
            ("receipt_id", pa.string()),
            ("line_number", pa.int32()),
            ("store_id", pa.string()),
            ("customer_id", pa.string()),  # null for anonymous shoppers
            ("product_id", pa.string()),
            ("quantity", pa.int32()),  # negative for a returned line
            ("unit_price", pa.float64()),
            ("sold_at", pa.timestamp("us")),
            ("campaign_id", pa.string()),  # null when no campaign applied
        ]
    ),
)

PRODUCTS = RawTable(
    name="products",
    grain="product",
    required=True,
    schema=pa.schema(
        [
            ("product_id", pa.string()),
            ("product_name", pa.string()),
            ("category", pa.string()),
            ("size_class", pa.string()),  # LARGE (anchor) or SMALL; null = derive
            ("unit_cost", pa.float64()),  # null when unknown
            ("is_merchandise", pa.bool_()),  # false for fees, postage, adjustments
        ]
    ),
)

CUSTOMERS = RawTable(
    name="customers",
    grain="loyalty member",
    required=False,
    schema=pa.schema(
        [
            ("customer_id", pa.string()),
            ("household_size", pa.int32()),
            ("distance_km", pa.float64()),
            ("joined_at", pa.timestamp("us")),
        ]
    ),
)

RESTAURANT_ORDERS = RawTable(
    name="restaurant_orders",
    grain="restaurant receipt",
    required=False,
    schema=pa.schema(
        [
            ("restaurant_order_id", pa.string()),
            ("store_id", pa.string()),
            ("customer_id", pa.string()),
            ("ordered_at", pa.timestamp("us")),
            ("amount", pa.float64()),
        ]
    ),
)

CAMPAIGNS = RawTable(
    name="campaigns",
    grain="campaign x target (category or product)",
    required=False,
    schema=pa.schema(
        [
            ("campaign_id", pa.string()),
            ("campaign_name", pa.string()),
            ("starts_at", pa.timestamp("us")),
            ("ends_at", pa.timestamp("us")),
            ("target_category", pa.string()),
            ("target_product_id", pa.string()),
            ("discount_pct", pa.float64()),  # percent, 0 < discount_pct < 100
        ]
    ),
)

RAW_TABLES: dict[str, RawTable] = {
    t.name: t for t in (TRANSACTIONS, PRODUCTS, CUSTOMERS, RESTAURANT_ORDERS, CAMPAIGNS)
}

SIZE_CLASSES = ("LARGE", "SMALL")
