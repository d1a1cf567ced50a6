"""Run every Great Expectations suite in gx/ on the tables of a DuckDB build file.

The suites, data assets and validation definitions are files of the GE file context in
gx/ (written from `xsell.quality.suites`). Each validation definition validates a pandas
frame read from the build file, holding only the columns its suite needs: GE's SQL
datasource on DuckDB fails silently, so GE never talks to DuckDB here.

Rule for a missing table: every suite names the table the build is supposed to produce,
so a suite whose table is absent is a failure, never a skip.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import yaml

from xsell.quality.reconcile import CHECKS_BY_NAME, reconcile
from xsell.quality.report import MAX_EXAMPLES, Failure, SuiteOutcome, ValidationReport, format_value

THRESHOLDS_FILE = "xsell_thresholds.yml"
DATASOURCE = "xsell_build"
BATCH_DEFINITION = "whole_table"
RUN_NAME = "xsell_gate"
DOCS_SITE = "xsell_gate"
CHECKS_SUITE = "checks.reconciliation"
VALIDATED_SCHEMAS = ("staging", "marts", "ml")
UNVALIDATED_NOTE_SCHEMAS = ("marts", "ml")  # published tables; staging holds base/quarantine too


class QualityError(RuntimeError):
    """The validation could not run at all (no build file, broken gx/ folder, ...)."""


def _quiet_gx() -> None:
    # Before GE is imported: no usage statistics (see DESIGN.md).
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("DO_NOT_TRACK", "1")


_preloading: threading.Thread | None = None


def preload() -> None:
    """Start importing Great Expectations (3-4 s of CPU) in a background thread, e.g. while
    `dbt build` runs in its subprocess, so that `validate` finds it imported."""
    global _preloading
    if "great_expectations" in sys.modules or _preloading is not None:
        return
    _quiet_gx()
    _preloading = threading.Thread(
        target=lambda: __import__("great_expectations"), name="xsell-gx-preload", daemon=True
    )
    _preloading.start()


def load_context(gx_dir: Path):
    """The GE file context whose root is gx_dir (the folder holding great_expectations.yml)."""
    _quiet_gx()
    if _preloading is not None:
        _preloading.join()
    import great_expectations as gx

    gx_dir = Path(gx_dir)
    if not (gx_dir / "great_expectations.yml").is_file():
        raise QualityError(
            f"No Great Expectations context at {gx_dir} (great_expectations.yml missing). "
            "Write it with `python -m xsell.quality write-gx`."
        )
    return gx.get_context(mode="file", context_root_dir=str(gx_dir))


def load_thresholds(gx_dir: Path, overrides: Mapping | None = None) -> dict:
    path = Path(gx_dir) / THRESHOLDS_FILE
    if not path.is_file():
        raise QualityError(f"No thresholds file at {path}.")
    thresholds = yaml.safe_load(path.read_text()) or {}
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(thresholds.get(key), Mapping):
            thresholds[key] = {**thresholds[key], **value}
        else:
            thresholds[key] = value
    return thresholds


def parameters(con: duckdb.DuckDBPyConnection, tables: set[str], thresholds: dict) -> dict:
    """Values of the suites' $PARAMETERs: the bands of the thresholds file as they are, and
    row counts relative to the input computed from the build:

    - staged_rows_min_<table> = ceil(staged_share_min[<table>] x raw rows), the raw rows
      being every row of staging.base_pos__<table> (staged + quarantined);
    - profile_rows = rows of staging.stg_pos__customers (dim_customers holds all of them).
    """
    values = {k: v for k, v in thresholds.items() if not isinstance(v, Mapping)}
    for table, share in (thresholds.get("staged_share_min") or {}).items():
        base = f"staging.base_pos__{table}"
        raw_rows = con.execute(f"select count(*) from {base}").fetchone()[0] if (
            base in tables) else 0
        values[f"staged_rows_min_{table}"] = math.ceil(float(share) * raw_rows - 1e-9)
        values[f"raw_rows_{table}"] = raw_rows
    values["profile_rows"] = (
        con.execute("select count(*) from staging.stg_pos__customers").fetchone()[0]
        if "staging.stg_pos__customers" in tables else 0
    )
    return values


def validate(
    build_db: Path,
    *,
    gx_dir: Path,
    docs_dir: Path | None = None,
    thresholds: Mapping | None = None,
    keep_runs: int = 10,
) -> ValidationReport:
    """Validate the build file with every suite of the GE context in gx_dir.

    docs_dir: where to write Data Docs (the HTML site; index.html inside), None for none.
    thresholds: overrides of gx/xsell_thresholds.yml, e.g. {"attach_rate_all_min": 0.3}.
    keep_runs: validation results older than the last keep_runs runs are deleted from
    gx/uncommitted/validations, so the folder and the Data Docs build stay small.

    Returns the report (report.ok, report.failures, str(report)); raises QualityError
    only when it cannot validate at all.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    build_db = Path(build_db).resolve()
    if not build_db.is_file():
        raise QualityError(f"No build file at {build_db}: run `xsell run` (or `dbt build`).")
    gx_dir = Path(gx_dir).resolve()
    context = load_context(gx_dir)
    from great_expectations.core.run_identifier import RunIdentifier

    timings["load gx"] = time.perf_counter() - started
    limits = load_thresholds(gx_dir, thresholds)
    definitions = sorted(context.validation_definitions.all(), key=lambda vd: vd.name)
    if not definitions:
        raise QualityError(f"No validation definitions in {gx_dir / 'validation_definitions'}.")

    report = ValidationReport(build_db=build_db)
    run_id = RunIdentifier(run_name=RUN_NAME, run_time=datetime.now(UTC))
    result_ids = []
    try:
        con = duckdb.connect(str(build_db), read_only=True)
    except duckdb.Error as error:
        raise QualityError(f"Cannot open the build file {build_db} read-only: {error}") from error
    with con:
        columns = _columns_by_table(con)
        values = parameters(con, set(columns), limits)
        read_seconds = validate_seconds = 0.0
        for definition in definitions:
            suite = definition.suite
            meta = (suite.meta or {}).get("xsell", {})
            table = meta.get("table")
            key = list(meta.get("key", []))
            _check_parameters(suite, values, gx_dir)
            tick = time.perf_counter()
            if suite.name == CHECKS_SUITE:
                checked = reconcile(con, set(columns))
                frame, table = checked.frame, CHECKS_SUITE
                report.skipped_checks = checked.skipped
            elif table not in columns:
                report.failures.append(_missing_table(suite.name, table))
                report.suites.append(SuiteOutcome(suite.name, table, 1, 1, None))
                continue
            else:
                frame = _read_frame(con, table, columns[table], _needed_columns(suite, key))
            read_seconds += time.perf_counter() - tick
            tick = time.perf_counter()
            # BASIC first (observed values, a few bad values); only a suite that fails is
            # run again with SUMMARY, whose row keys of bad values cost a third more time.
            result = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=values,
                result_format={"result_format": "BASIC"},
                run_id=run_id,
            )
            if not result.success:
                result = definition.run(
                    batch_parameters={"dataframe": frame},
                    expectation_parameters=values,
                    result_format={
                        "result_format": "SUMMARY",
                        "partial_unexpected_count": 20,
                        "unexpected_index_column_names": [c for c in key if c in frame.columns],
                    },
                    run_id=run_id,
                )
            validate_seconds += time.perf_counter() - tick
            result_ids.append(_result_id(suite.name, result, run_id))
            failed = 0
            for outcome in result.results:
                if outcome.success:
                    continue
                failure = _failure(suite, table, outcome)
                if failure.severity == "critical":
                    failed += 1
                    report.failures.append(failure)
                else:
                    report.warnings.append(failure)
            report.suites.append(
                SuiteOutcome(suite.name, table, len(result.results), failed, len(frame))
            )
        timings["read frames"] = read_seconds
        timings["validate"] = validate_seconds
        suite_tables = {(d.suite.meta or {}).get("xsell", {}).get("table") for d in definitions}
        report.unvalidated_tables = sorted(
            t for t in columns
            if t.split(".")[0] in UNVALIDATED_NOTE_SCHEMAS and t not in suite_tables
        )

    # the tables' own expectations first: a broken cross-table check often follows from them
    report.failures.sort(key=lambda f: (f.check is not None, f.suite))
    tick = time.perf_counter()
    _prune_results(context, keep_runs)
    if docs_dir is not None:
        report.docs_index = _build_docs(context, Path(docs_dir), result_ids, definitions,
                                        keep_runs)
    timings["data docs"] = time.perf_counter() - tick
    report.timings = timings
    report.seconds = time.perf_counter() - started
    return report


