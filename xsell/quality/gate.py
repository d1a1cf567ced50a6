"""Run every Great Expectations suite in gx/ on the tables of a DuckDB build file.

The suites, data assets and validation definitions are files of the GE file context in
gx/ (written from `xsell.quality.suites`). Each validation definition validates a pandas
frame read from the build file, holding only the columns its suite needs: GE's SQL
datasource on DuckDB fails silently, so GE never talks to DuckDB here.

Rule for a missing table: every suite names the table the build is supposed to produce,
so a suite whose table is absent is a failure, never a skip. A table the build produced
empty because its analysis cannot run on this data (marts.fct_analysis_coverage: not
applicable, no result, not built) is skipped with the coverage's reason, and so are the
cross-table checks that compare it.

The suites of family "bands" (figures of the synthetic store) run only with bands=True.

Speed: GE spends most of a validation in Python per expectation, so the suites are
validated in worker processes (two by default, one per core) forked once GE and the
context are loaded; each worker reads its frames, stores its results, renders their Data
Docs pages and sends back plain outcomes, which the report lists in the suites' order as
one process would. This process then writes the Data Docs index.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pandas as pd
import yaml

from xsell.coverage import read_coverage
from xsell.frames import frame_of
from xsell.quality.reconcile import CHECKS_BY_NAME, reconcile
from xsell.quality.report import MAX_EXAMPLES, Failure, SuiteOutcome, ValidationReport, format_value

THRESHOLDS_FILE = "xsell_thresholds.yml"
DATASOURCE = "xsell_build"
BATCH_DEFINITION = "whole_table"
RUN_NAME = "xsell_gate"
DOCS_SITE = "xsell_gate"
CHECKS_SUITE = "checks.reconciliation"
SUITE_PAGES_FILE = "xsell_suite_pages.json"  # in gx/uncommitted: see _SuitePages
VALIDATED_SCHEMAS = ("staging", "marts", "ml")
UNVALIDATED_NOTE_SCHEMAS = ("marts", "ml")  # published tables; staging holds base/quarantine too


PYTHON_MODELS_OFF = "dbt Python models are off on this target (var python_models)"


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
    row counts computed from the build:

    - profile_rows = rows of staging.stg_pos__customers (dim_customers holds all of them).
    """
    values = {k: v for k, v in thresholds.items() if not isinstance(v, Mapping)}
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
    workers: int | None = None,
    bands: bool = False,
) -> ValidationReport:
    """Validate the build file with every suite of the GE context in gx_dir.

    docs_dir: where to write Data Docs (the HTML site; index.html inside), None for none.
    thresholds: overrides of gx/xsell_thresholds.yml, e.g. {"attach_rate_all_min": 0.3}.
    keep_runs: validation results older than the last keep_runs runs (this one included,
    so at least 1) are deleted from gx/uncommitted/validations, so the folder and the Data
    Docs build stay small.
    workers: processes that read and validate the suites' tables; None for one per CPU
    core, at most DEFAULT_WORKERS; 1 validates in this process. More than one are forked
    from this process (Linux and other POSIX systems; on Windows and macOS it validates
    in this process).
    bands: also validate the suites of family "bands" (the synthetic store's figures).

    Returns the report (report.ok, report.failures, str(report)); raises QualityError
    only when it cannot validate at all (or a worker process failed).
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
    if not bands:
        definitions = [d for d in definitions if _family(d) != "bands"]
    if keep_runs < 1:
        raise QualityError(f"keep_runs must be at least 1 (this run), not {keep_runs}.")

    report = ValidationReport(build_db=build_db)
    with _connect(build_db) as con:
        columns = _columns_by_table(con)
        values = parameters(con, set(columns), limits)
        rows = _row_estimates(con)
        coverage = read_coverage(con)
    # tables empty because their analysis cannot run on this data: skipped, with why
    unavailable = coverage.table_reasons() if coverage is not None else {}
    if coverage is not None and any(row.status == "not_built" for row in coverage):
        # dbt Python models off (var python_models): the ml schema is not built at all
        for definition in definitions:
            table = _Job.table(definition)
            if table and table.startswith("ml.") and table not in columns:
                unavailable.setdefault(table, PYTHON_MODELS_OFF)
    for definition in definitions:
        _check_parameters(definition.suite, values, gx_dir)
    site = pages = None
    if docs_dir is not None:
        site, config = _docs_site(context, Path(docs_dir).resolve(), definitions, keep_runs)
        pages = _SuitePages(context, site, config, gx_dir, Path(docs_dir).resolve())
    job = _Job(build_db, definitions, columns, values,
               RunIdentifier(run_name=RUN_NAME, run_time=datetime.now(UTC)), site, pages,
               unavailable)

    tick = time.perf_counter()
    order = job.schedule(rows)
    count = _worker_count(workers, len(order), rows)
    # the results of old runs first: the pages of this run list fewer stored keys
    _prune_results(context, keep_runs, job.run_id)
    runs, rendered = (_run_forked(job, order, count) if count > 1
                      else _run_here(job, order))
    timings["read frames"] = sum(r.read_seconds for r in runs.values())
    timings["validate"] = sum(r.validate_seconds for r in runs.values())
    if site is not None:
        timings["docs pages"] = rendered.seconds
    timings["suites (wall)"] = time.perf_counter() - tick

    # in the order of the definitions, whichever process validated them
    for index, definition in enumerate(definitions):
        run = runs.get(index)
        table = job.table(definition)
        if run is None and table in unavailable:  # its analysis did not run
            report.suites.append(SuiteOutcome(definition.suite.name, table, 0, 0, None,
                                              skipped=unavailable[table]))
            continue
        if run is None:  # its table is missing: no run
            table = job.table(definition)
            report.failures.append(_missing_table(definition.suite.name, table))
            report.suites.append(SuiteOutcome(definition.suite.name, table, 1, 1, None))
            continue
        report.failures.extend(run.failures)
        report.warnings.extend(run.warnings)
        report.suites.append(run.outcome)
        if run.skipped_checks is not None:
            report.skipped_checks = run.skipped_checks
    suite_tables = {job.table(d) for d in definitions}
    checked_tables = {t for check in CHECKS_BY_NAME.values() for t in check.tables}
    report.unvalidated_tables = sorted(
        t for t in columns
        if t.split(".")[0] in UNVALIDATED_NOTE_SCHEMAS
        and t not in suite_tables and t not in checked_tables
    )

    # the tables' own expectations first: a broken cross-table check often follows from them
    report.failures.sort(key=lambda f: (f.check is not None, f.suite))
    tick = time.perf_counter()
    if site is not None:
        # the suite pages of suites without a run (missing table)
        rendered.add(job.render_pages([], [d.suite.name for i, d in enumerate(definitions)
                                           if i not in runs]))
        names = [d.suite.name for d in definitions]
        pages.save(names, rendered.record, kept=set(names) - rendered.stale)
        _render_index(site)
        report.docs_index = Path(docs_dir).resolve() / "index.html"
    timings["data docs"] = time.perf_counter() - tick
    report.timings = timings
    report.seconds = time.perf_counter() - started
    return report


def _family(definition) -> str | None:
    return (definition.suite.meta or {}).get("xsell", {}).get("family")


def _connect(build_db: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(build_db), read_only=True)
    except duckdb.Error as error:
        raise QualityError(f"Cannot open the build file {build_db} read-only: {error}") from error


# --- validating the suites -----------------------------------------------------------------


@dataclass
class _SuiteRun:
    """What validating one suite gives the report: plain values, so that a worker process
    can send it back."""

    index: int  # of its definition
    outcome: SuiteOutcome
    failures: list[Failure]  # severity critical
    warnings: list[Failure]
    batch_id: str  # of its result in the validation results store
    skipped_checks: dict[str, str] | None  # checks.reconciliation only: check -> why
    read_seconds: float
    validate_seconds: float


@dataclass
class _Pages:
    """The Data Docs pages a process rendered: seconds, the suites whose page was stale,
    and the record of those it rendered (see _SuitePages)."""

    seconds: float = 0.0
    stale: set[str] = field(default_factory=set)
    record: dict[str, list] = field(default_factory=dict)

    def add(self, other: _Pages) -> None:
        self.seconds += other.seconds
        self.stale |= other.stale
        self.record.update(other.record)


@dataclass
class _Job:
    """The suites of one validation: everything a worker needs, set up before it forks."""

    build_db: Path
    definitions: list
    columns: dict[str, dict[str, str]]  # schema.table -> column -> DuckDB type
    values: dict  # the $PARAMETER values
    run_id: object  # GE RunIdentifier
    site: object | None  # the Data Docs SiteBuilder, None for no Data Docs
    pages: _SuitePages | None  # which of its suite pages are current
    unavailable: dict[str, str] = field(default_factory=dict)  # table -> why it is empty

    @staticmethod
    def table(definition) -> str | None:
        return (definition.suite.meta or {}).get("xsell", {}).get("table")

    def schedule(self, rows: dict[str, int | None]) -> list[int]:
        """The definitions to validate (those whose table exists), costliest first, so
        that workers taking the next one in turn end close together: the cross-table
        checks (queries over several tables) first, then views (reading one runs its
        query: any cost), then tables by rows x columns read."""

        def cost(index: int) -> tuple:
            definition = self.definitions[index]
            if definition.suite.name == CHECKS_SUITE:
                return (0, 0, index)
            table_rows = rows.get(self.table(definition))
            if table_rows is None:
                return (1, 0, index)
            width = len(_needed_columns(definition.suite, []))
            return (2, -table_rows * max(width, 1), index)

        present = [
            i for i, d in enumerate(self.definitions)
            if d.suite.name == CHECKS_SUITE
            or (self.table(d) in self.columns and self.table(d) not in self.unavailable)
        ]
        return sorted(present, key=cost)

    def run(self, index: int, con) -> _SuiteRun:
        definition = self.definitions[index]
        suite = definition.suite
        key = list((suite.meta or {}).get("xsell", {}).get("key", []))
        tick = time.perf_counter()
        skipped = None
        if suite.name == CHECKS_SUITE:
            checked = reconcile(con, set(self.columns), self.unavailable)
            frame, table, skipped = checked.frame, CHECKS_SUITE, checked.skipped
        else:
            table = self.table(definition)
            frame = _read_frame(con, table, self.columns[table], _needed_columns(suite, key))
        read_seconds = time.perf_counter() - tick
        tick = time.perf_counter()
        # BASIC first (observed values, a few bad values); only a suite that fails is
        # run again with SUMMARY, whose row keys of bad values cost a third more time.
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=self.values,
            result_format={"result_format": "BASIC"},
            run_id=self.run_id,
        )
        if not result.success:
            result = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=self.values,
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": 20,
                    "unexpected_index_column_names": [c for c in key if c in frame.columns],
                },
                run_id=self.run_id,
            )
        validate_seconds = time.perf_counter() - tick
        _forget_batches(definition)
        rows = len(frame)
        del frame
        failures, warnings = [], []
        for outcome in result.results:
            if outcome.success:
                continue
            failure = _failure(suite, table, outcome)
            (failures if failure.severity == "critical" else warnings).append(failure)
        return _SuiteRun(
            index=index,
            outcome=SuiteOutcome(suite.name, table, len(result.results), len(failures),
                                 rows),
            failures=failures,
            warnings=warnings,
            batch_id=result.batch_id,
            skipped_checks=skipped,
            read_seconds=read_seconds,
            validate_seconds=validate_seconds,
        )

    def render_pages(self, runs: list[_SuiteRun], names: list[str] = ()) -> _Pages:
        """The Data Docs pages of these runs (their validation results, and their suites
        unless current) and of the suites `names`."""
        if self.site is None:
            return _Pages()
        tick = time.perf_counter()
        identifiers = {
            _result_id(self.definitions[run.index].suite.name, run.batch_id, self.run_id)
            for run in runs
        }
        stale = self.pages.stale(
            [self.definitions[run.index].suite.name for run in runs] + list(names))
        identifiers.update(_suite_id(name) for name in stale)
        _render_pages(self.site, identifiers)
        return _Pages(time.perf_counter() - tick, set(stale), self.pages.rendered(stale))


def _run_here(job: _Job, order: list[int]) -> tuple[dict[int, _SuiteRun], _Pages]:
    with _connect(job.build_db) as con:
        runs = {index: job.run(index, con) for index in order}
    return runs, job.render_pages(list(runs.values()))


DEFAULT_WORKERS = 2


# Above this many rows in the build file's tables the default is one process: each worker
# holds the frame of the table it validates, and two of a 10M-line build's largest
# (10M transaction lines, 15M add-on scores) would add up to more than one machine's
# share; the workers pay off on small builds, where GE's per-suite overhead dominates.
PARALLEL_MAX_ROWS = 20_000_000


def _worker_count(workers: int | None, suites: int, rows: dict | None = None) -> int:
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        workers = min(DEFAULT_WORKERS, cores)
        if sum(n or 0 for n in (rows or {}).values()) > PARALLEL_MAX_ROWS:
            workers = 1
    if workers < 1:
        raise QualityError(f"workers must be at least 1, not {workers}.")
    # fork: not on Windows, and unsafe on macOS (system libraries); a daemon process (e.g.
    # a multiprocessing pool's worker) may not start processes
    if (sys.platform == "darwin" or "fork" not in multiprocessing.get_all_start_methods()
            or multiprocessing.current_process().daemon):
        return 1
    return min(workers, suites)


def _run_forked(job: _Job, order: list[int], workers: int
                ) -> tuple[dict[int, _SuiteRun], _Pages]:
    """Validate the definitions in `workers` processes forked from this one, which has
    Great Expectations, the context and the job loaded already (a fork costs
    milliseconds; a fresh interpreter would import GE again, 3-4 s). Each worker opens
    the build file read-only, takes the next definition in `order` until none is left,
    writes its results to the results store (files), sends back a _SuiteRun per suite,
    then renders the Data Docs pages of its suites. A worker that raises, or ends without
    saying it finished, stops the others and raises QualityError naming the suite it was
    validating. Returns the runs and the pages the workers rendered."""
    fork = multiprocessing.get_context("fork")
    taken = fork.RawValue("i", 0)  # the next position in order
    lock = fork.Lock()
    workers_and_pipes = []
    for number in range(workers):
        receiver, sender = fork.Pipe(duplex=False)
        process = fork.Process(
            target=_worker, args=(job, order, taken, lock, sender),
            name=f"xsell-gate-{number + 1}", daemon=True,
        )
        process.start()
        sender.close()  # the parent's copy: the pipe ends (EOFError) when the worker ends
        workers_and_pipes.append((process, receiver))

    runs: dict[int, _SuiteRun] = {}
    current: dict[str, int] = {}  # worker -> the definition it is validating
    pages = _Pages()
    problem = None
    finished = False
    open_pipes = {receiver: process for process, receiver in workers_and_pipes}
    try:
        while open_pipes and problem is None:
            for receiver in multiprocessing.connection.wait(list(open_pipes)):
                process = open_pipes[receiver]
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    process.join()
                    problem = _worker_died(process, job, current.get(process.name))
                    break
                if kind == "start":
                    current[process.name] = payload
                elif kind == "done":
                    runs[payload.index] = payload
                    current.pop(process.name, None)
                elif kind == "error":
                    doing, text = payload
                    problem = f"{doing} failed in worker process {process.name}: {text}"
                    break
                else:  # "end": its definitions are validated and their pages rendered
                    pages.add(payload)
                    del open_pipes[receiver]
                    receiver.close()
        finished = problem is None
    finally:
        for process, receiver in workers_and_pipes:
            if not finished and process.is_alive():
                process.terminate()
            process.join()
            receiver.close()
    if problem is not None:
        raise QualityError(f"The quality gate could not validate the build: {problem}")
    missing = [job.definitions[i].suite.name for i in order if i not in runs]
    if missing:  # cannot happen while every worker says it ended; never report less
        raise QualityError(f"No result for the suites {', '.join(missing)}.")
    return runs, pages


def _worker(job: _Job, order: list[int], taken, lock, sender) -> None:
    """One worker process: see _run_forked. Messages: ("start", index), ("done", run)
    per definition, then ("end", the _Pages it rendered) or ("error", (doing, text))."""
    doing = f"opening the build file {job.build_db}"
    mine = []
    try:
        with _connect(job.build_db) as con:
            while True:
                with lock:
                    position = taken.value
                    taken.value += 1
                if position >= len(order):
                    break
                index = order[position]
                doing = f"validating suite {job.definitions[index].suite.name}"
                sender.send(("start", index))
                mine.append(job.run(index, con))
                sender.send(("done", mine[-1]))
        doing = "rendering the Data Docs pages of its suites"
        sender.send(("end", job.render_pages(mine)))
    except BaseException as error:  # noqa: BLE001 - sent to the parent, which raises
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        sender.send(("error", (doing, text)))
    finally:
        sender.close()


def _worker_died(process, job: _Job, index: int | None) -> str:
    code = process.exitcode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else (
        f"exited with code {code}")
    doing = (f" while validating suite {job.definitions[index].suite.name}"
             if index is not None else "")
    return f"worker process {process.name} {how}{doing}"


def _row_estimates(con) -> dict[str, int | None]:
    """Rows per table as DuckDB's catalog estimates them (no scan), None for a view."""
    return dict(con.execute(
        "select schema_name || '.' || table_name, estimated_size from duckdb_tables() "
        "where database_name = current_database() "
        "union all select schema_name || '.' || view_name, null from duckdb_views() "
        "where database_name = current_database() and not internal"
    ).fetchall())


