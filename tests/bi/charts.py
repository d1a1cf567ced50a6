"""The two charts the BI test builds in Superset, and the same figures read from the marts.

Each chart names the mart it reads (the Superset dataset), the columns it groups by and
its metrics, as Superset's chart data API takes them, and beside it the plain DuckDB SQL
that reads the same figures from the mart directly. To point a chart at another table
(a new mart, or the star schema's facts), change its table, columns and metrics here and
its `direct_sql` to match; the tests need nothing else.

- Revenue by store and month: `marts.fct_revenue_mix` (one row per store, day and
  revenue stream), the sum of `revenue` over every stream (goods, the restaurant, and
  returns, which are negative) by store and calendar month. The month comes from
  Superset's own time grain (P1M) on `sold_date`.
- Attach rate by anchor family: `marts.fct_attach_rates` (one row per anchor family and
  store), re-aggregated over the stores from its counts, sum(attached_receipts) /
  sum(anchor_receipts), as a BI tool must (an average of the stores' rates would be wrong).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    viz_type: str
    schema: str
    table: str
    columns: tuple  # Superset query columns: names, or adhoc columns (dicts)
    metrics: tuple  # adhoc SQL metrics, each with a label
    direct_sql: str  # the same figures from the mart: the key columns, then the metrics

    @property
    def keys(self) -> list[str]:
        return [c if isinstance(c, str) else c["label"] for c in self.columns]

    @property
    def labels(self) -> list[str]:
        return [m["label"] for m in self.metrics]

    def query_context(self, dataset_id: int) -> dict:
        """The query Superset runs for the chart (what the chart's Explore view saves)."""
        return {
            "datasource": {"id": dataset_id, "type": "table"},
            "force": True,  # never a cached answer: each request reads the file
            "result_format": "json",
            "result_type": "full",
            "queries": [
                {
                    "columns": list(self.columns),
                    "metrics": list(self.metrics),
                    "orderby": [],
                    "filters": [],
                    "row_limit": 100_000,
                }
            ],
        }

    def form_data(self) -> dict:
        """The chart's saved parameters (Explore's form data)."""
        time_axis = next((c for c in self.columns if isinstance(c, dict)), None)
        groupby = [c for c in self.columns if isinstance(c, str)]
        params = {"viz_type": self.viz_type, "metrics": list(self.metrics), "groupby": groupby}
        if time_axis is not None:
            params.update({"x_axis": time_axis["sqlExpression"],
                           "time_grain_sqla": time_axis["timeGrain"]})
        return params


def _metric(label: str, sql: str) -> dict:
    return {"expressionType": "SQL", "sqlExpression": sql, "label": label}


REVENUE_BY_STORE_MONTH = Chart(
    key="revenue_by_store_month",
    title="Revenue by store and month",
    viz_type="echarts_timeseries_bar",
    schema="marts",
    table="fct_revenue_mix",
    columns=(
        "store_id",
        {"expressionType": "SQL", "sqlExpression": "sold_date", "label": "month",
         "columnType": "BASE_AXIS", "timeGrain": "P1M"},
    ),
    metrics=(_metric("revenue", "SUM(revenue)"),),
    direct_sql="""
        select store_id, strftime(sold_date, '%Y-%m') as month, sum(revenue) as revenue
        from marts.fct_revenue_mix
        group by all
    """,
)

ATTACH_RATE_BY_FAMILY = Chart(
    key="attach_rate_by_family",
    title="Attach rate by anchor family",
    viz_type="table",
    schema="marts",
    table="fct_attach_rates",
    columns=("anchor_family",),
    metrics=(
        _metric("anchor_receipts", "SUM(anchor_receipts)"),
        _metric("attached_receipts", "SUM(attached_receipts)"),
        _metric("attach_rate",
                "CAST(SUM(attached_receipts) AS DOUBLE) / SUM(anchor_receipts)"),
    ),
    direct_sql="""
        select
            anchor_family,
            sum(anchor_receipts) as anchor_receipts,
            sum(attached_receipts) as attached_receipts,
            sum(attached_receipts) / sum(anchor_receipts) as attach_rate
        from marts.fct_attach_rates
        group by all
    """,
)

CHARTS = (REVENUE_BY_STORE_MONTH, ATTACH_RATE_BY_FAMILY)

# A figure is {key tuple: metric tuple}.
Figures = dict[tuple, tuple]


def read_direct(chart: Chart, db) -> Figures:
    """The chart's figures read from the mart in the DuckDB file with DuckDB itself."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(chart.direct_sql).fetchall()
    n = len(chart.keys)
    return {tuple(row[:n]): tuple(row[n:]) for row in rows}


def from_superset(chart: Chart, result: dict) -> Figures:
    """The chart's figures from one query result of Superset's chart data API."""
    time_keys = {c["label"] for c in chart.columns if isinstance(c, dict)}
    figures: Figures = {}
    for row in result["data"]:
        key = []
        for name in chart.keys:
            value = row[name]
            if name in time_keys:  # epoch milliseconds, at the start of the month
                value = dt.datetime.fromtimestamp(value / 1000, dt.UTC).strftime("%Y-%m")
            key.append(value)
        figures[tuple(key)] = tuple(row[label] for label in chart.labels)
    return figures


def same(a: Figures, b: Figures) -> bool:
    """Equal keys and equal figures: integers exactly, doubles to 1e-9 relative (sums
    of doubles come out in different orders; a cent of revenue is far above that)."""
    if a.keys() != b.keys():
        return False
    for key, values in a.items():
        for x, y in zip(values, b[key], strict=True):
            if isinstance(x, int) and isinstance(y, int):
                if x != y:
                    return False
            elif not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9):
                return False
    return True
