"""The main job behind `xsell run`: (generate) -> dbt build -> quality gate -> publish
-> reports.

Each step raises PipelineError naming the step and what failed, so the command
stops at the first failure with a message a person can act on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import yaml

from xsell.contract import RAW_TABLES
from xsell.coverage import read_coverage
from xsell.dbt_runner import dbt_env, run_dbt
from xsell.project import Paths, detect_raw_format
from xsell.publish import PublishError
from xsell.publish import publish as publish_build
from xsell.quality import QualityError, ValidationReport, preload, validate
from xsell.reports import ReportError, render_reports


class PipelineError(RuntimeError):
    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


def run_pipeline(
    paths: Paths,
    *,
    generate_if_empty: bool = True,
    seed: int = 42,
    log: Callable[[str], None] = print,
    target_path: Path | None = None,
    publish: bool = True,
    incremental: bool = False,
    dbt_vars: Mapping | None = None,
) -> str:
    """Build, gate, publish and render. The incremental models (line fact, baskets) are
    rebuilt from scratch unless `incremental`: the raw folder may have been replaced by
    another store or import since the last build, which only a full refresh handles.
    `dbt_vars` (see parse_vars) reach every dbt node; the gate and the reports read what
    the build made of them (e.g. marts.fct_analysis_coverage)."""
    raw_format = detect_raw_format(paths.raw_dir)
    if raw_format is None:
        if not generate_if_empty:
            raise PipelineError(
                "inputs",
                f"No transactions.parquet or transactions.csv in {paths.raw_dir}. "
                "Run `xsell generate` or `xsell import`, or drop --no-generate.",
            )
        from xsell.generate import generate_store

        log(f"No raw data in {paths.raw_dir}: generating the synthetic store (seed {seed}).")
        generate_store(paths.raw_dir, seed=seed, progress=log)
        raw_format = "parquet"

    paths.build_db.parent.mkdir(parents=True, exist_ok=True)
    preload()  # imports Great Expectations in the background while dbt builds
    mode = "incremental" if incremental else "full refresh"
    log(f"dbt build ({mode}): {paths.raw_dir} ({raw_format}) -> {paths.build_db}")
    command = ["build"] if incremental else ["build", "--full-refresh"]
    if dbt_vars:
        log(f"dbt vars: {json.dumps(dict(dbt_vars), sort_keys=True)}")
        command += ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]
    result = run_dbt(
        command,
        paths.project_dir,
        dbt_env(paths.raw_dir, raw_format, paths.build_db),
        target_path=target_path,
    )
    if not result.ok:
        raise PipelineError("dbt build", result.summary())

    # The quality gate stands between the build and the publish: BI tools never see
    # marts that failed an expectation.
    log("quality gate: Great Expectations suites in gx/")
    quality = run_quality_gate(paths)
    log(str(quality))

    report = build_report(paths) + "\n" + coverage_report(paths)
    if not publish:
        return report + f"\nNot published (--no-publish): {paths.published_db} is unchanged."
    log(f"publish: {paths.build_db} -> {paths.published_db}")
    try:
        published = publish_build(paths.build_db, paths.published_db)
    except PublishError as error:
        raise PipelineError("publish", str(error)) from error
    # Reports are rendered from the published file only: never from a build that failed.
    log(f"reports: {paths.published_db} -> {paths.reports_dir}")
    try:
        rendered = render_reports(paths.published_db, paths.reports_dir)
    except ReportError as error:
        raise PipelineError("reports", str(error)) from error
    return "\n".join([report, published.describe(), rendered.describe()])


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
            rejected = con.execute(
                f"select count(*) from staging.quarantine_pos__{table}"
            ).fetchone()[0]
            lines.append(f"  {table:<18} {staged:>12,} / {rejected:,}")
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
