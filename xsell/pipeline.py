"""The main job behind `xsell run`: (generate) -> dbt build -> quality gate -> publish
-> reports.

Each step raises PipelineError naming the step and what failed, so the command
stops at the first failure with a message a person can act on. Around the steps:

- one run at a time: the run lock of the build file and the published file
  (xsell.runlock) is taken before anything else;
- the raw folder is checked before dbt starts: generated only where that cannot
  overwrite anyone's data, its files as `xsell generate` / `xsell import` recorded them
  (xsell.rawfiles), its structure readable (xsell.preflight);
- the dbt child dies with this process and stops on SIGTERM/SIGINT (xsell.dbt_runner);
  forked gate workers die with it too;
- only a build that passed dbt and the gate is recorded as passed and published
  (xsell.publish);
- disk, permission and memory failures become one-line messages naming the path or
  XSELL_MEMORY_LIMIT.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import yaml

from xsell import rawfiles
from xsell.contract import RAW_TABLES
from xsell.coverage import read_coverage
from xsell.dbt_runner import DbtResult, Interrupted, dbt_env, run_dbt
from xsell.preflight import InputError, check_structure, describe_folder
from xsell.project import Paths, detect_raw_format, file_mode
from xsell.publish import PublishError, forget_passed, passed_sha256, record_passed
from xsell.publish import publish as publish_build
from xsell.quality import QualityError, ValidationReport, preload, validate
from xsell.reports import ReportError, render_reports
from xsell.runlock import RunLockError, run_lock


class PipelineError(RuntimeError):
    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


def run_pipeline(
    paths: Paths,
    *,
    generate_if_empty: bool | None = None,
    seed: int = 42,
    log: Callable[[str], None] = print,
    target_path: Path | None = None,
    publish: bool = True,
    incremental: bool = False,
    dbt_vars: Mapping | None = None,
    accept_raw_changes: bool = False,
) -> str:
    """Build, gate, publish and render. The incremental models (line fact, baskets) are
    rebuilt from scratch unless `incremental`: the raw folder may have been replaced by
    another store or import since the last build, which only a full refresh handles.
    `dbt_vars` (see parse_vars) reach every dbt node; the gate and the reports read what
    the build made of them (e.g. marts.fct_analysis_coverage).

    generate_if_empty: None generates the synthetic store only into the project's own
    data/raw when it holds no raw data; True also into a folder named by --raw-dir
    (never over files xsell did not write); False never."""
    try:
        with run_lock(paths.build_db, paths.published_db):
            return _run(paths, generate_if_empty, seed, log, target_path, publish,
                        incremental, accept_raw_changes, dbt_vars)
    except RunLockError as error:
        raise PipelineError("lock", str(error)) from error
    except OSError as error:  # the lock files' folders
        raise PipelineError("lock", os_error_message(error)) from error


def _run(paths, generate_if_empty, seed, log, target_path, publish, incremental,
         accept_raw_changes, dbt_vars) -> str:
    _die_with_this_process()
    with _step("inputs"):
        raw_format = prepare_inputs(paths, generate_if_empty, seed, log, accept_raw_changes)

    with _step("dbt build"):
        paths.build_db.parent.mkdir(parents=True, exist_ok=True)
        forget_passed(paths.build_db)  # the build file is about to change
    preload()  # imports Great Expectations in the background while dbt builds
    mode = "incremental" if incremental else "full refresh"
    log(f"dbt build ({mode}): {paths.raw_dir} ({raw_format}) -> {paths.build_db}")
    command = ["build"] if incremental else ["build", "--full-refresh"]
    if dbt_vars:
        log(f"dbt vars: {json.dumps(dict(dbt_vars), sort_keys=True)}")
        command += ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]
    try:
        result = run_dbt(
            command,
            paths.project_dir,
            # the raw files were hashed just now: dbt's raw_file_matches_record compares sizes
            dbt_env(paths.raw_dir, raw_format, paths.build_db) | {"XSELL_RAW_CHECKED": "1"},
            target_path=target_path,
        )
    except Interrupted as error:
        raise PipelineError(
            "dbt build", f"Interrupted ({error}): dbt was stopped; nothing was published."
        ) from error
    except OSError as error:
        raise PipelineError("dbt build", os_error_message(error)) from error
    if not result.ok:
        raise PipelineError("dbt build", explain_dbt_failure(result, paths))
    with _step("dbt build"):
        _restrict(paths.build_db)

    # The quality gate stands between the build and the publish: BI tools never see
    # marts that failed an expectation.
    log("quality gate: Great Expectations suites in gx/")
    with _step("quality gate"):
        quality = run_quality_gate(paths)
    log(str(quality))
    with _step("quality gate"):
        record_passed(paths.build_db, {"raw_dir": str(paths.raw_dir), "raw_format": raw_format})

    with _step("report"):
        report = build_report(paths) + "\n" + coverage_report(paths)
    if not publish:
        return report + (
            f"\nNot published (--no-publish): {paths.published_db} is unchanged; "
            "`xsell publish` publishes this build."
        )
    log(f"publish: {paths.build_db} -> {paths.published_db}")
    try:
        with _step("publish"):
            published = publish_build(
                paths.build_db, paths.published_db,
                expected_sha256=passed_sha256(paths.build_db),
            )
    except PublishError as error:
        raise PipelineError("publish", str(error)) from error
    # Reports are rendered from the published file only: never from a build that failed.
    log(f"reports: {paths.published_db} -> {paths.reports_dir}")
    try:
        with _step("reports"):
            rendered = render_reports(paths.published_db, paths.reports_dir)
    except ReportError as error:
        raise PipelineError("reports", str(error)) from error
    return "\n".join([report, published.describe(), rendered.describe()])


def prepare_inputs(
    paths: Paths, generate_if_empty: bool | None, seed: int, log: Callable[[str], None],
    accept_raw_changes: bool = False,
) -> str:
    """The raw format of a folder ready to build, generating the synthetic store first
    where that is allowed; PipelineError("inputs") naming what is missing otherwise."""
    raw = paths.raw_dir
    try:
        raw_format = detect_raw_format(raw)
    except ValueError as error:
        raise PipelineError("inputs", str(error)) from error
    if raw_format is None:
        _generate_or_refuse(paths, generate_if_empty, seed, log)
        raw_format = "parquet"
    try:
        if accept_raw_changes:
            accepted = rawfiles.accept(raw)
            log(f"Raw files accepted as they are now ({raw / rawfiles.RECORD})"
                + (": " + "; ".join(accepted) if accepted else ": none had changed."))
        for note in rawfiles.verify(raw, raw_format):
            log(note)
        check_structure(raw, raw_format)
    except (rawfiles.RawFilesError, InputError) as error:
        raise PipelineError("inputs", str(error)) from error
    return raw_format


def _generate_or_refuse(paths: Paths, generate_if_empty: bool | None, seed: int,
                        log: Callable[[str], None]) -> None:
    raw = paths.raw_dir
    tables, others = describe_folder(raw)
    where = f"{raw} does not exist" if not raw.exists() else (
        f"{raw} is empty" if not tables and not others else f"{raw} holds no transactions file"
    )
    if tables:
        found = {name.rsplit(".", 1)[0] for name in tables}
        missing = [t for t in RAW_TABLES if t not in found]
        if generate_if_empty is not True or rawfiles.foreign_files(raw):
            raise PipelineError(
                "inputs",
                f"{raw} holds {', '.join(sorted(tables))} but no transactions file "
                f"(transactions.parquet or transactions.csv); also missing: "
                f"{', '.join(t for t in missing if t != 'transactions') or 'nothing else'}. "
                "Add the transactions file (`xsell import` writes every table), or check "
                "--raw-dir / XSELL_RAW_DIR. Nothing was generated or built.",
            )
    if generate_if_empty is False:
        raise PipelineError(
            "inputs",
            f"No transactions.parquet or transactions.csv: {where}. "
            "Run `xsell generate` or `xsell import`, or drop --no-generate.",
        )
    if generate_if_empty is None and not paths.raw_dir_is_default:
        raise PipelineError(
            "inputs",
            f"No transactions.parquet or transactions.csv: {where}. Check --raw-dir / "
            "XSELL_RAW_DIR, run `xsell generate` or `xsell import`, or pass --generate "
            "to generate the synthetic store there.",
        )
    if generate_if_empty is None and others and not set(others) <= set(rawfiles.OWN_FILES):
        raise PipelineError(
            "inputs",
            f"{raw} holds {', '.join(others[:5])}{' ...' if len(others) > 5 else ''} and no "
            "transactions: it is not a folder xsell generated. Pass --generate to generate "
            "the synthetic store beside those files, or choose an empty folder.",
        )
    from xsell.generate import generate_store

    log(f"No raw data ({where}): generating the synthetic store (seed {seed}).")
    try:
        generate_store(raw, seed=seed, progress=log)
    except rawfiles.RawFilesError as error:
        raise PipelineError("inputs", str(error)) from error


def run_quality_gate(paths: Paths) -> ValidationReport:
    """Validate the build file against the suites in gx/; PipelineError on any failure."""
    try:
        quality = validate(
            paths.build_db,
            gx_dir=paths.project_dir / "gx",
            docs_dir=paths.reports_dir / "data_docs",
        )
    except QualityError as error:
        raise PipelineError("quality gate", str(error)) from error
    if not quality.ok:
        raise PipelineError("quality gate", str(quality))
    return quality


def parse_vars(text: str | None, project_dir: Path) -> dict:
    """dbt vars from the command line (YAML or JSON, as `dbt --vars` takes them), checked
    against the vars dbt_project.yml declares: a misspelt name would otherwise be ignored
    without a word. Their values are checked by dbt itself (macro validate_vars)."""
    if text is None or not text.strip():
        return {}
    try:
        variables = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PipelineError("inputs", f"--vars is not valid YAML or JSON: {error}") from error
    if not isinstance(variables, Mapping):
        raise PipelineError(
            "inputs", f"--vars must be a mapping such as '{{min_support: 0.02}}', got {text!r}"
        )
    declared = yaml.safe_load((project_dir / "dbt_project.yml").read_text()).get("vars") or {}
    known = set(declared) | {"python_models"}
    unknown = sorted(str(name) for name in variables if name not in known)
    if unknown:
        raise PipelineError(
            "inputs",
            f"--vars: unknown dbt var(s) {', '.join(unknown)}; the vars are declared and "
            f"documented in {project_dir / 'dbt_project.yml'}: {', '.join(sorted(known))}",
        )
    return dict(variables)


def coverage_report(paths: Paths) -> str:
    """Which analyses ran on the data and, for the others, why (marts.fct_analysis_coverage)."""
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        coverage = read_coverage(con)
    if coverage is None:
        return "Analyses: the build has no marts.fct_analysis_coverage"
    return coverage.summary()


def build_report(paths: Paths) -> str:
    """Rows staged and quarantined per raw table, and where the outputs are."""
    lines = ["", f"Build file: {paths.build_db}", "Raw tables: staged / quarantined rows"]
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        for table in RAW_TABLES:
            staged = con.execute(f"select count(*) from staging.stg_pos__{table}").fetchone()[0]
            reasons = con.execute(
                f"select rejection_reason, count(*) from staging.quarantine_pos__{table} "
                "group by 1 order by 2 desc, 1"
            ).fetchall()
            rejected = sum(n for _, n in reasons)
            lines.append(f"  {table:<18} {staged:>12,} / {rejected:,}"
                         + (f" ({_reasons_text(reasons, 3)})" if reasons else ""))
        defects = con.execute(
            "select defect_reason, count(*) from staging.stg_pos__product_attribute_defects "
            "group by 1 order by 2 desc, 1"
        ).fetchall()
        if defects:
            lines.append(
                "Product attributes set aside (products and their sales kept; "
                "staging.stg_pos__product_attribute_defects): "
                + ", ".join(f"{reason} {n:,}" for reason, n in defects)
            )
        schemas = [
            row[0]
            for row in con.execute(
                "select distinct table_schema from information_schema.tables "
                "where table_catalog = current_database() order by 1"
            ).fetchall()
        ]
    lines.append(f"Schemas: {', '.join(schemas)}")
    lines.append("Lineage and docs: dbt docs generate && dbt docs serve")
    return "\n".join(lines)


# --- failures in words ----------------------------------------------------------------


def explain_dbt_failure(result: DbtResult, paths: Paths) -> str:
    """dbt's failing nodes, plus what they mean: the quarantined share per reason for a
    quarantine test, XSELL_MEMORY_LIMIT for a memory error, the folder for a full disk."""
    lines = [result.summary()]
    for failure in result.failures:
        for table in RAW_TABLES:
            if f"quarantine_share_within_limits_quarantine_pos__{table}_" in failure.unique_id:
                lines.append(quarantine_breakdown(paths.build_db, table, failure.message))
    text = " ".join([result.error, *(f.message for f in result.failures)]).lower()
    if "out of memory" in text or "memoryerror" in text or "failed to allocate" in text:
        lines.append(memory_hint())
    if "no space left" in text:
        lines.append(
            f"The disk ran full while dbt wrote {paths.build_db}: free space there, or set "
            "XSELL_BUILD_DB to a file on a disk with room."
        )
    return "\n".join(lines)


def quarantine_breakdown(build_db: Path, table: str, message: str) -> str:
    """"transactions: 31.2 % of 9,104 raw rows quarantined (limit 10 %): reason n, ..." """
    limit = re.search(r"fail if >(\d+)", message or "")
    limit_text = f" (limit {int(limit.group(1)) / 100:g} %)" if limit else ""
    try:
        with duckdb.connect(str(build_db), read_only=True) as con:
            total = con.execute(f"select count(*) from staging.base_pos__{table}").fetchone()[0]
            reasons = con.execute(
                f"select rejection_reason, count(*) from staging.base_pos__{table} "
                "where rejection_reason is not null group by 1 order by 2 desc, 1"
            ).fetchall()
    except duckdb.Error:
        return (
            f"{table}: too many rows quarantined{limit_text}; "
            f"see staging.quarantine_pos__{table}."
        )
    rejected = sum(n for _, n in reasons)
    share = 100.0 * rejected / total if total else 0.0
    return (
        f"{table}: {share:.1f} % of {total:,} raw rows quarantined{limit_text}, by reason: "
        f"{_reasons_text(reasons, 5)}. The rows and their raw values are in "
        f"staging.quarantine_pos__{table}."
    )


def _reasons_text(reasons: list[tuple[str, int]], shown: int) -> str:
    """"zero_quantity 12, unknown_product 3 and 2 more reasons": the first ``shown``."""
    top = ", ".join(f"{reason} {n:,}" for reason, n in reasons[:shown])
    more = f" and {len(reasons) - shown} more reasons" if len(reasons) > shown else ""
    return top + more


def memory_hint() -> str:
    limit = os.environ.get("XSELL_MEMORY_LIMIT", "2GB")
    return (
        f"Out of memory. DuckDB may use XSELL_MEMORY_LIMIT (now {limit}) before it spills "
        "to disk: raise it if the machine has the memory (e.g. XSELL_MEMORY_LIMIT=4GB), or "
        "lower it to leave the Python models more, and XSELL_THREADS=1 builds one model "
        "at a time."
    )


def os_error_message(error: OSError) -> str:
    """One line for a failed file operation: what, where, and what to do."""
    path = error.filename or ""
    if error.filename2:
        path = f"{path} -> {error.filename2}"
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        return f"No space left on the device while writing {path}: free space there, or " \
               "point the build (XSELL_BUILD_DB), published file (XSELL_PUBLISHED_DB) or " \
               "reports (XSELL_REPORTS_DIR) at another disk."
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Cannot write {path}: {reason}. Make the folder writable for this user, or " \
               "point XSELL_BUILD_DB, XSELL_PUBLISHED_DB or XSELL_REPORTS_DIR elsewhere."
    return f"{reason}: {path}" if path else reason


class _step:
    """Turn OSError and MemoryError inside the block into PipelineError(step)."""

    def __init__(self, step: str):
        self.step = step

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _traceback):
        if isinstance(error, OSError):
            raise PipelineError(self.step, os_error_message(error)) from error
        if isinstance(error, MemoryError):
            raise PipelineError(self.step, memory_hint()) from error
        if isinstance(error, duckdb.Error) and "out of memory" in str(error).lower():
            raise PipelineError(self.step, f"{str(error).splitlines()[0]} {memory_hint()}") \
                from error
        if isinstance(error, duckdb.IOException):
            raise PipelineError(self.step, str(error).splitlines()[0]) from error
        return False


def _restrict(path: Path) -> None:
    """A build file that existed before this run keeps its mode: give it XSELL_FILE_MODE."""
    if path.exists():
        os.chmod(path, file_mode())


_REGISTERED: list[bool] = []


def _die_with_this_process() -> None:
    """Processes forked from this one (the quality gate's workers) die with it (Linux)."""
    if _REGISTERED or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    forking = [os.getpid()]

    def before() -> None:
        forking[0] = os.getpid()

    def in_child() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != forking[0]:  # the parent died before the request
            os._exit(1)

    os.register_at_fork(before=before, after_in_child=in_child)
    _REGISTERED.append(True)