# --- reading the build ---------------------------------------------------------------------


def _columns_by_table(con) -> dict[str, dict[str, str]]:
    rows = con.execute(
        "select table_schema || '.' || table_name, column_name, data_type "
        "from information_schema.columns "
        "where table_catalog = current_database() and table_schema in ("
        + ", ".join(f"'{s}'" for s in VALIDATED_SCHEMAS)
        + ") order by table_schema, table_name, ordinal_position"
    ).fetchall()
    tables: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, {})[column] = data_type
    return tables


def _needed_columns(suite, key: list[str]) -> list[str]:
    needed = list(key)
    for expectation in suite.expectations:
        kwargs = expectation.configuration.kwargs
        for name in ("column", "column_A", "column_B"):
            if kwargs.get(name):
                needed.append(kwargs[name])
        needed.extend(kwargs.get("column_list") or [])
        needed.extend(_condition_columns(kwargs.get("row_condition")))
    return list(dict.fromkeys(needed))


def _condition_columns(condition) -> list[str]:
    if condition is None or isinstance(condition, str):
        return []
    if hasattr(condition, "dict"):
        condition = condition.dict()
    found = []
    if isinstance(condition, Mapping):
        column = condition.get("column")
        if isinstance(column, Mapping) and "name" in column:
            found.append(column["name"])
        for value in condition.values():
            if isinstance(value, list | tuple):
                for item in value:
                    found.extend(_condition_columns(item))
    return found


