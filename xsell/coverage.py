"""Which analyses ran on a build, and why the others did not.

The rules live in dbt (macro ``analysis_rules``): ``intermediate.int_analyses_assessed``
says per analysis whether the data can support it, and ``marts.fct_analysis_coverage``
publishes the outcome with row counts. This module is the Python side:

- the dbt Python models ask :func:`applicable` / :func:`applicable_stores` before they
  fit anything, and read no rows when their analysis is not applicable (the model
  functions then return their empty, typed outputs);
- the quality gate, the reports and ``xsell run`` read the published table with
  :func:`read_coverage` and explain a skipped check, a missing chart or a missing
  analysis with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

__all__ = [
    "COVERAGE_TABLE",
    "Coverage",
    "CoverageRow",
    "applicable",
    "applicable_stores",
    "read_coverage",
]

COVERAGE_TABLE = "marts.fct_analysis_coverage"
STATUS_WORDS = {
    "ran": "ran",
    "no_result": "no result",
    "not_applicable": "not applicable",
    "not_built": "not built",
}


def _assessed_rows(assessed, analysis: str) -> list[tuple[str, bool]]:
    """(store_id, is_applicable) of an analysis in int_analyses_assessed (a DuckDB
    relation)."""
    if not analysis.replace("_", "").isalnum():  # a key from our own code, never input
        raise ValueError(f"not an analysis key: {analysis!r}")
    return [
        (str(store), bool(ok))
        for store, ok in assessed.filter(f"analysis = '{analysis}'")
        .project("store_id, is_applicable")
        .order("store_id")
        .fetchall()
    ]


def applicable(assessed, analysis: str) -> bool:
    """Whether the data can support `analysis` (over all stores)."""
    return any(ok for store, ok in _assessed_rows(assessed, analysis) if store == "ALL")


def applicable_stores(assessed, analysis: str) -> list[str]:
    """The stores for which the data can support `analysis` (e.g. revenue_forecast)."""
    return [store for store, ok in _assessed_rows(assessed, analysis) if ok and store != "ALL"]


@dataclass(frozen=True)
class CoverageRow:
    analysis: str
    store_id: str
    title: str
    area: str
    tables: tuple[str, ...]
    status: str
    row_count: int
    reason: str | None
    note: str | None

    @property
    def ran(self) -> bool:
        return self.status == "ran"

    def describe(self) -> str:
        scope = "" if self.store_id == "ALL" else f" [{self.store_id}]"
        words = STATUS_WORDS.get(self.status, self.status)
        if self.ran:
            text = f"{self.title}{scope}: ran, {self.row_count:,} rows"
            return text + (f" ({self.note})" if self.note else "")
        return f"{self.title}{scope}: {words}: {self.reason}"


@dataclass(frozen=True)
class Coverage:
    rows: tuple[CoverageRow, ...]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, analysis: str, store_id: str = "ALL") -> CoverageRow | None:
        for row in self.rows:
            if row.analysis == analysis and row.store_id == store_id:
                return row
        return None

    def table_reason(self, table: str) -> str | None:
        """Why `table` (schema.table) holds no finding: the reason of the analyses that
        fill it when none of them ran; None when one ran (or no analysis fills it)."""
        rows = [row for row in self.rows if table in row.tables]
        if not rows or any(row.ran for row in rows):
            return None
        reasons = []
        for row in rows:
            text = row.reason if len(rows) == 1 else f"{row.title}: {row.reason}"
            if row.reason and text not in reasons:
                reasons.append(text)
        return "; ".join(reasons) or None

    def table_reasons(self) -> dict[str, str]:
        """Every table of an analysis that did not run, with the reason."""
        tables = sorted({table for row in self.rows for table in row.tables})
        reasons = {table: self.table_reason(table) for table in tables}
        return {table: reason for table, reason in reasons.items() if reason}

    def summary(self) -> str:
        ran = sum(row.ran for row in self.rows)
        lines = [f"Analyses: {ran} of {len(self.rows)} ran on this data"]
        lines += [f"  {'+' if row.ran else '-'} {row.describe()}" for row in self.rows]
        return "\n".join(lines)


def read_coverage(con: duckdb.DuckDBPyConnection) -> Coverage | None:
    """The coverage table of a build or published file; None when it has none."""
    schema, table = COVERAGE_TABLE.split(".")
    present = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = ? and table_name = ? and table_catalog = current_database()",
        [schema, table],
    ).fetchone()[0]
    if not present:
        return None
    records = con.execute(
        f"select analysis, store_id, title, area, tables, status, row_count, reason, note "
        f"from {COVERAGE_TABLE} order by analysis_order, store_id"
    ).fetchall()
    return Coverage(tuple(
        CoverageRow(
            analysis=r[0], store_id=r[1], title=r[2], area=r[3],
            tables=tuple(t.strip() for t in (r[4] or "").split(",") if t.strip()),
            status=r[5], row_count=int(r[6] or 0), reason=r[7], note=r[8],
        )
        for r in records
    ))