def _forget_batches(definition) -> None:
    """Drop the frames GE's execution engine caches for every batch it validated: they
    are never read again, and on a 10M-line build they held 4 GiB by the last suite."""
    engine = definition.batch_definition.data_asset.datasource.get_execution_engine()
    engine.batch_manager.reset_batch_cache()
    engine.batch_manager.batch_data_cache.clear()


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
    """The result of query as DuckDB's .df() gives it, read through Arrow (xsell.frames):
    the staging suite reads every transaction line, the rules suite 910k rules on Online
    Retail."""
    # a cursor: the relation API refuses a connection with a pending execute() result
    with con.cursor() as cursor:
        return frame_of(cursor.sql(query))


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


def _result_id(suite_name: str, batch_id: str, run_id):
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run_id,
        batch_identifier=batch_id,
    )


def _prune_results(context, keep_runs: int, run_id) -> None:
    """Delete the stored results of all runs but run_id's and the keep_runs - 1 latest
    others (before or after run_id's results are stored: the same runs stay)."""
    store = context.validation_results_store
    keys = [k for k in store.list_keys() if k.run_id.run_time != run_id.run_time]
    run_times = sorted({k.run_id.run_time for k in keys}, reverse=True)
    keep = set(run_times[:keep_runs - 1])
    for key in keys:
        if key.run_id.run_time not in keep:
            store.remove_key(key)