def _read_frame(con, table: str, types: dict[str, str], needed: list[str]) -> pd.DataFrame:
    """The needed columns of the table (lists as text, so that they compare and hash).
    A needed column the table lacks is left out: its expectations then fail naming it."""
    present = [c for c in needed if c in types]
    if not present:  # table-level expectations only: one column gives the row count
        present = [next(iter(types))]
    select = ", ".join(
        f'cast("{c}" as varchar) as "{c}"' if types[c].endswith("[]") else f'"{c}"'
        for c in present
    )
    schema, name = table.split(".", 1)
    return _fetch_frame(con, f'select {select} from "{schema}"."{name}"')


def _fetch_frame(con, query: str) -> pd.DataFrame:
    """The result of query as DuckDB's .df() gives it, read faster: the columns whose
    Arrow conversion gives .df()'s dtype and values (`_same_through_arrow`) go through
    Arrow (text 4x faster and without a Python object per value, numbers without a copy:
    the staging suite reads every transaction line, the rules suite 910k rules on Online
    Retail), the other columns through DuckDB's own pandas conversion of the Arrow result."""
    # a cursor: the relation API refuses a connection with a pending execute() result
    with con.cursor() as cursor:
        table = cursor.sql(query).to_arrow_table()
        direct = [
            field.name for field in table.schema
            if _same_through_arrow(field.type, table.column(field.name), len(table))
        ]
        other = [name for name in table.column_names if name not in direct]
        parts = []
        if direct:
            parts.append(table.select(direct).to_pandas())
        if other:
            parts.append(cursor.from_arrow(table.select(other)).df())
    return pd.concat(parts, axis=1)[table.column_names]


