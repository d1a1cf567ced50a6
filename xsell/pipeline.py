"""The main job behind `xsell run`: (generate) -> dbt build -> quality gate -> publish
-> reports.

Each step raises PipelineError naming the step and what failed, so the command
stops at the first failure with a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from xsell.contract import RAW_TABLES
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
) -> str:
    """Build, gate, publish and render. The incremental models (line fact, baskets) are
    rebuilt from scratch unless `incremental`: the raw folder may have been replaced by
    another store or import since the last build, which only a full refresh handles."""
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
    result = run_dbt(
        ["build"] if incremental else ["build", "--full-refresh"],
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

    report = build_report(paths)
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