def _docs_site(context, docs_dir: Path, definitions, keep_runs: int) -> tuple[object, dict]:
    """The Data Docs site writing to docs_dir (index.html inside), defined in memory only:
    gx/great_expectations.yml keeps its own local_site untouched. Built the way
    context.build_data_docs builds a configured site. Returns it and its configuration."""
    from great_expectations.data_context.util import instantiate_class_from_config

    docs_dir.mkdir(parents=True, exist_ok=True)
    config = {
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
    site = instantiate_class_from_config(
        config=dict(config),
        runtime_environment={"data_context": context, "root_directory": context.root_directory,
                             "site_name": DOCS_SITE},
        config_defaults={"class_name": "SiteBuilder",
                         "module_name": "great_expectations.render.renderer.site_builder"},
    )
    return site, config


def _render_pages(site, identifiers: set) -> None:
    """The pages of these validation results and suites, not the index (the first part of
    SiteBuilder.build), rewritten to work offline (docs_offline). A set: each section
    tests every stored key against it."""
    if identifiers:  # GE's section builders render every page when given none
        for section in site.site_section_builders.values():
            section.build(resource_identifiers=identifiers)
        offline = _offline_site(site)
        for identifier in identifiers:
            offline.page(_page_path(site, identifier))


def _render_index(site) -> None:
    """The rest of SiteBuilder.build: static assets, then the index of every page, which
    xsell renders from the links GE's index builder collects, for offline reading; pages
    rendered before (by an earlier version) are rewritten too."""
    site.target_store.copy_static_assets()
    _, links = site.site_index_builder.build()
    offline = _offline_site(site)
    offline.static_styles()
    offline.pages()
    offline.index(links, DOCS_SITE)


def _offline_site(site):
    from xsell.quality.docs_offline import OfflineSite

    plugins = site.data_context.plugins_directory
    return OfflineSite(_page_path(site, None).parent, Path(plugins) if plugins else None)


def _page_path(site, identifier) -> Path:
    """The file of a resource's page (identifier None: the index)."""
    url = site.get_resource_url(resource_identifier=identifier, only_if_exists=False)
    return Path(unquote(urlparse(url).path))


def _suite_id(name: str):
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    return ExpectationSuiteIdentifier(name=name)


class _SuitePages:
    """Which suite pages of a Data Docs site are current, so that only the others are
    rendered again. A suite page is made from the suite (its JSON in gx/expectations), GE's
    renderer, the site's configuration, the context's custom Data Docs files (views, styles,
    the offline script), the offline rewriting (docs_offline.VERSION) and the context's id
    (in the page's links), nothing else. The record, per site folder, in
    gx/uncommitted/SUITE_PAGES_FILE: for each page, a digest of those inputs and the
    SHA-256 of the page as rendered. A page is kept when both still match, so a page that
    is missing, edited or rendered from anything else is rendered again."""

    def __init__(self, context, site, config: dict, gx_dir: Path, docs_dir: Path):
        import great_expectations as gx

        from xsell.quality.docs_offline import VERSION as offline_version

        self.context, self.site = context, site
        self.file = gx_dir / "uncommitted" / SUITE_PAGES_FILE
        self.key = str(docs_dir)
        custom = Path(context.plugins_directory or gx_dir / "plugins") / "custom_data_docs"
        custom_files = sorted(p for p in custom.rglob("*") if p.is_file()) if (
            custom.is_dir()) else []
        self.salt = json.dumps([
            gx.__version__, offline_version, str(context.variables.data_context_id), config,
            [[str(p.relative_to(custom)), _sha256(p.read_bytes())] for p in custom_files],
        ], sort_keys=True, default=str)
        recorded = self._load().get(self.key)
        self.recorded: dict[str, list] = recorded if isinstance(recorded, dict) else {}

    def _load(self) -> dict:
        try:
            record = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _inputs(self, name: str) -> str:
        suite = self.context.expectations_store.store_backend.get(_suite_id(name).to_tuple())
        return _sha256((self.salt + suite).encode())

    def _page(self, name: str) -> str | None:
        try:
            return _sha256(_page_path(self.site, _suite_id(name)).read_bytes())
        except OSError:
            return None

    def stale(self, names) -> dict[str, tuple[str, str | None]]:
        """The suites whose page needs rendering: name -> (inputs, page digest now)."""
        out = {}
        for name in names:
            inputs, page = self._inputs(name), self._page(name)
            if self.recorded.get(name) != [inputs, page] or page is None:
                out[name] = (inputs, page)
        return out

    def rendered(self, stale: dict[str, tuple[str, str | None]]) -> dict[str, list]:
        """The record of the stale pages after rendering: a page the renderer did not
        write again (it logs its errors and goes on) keeps no record."""
        out = {}
        for name, (inputs, before) in stale.items():
            page = self._page(name)
            if page is not None and page != before:
                out[name] = [inputs, page]
        return out

    def save(self, names, rendered: dict[str, list], kept: set[str]) -> None:
        record = self._load()
        record[self.key] = {
            name: rendered[name] if name in rendered else self.recorded[name]
            for name in sorted(names) if name in rendered or name in kept
        }
        self.file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.file.with_name(self.file.name + f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(temporary, self.file)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
