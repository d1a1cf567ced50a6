"""What `validate` returns: every failed expectation, said so that a person can act on it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Failure:
    """One failed expectation (or a table the build should hold and does not)."""

    suite: str
    table: str  # schema.table, or the check frame's name for checks.reconciliation
    expectation: str  # GE expectation type, e.g. expect_column_values_to_be_between
    column: str | None  # the column(s) it tests; None for table-level expectations
    arguments: str = ""  # its evaluated arguments, e.g. "min_value=0.0, max_value=1.0"
    unexpected_count: int | None = None
    element_count: int | None = None
    examples: tuple[str, ...] = ()  # bad values, with the key of their row
    observed: str | None = None  # observed value of an aggregate expectation
    error: str | None = None  # when the expectation could not be evaluated
    severity: str = "critical"
    description: str | None = None  # the rule in words, where the suite gives one
    check: str | None = None  # the cross-table check, for suite checks.reconciliation

    def __str__(self) -> str:
        if self.check:
            return self._check_text()
        where = f"{self.table}.{self.column}" if self.column else self.table
        head = f"{where}: {self.expectation}"
        if self.arguments:
            head += f"({self.arguments})"
        head += f"  [suite {self.suite}]"
        lines = [head]
        if self.description:
            lines.append(f"    rule: {self.description}")
        if self.error:
            lines.append(f"    {self.error}")
        if self.unexpected_count is not None:
            of = f" of {self.element_count:,}" if self.element_count is not None else ""
            lines.append(f"    {self.unexpected_count:,}{of} rows unexpected")
        if self.observed is not None:
            lines.append(f"    observed: {self.observed}")
        if self.examples:
            lines.append("    e.g. " + "; ".join(self.examples))
        return "\n".join(lines)

    def _check_text(self) -> str:
        lines = [
            f"cross-table check {self.check} on {self.table} ({self.column})  "
            f"[suite {self.suite}: {self.expectation}(excess=0)]",
        ]
        if self.description:
            lines.append(f"    rule: {self.description}")
        if self.error:
            lines.append(f"    {self.error}")
        if self.unexpected_count is not None:
            lines.append(
                f"    {self.unexpected_count:,} of {self.element_count or 0:,} compared "
                "figures differ"
            )
        if self.examples:
            lines.append("    e.g. " + "; ".join(self.examples))
        return "\n".join(lines)


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    table: str | None
    evaluated: int
    failed: int
    rows: int | None
    skipped: str | None = None  # why its table holds no finding (fct_analysis_coverage)


@dataclass
class ValidationReport:
    build_db: Path
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)  # severity warning/info: not gating
    suites: list[SuiteOutcome] = field(default_factory=list)
    unvalidated_tables: list[str] = field(default_factory=list)  # marts/ml tables w/o a suite
    skipped_checks: dict[str, str] = field(default_factory=dict)  # check -> why
    docs_index: Path | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def evaluated(self) -> int:
        return sum(s.evaluated for s in self.suites)

    def __str__(self) -> str:
        validated = [s for s in self.suites if s.skipped is None]
        n_suites, evaluated = len(validated), self.evaluated
        if self.ok:
            lines = [
                f"Quality gate passed: {evaluated:,} expectations in {n_suites} Great "
                f"Expectations suites on {self.build_db} ({self.seconds:.1f} s)."
            ]
        else:
            lines = [
                f"Quality gate FAILED: {len(self.failures)} of {evaluated:,} expectations in "
                f"{n_suites} suites failed on {self.build_db} ({self.seconds:.1f} s). "
                "Fix the model that builds each table (or the input it reads), then build "
                "again; the build was not published."
            ]
            lines += [f"- {failure}" for failure in self.failures]
        if self.warnings:
            lines.append(f"Warnings ({len(self.warnings)}, not gating):")
            lines += [f"- {warning}" for warning in self.warnings]
        skipped = [s for s in self.suites if s.skipped is not None]
        if skipped:
            lines.append(f"Skipped ({len(skipped)} suites: their analysis did not run on "
                         "this data, see marts.fct_analysis_coverage):")
            lines += [f"- {s.suite}: {s.skipped}" for s in skipped]
        if self.skipped_checks:
            lines.append(f"Cross-table checks skipped ({len(self.skipped_checks)}):")
            lines += [f"- {check}: {why}" for check, why in self.skipped_checks.items()]
        if self.unvalidated_tables:
            lines.append(
                "Tables without a suite (add one in xsell/quality/suites.py): "
                + ", ".join(self.unvalidated_tables)
            )
        if self.docs_index:
            lines.append(f"Data Docs: {self.docs_index}")
        return "\n".join(lines)


def format_value(value) -> str:
    """A value from a GE result, as a person would write it."""
    if value is None:
        return "null"
    if isinstance(value, float | int) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            return "null"
        if float(value).is_integer() and abs(value) < 1e15:
            return f"{int(value)}"
        if abs(value) >= 1000:  # money: keep the cents
            return f"{value:,.2f}"
        return f"{value:.6g}"
    if isinstance(value, pd.Timestamp | datetime):
        if pd.isna(value):
            return "null"
        stamp = pd.Timestamp(value)
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return format_value(value.item())
    if isinstance(value, list | tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    try:
        if pd.isna(value):
            return "null"
    except (TypeError, ValueError):
        pass
    return str(value)