def _same_through_arrow(arrow_type, column, rows: int) -> bool:
    """Whether Arrow's to_pandas() gives this column exactly as DuckDB's .df() does.
    Not for: a text column without a value (.df() makes it object, Arrow str), integers
    and booleans with nulls (.df() makes them nullable Int64/boolean, Arrow float64/object),
    dates, decimals, intervals, time zones and the other types (dtypes differ)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return column.null_count < rows
    if pa.types.is_floating(arrow_type):
        return True
    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return column.null_count == 0
    return pa.types.is_timestamp(arrow_type) and arrow_type.tz is None and (
        arrow_type.unit == "us")


def _check_parameters(suite, values: dict, gx_dir: Path) -> None:
    for expectation in suite.expectations:
        for argument, value in expectation.configuration.kwargs.items():
            if (isinstance(value, Mapping) and "$PARAMETER" in value
                    and value["$PARAMETER"] not in values):
                raise QualityError(
                    f"Suite {suite.name}: {expectation.expectation_type}({argument}) needs "
                    f"the parameter {value['$PARAMETER']!r}; set it in "
                    f"{gx_dir / THRESHOLDS_FILE}."
                )


# --- turning GE results into failures ------------------------------------------------------

_COLUMN_ARGUMENTS = ("column", "column_list", "column_A", "column_B")
_HIDDEN_ARGUMENTS = {"batch_id", "result_format", "catch_exceptions", "meta", "condition_parser",
                     "row_condition", "ignore_row_if", *_COLUMN_ARGUMENTS}


def _missing_table(suite: str, table: str) -> Failure:
    return Failure(
        suite=suite, table=table, expectation="table_exists", column=None,
        error=(f"the build has no table {table}, which this suite validates: the build is "
               "supposed to produce it (did its model fail, or was it renamed?). "
               "If it was removed on purpose, remove its suite in xsell/quality/suites.py "
               "and rewrite gx/."),
    )


def _failure(suite, table: str, outcome) -> Failure:
    config = outcome.expectation_config
    kwargs = config.kwargs
    declared = _declared_kwargs(suite, config.id)
    result = outcome.result or {}
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    columns += list(kwargs.get("column_list") or [])
    arguments = []
    for name, value in kwargs.items():
        if name in _HIDDEN_ARGUMENTS or value is None:
            continue
        text = f"{name}={format_value(value)}"
        source = declared.get(name)
        if isinstance(source, Mapping) and "$PARAMETER" in source:
            text += f" [{source['$PARAMETER']}]"
        arguments.append(text)
    condition = _condition_text(kwargs.get("row_condition"))
    if condition:
        arguments.append(f"where {condition}")
    check = None
    if suite.name == CHECKS_SUITE:
        condition = kwargs.get("row_condition")
        condition = condition.dict() if hasattr(condition, "dict") else condition or {}
        check = CHECKS_BY_NAME.get(condition.get("parameter"))
    if check is not None:
        return Failure(
            suite=suite.name,
            table=", ".join(check.tables),
            expectation=config.type,
            column=check.columns,
            unexpected_count=result.get("unexpected_count"),
            element_count=result.get("element_count"),
            examples=tuple(_check_examples(result, check.sides)),
            error=_error_text(outcome.exception_info),
            description=check.rule,
            check=check.name,
        )
    examples = _examples(result, columns)
    observed = result.get("observed_value")
    return Failure(
        suite=suite.name,
        table=table,
        expectation=config.type,
        column=", ".join(columns) or None,
        arguments=", ".join(arguments),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        examples=tuple(examples),
        observed=None if observed is None else format_value(observed),
        error=_error_text(outcome.exception_info),
        severity=str(getattr(config, "severity", None) or "critical").split(".")[-1].lower(),
        description=config.description,
    )


def _declared_kwargs(suite, expectation_id) -> dict:
    for expectation in suite.expectations:
        if expectation.id == expectation_id:
            return expectation.configuration.kwargs
    return {}


def _condition_text(condition) -> str:
    if condition is None:
        return ""
    if isinstance(condition, str):
        return condition
    if hasattr(condition, "dict"):
        condition = condition.dict()
    if condition.get("type") == "comparison":
        return (f"{condition['column']['name']} {condition['operator']} "
                f"{condition['parameter']!r}")
    if condition.get("type") in ("and", "or"):
        joiner = f" {condition['type']} "
        return joiner.join(_condition_text(c) for c in condition.get("conditions", []))
    if condition.get("type") == "pass_through":
        return condition.get("pass_through_filter", "")
    return str(condition)


def _examples(result: dict, columns: list[str]) -> list[str]:
    indexed = result.get("partial_unexpected_index_list") or []
    examples: list[str] = []
    for row in indexed:
        if not isinstance(row, Mapping):
            continue
        values = [format_value(row[c]) for c in columns if c in row]
        keys = [f"{k}={format_value(v)}" for k, v in row.items() if k not in columns]
        text = " / ".join(values) if len(columns) == 1 else ", ".join(
            f"{c}={format_value(row[c])}" for c in columns if c in row)
        if keys:
            text += f" ({', '.join(keys)})"
        if text not in examples:
            examples.append(text)
        if len(examples) == MAX_EXAMPLES:
            return examples
    if not examples:
        for value in result.get("partial_unexpected_list") or []:
            text = format_value(value if not isinstance(value, Mapping) else list(value.values()))
            if text not in examples:
                examples.append(text)
            if len(examples) == MAX_EXAMPLES:
                break
    return examples


def _check_examples(result: dict, sides: tuple[str, str]) -> list[str]:
    rows = sorted(
        (r for r in result.get("partial_unexpected_index_list") or [] if isinstance(r, Mapping)),
        key=lambda r: -float(r.get("excess") or 0),
    )
    return [
        f"{r.get('item')}: {sides[0]} {format_value(r.get('left_value'))} vs "
        f"{sides[1]} {format_value(r.get('right_value'))}"
        for r in rows[:MAX_EXAMPLES]
    ]


def _error_text(info) -> str | None:
    if not info:
        return None
    infos = [info] if "raised_exception" in info else list(info.values())
    messages = []
    for item in infos:
        if isinstance(item, Mapping) and item.get("raised_exception"):
            message = str(item.get("exception_message") or "").strip()
            if message and message not in messages:
                messages.append(message)
    return ("could not be evaluated: " + "; ".join(messages)) if messages else None


# --- results store and Data Docs -----------------------------------------------------------


def _result_id(suite_name: str, result, run_id):
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run_id,
        batch_identifier=result.batch_id,
    )


def _prune_results(context, keep_runs: int) -> None:
    store = context.validation_results_store
    keys = list(store.list_keys())
    run_times = sorted({k.run_id.run_time for k in keys}, reverse=True)
    keep = set(run_times[:keep_runs])
    for key in keys:
        if key.run_id.run_time not in keep:
            store.remove_key(key)


def _build_docs(context, docs_dir: Path, result_ids, definitions, keep_runs: int) -> Path:
    """Data Docs of this run (and the kept earlier ones) in docs_dir, from a site defined
    in memory only: gx/great_expectations.yml keeps its own local_site untouched."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    docs_dir = docs_dir.resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.variables.data_docs_sites = {
        DOCS_SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": keep_runs * len(definitions),
            },
            # no profiling results are ever stored: its section would only list and skip
            # every stored validation result
            "site_section_builders": {"profiling": "None"},
        }
    }
    suite_ids = [ExpectationSuiteIdentifier(name=d.suite.name) for d in definitions]
    # a set: each section tests every stored key against it
    context.build_data_docs(site_names=[DOCS_SITE],
                            resource_identifiers={*result_ids, *suite_ids})
    return docs_dir / "index.html"
