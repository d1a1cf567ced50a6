"""The `xsell` command: generate or import data, then build, check and publish."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from xsell.project import Paths, apply_file_mode, detect_raw_format


class CliPath(click.Path):
    """A path given on the command line, made absolute from the current directory (as
    any command-line tool reads it). Paths from XSELL_* variables, which dbt also reads,
    are relative to the project instead (xsell.project.Paths)."""

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        return None if path is None else Path(os.path.abspath(path))


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that cleanup runs (like Ctrl-C)."""


def _raise_terminated(signum, _frame) -> None:
    raise Terminated(signum)


def _os_failure(command: str, error: OSError) -> None:
    from xsell.pipeline import os_error_message

    _echo_err(f"xsell {command} failed: {os_error_message(error)}")
    sys.exit(1)


@click.group()
@click.version_option(package_name="xsell")
def main() -> None:
    """xsell: retail cross-sell and customer-value analytics, built with dbt on DuckDB."""
    # Files xsell and the dbt it starts write hold customer data: owner-only by default.
    try:
        apply_file_mode()
    except ValueError as error:
        _echo_err(f"xsell: {error}")
        sys.exit(2)


@main.command()
@click.option("--out", "out_dir", type=CliPath(path_type=Path), default=None,
              help="Folder for the raw tables [default: data/raw in the project].")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Days of history [default: from the store config, 365].")
@click.option("--stores", type=click.IntRange(min=1), default=None,
              help="Number of stores [default: from the store config].")
@click.option("--visits-per-day", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Average store visits (receipts) per store and day [default: from the config].")
@click.option("--start-date", default=None, help="First day, YYYY-MM-DD [default: from config].")
@click.option("--dirty-fraction", type=click.FloatRange(0, 0.5), default=0.0, show_default=True,
              help="Share of transaction lines made defective, for quarantine tests.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True)
@click.option("--config", "config_path", type=CliPath(exists=True, path_type=Path),
              default=None, help="A store config YAML replacing the built-in one.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def generate(out_dir, seed, days, stores, visits_per_day, start_date, dirty_fraction, fmt,
             config_path, quiet) -> None:
    """Generate a synthetic store as raw-contract tables.

    Writes only into an empty folder or one xsell generated or imported into: never over
    files it did not write."""
    from xsell.generate import generate_store, load_config
    from xsell.rawfiles import RawFilesError

    paths = Paths.resolve(raw_dir=out_dir)
    started = time.perf_counter()
    try:
        summary = generate_store(
            paths.raw_dir,
            seed=seed,
            days=days,
            stores=stores,
            visits_per_day=visits_per_day,
            start_date=start_date,
            dirty_fraction=dirty_fraction,
            fmt=fmt,
            config=load_config(config_path) if config_path else None,
            progress=None if quiet else _echo_err,
        )
    except RawFilesError as error:
        _echo_err(f"xsell generate failed: {error}")
        sys.exit(1)
    except OSError as error:
        _os_failure("generate", error)
    elapsed = time.perf_counter() - started
    click.echo(f"Synthetic store written to {paths.raw_dir} in {elapsed:.1f} s:")
    for table, rows in summary.row_counts.items():
        click.echo(f"  {table:<18} {rows:>12,} rows")
    injected = {t: r for t, r in summary.dirty.items() if r}
    if injected:
        click.echo("Injected defects (expected in quarantine): " + ", ".join(
            f"{t}: {sum(r.values())}" for t, r in injected.items()))


@main.group(name="import")
def import_() -> None:
    """Convert real data into the raw contract."""


def _run_import(function, *args, **kwargs) -> None:
    from xsell.importers import DataImportError

    try:
        summary = function(*args, **kwargs)
    except (DataImportError, FileNotFoundError, ValueError) as error:  # ValueError: XSELL_TIMEZONE
        _echo_err(f"xsell import failed: {error}")
        sys.exit(1)
    except OSError as error:
        _os_failure("import", error)
    click.echo(summary.describe())
    click.echo("Next: xsell run --raw-dir " + str(summary.out_dir))


@import_.command(name="online-retail")
@click.argument("path", type=CliPath(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=CliPath(path_type=Path), default=None,
              help="Folder for the raw tables [default: data/raw in the project].")
@click.option("--large-price-quantile", type=click.FloatRange(0, 1), default=0.95,
              show_default=True,
              help="Products whose median price reaches this quantile are LARGE (anchors).")
def import_online_retail_command(path, out_dir, large_price_quantile) -> None:
    """Import the UCI Online Retail data set (CSV, CSV.gz or XLSX)."""
    from xsell.importers import import_online_retail

    paths = Paths.resolve(raw_dir=out_dir)
    _run_import(import_online_retail, path, paths.raw_dir,
                large_price_quantile=large_price_quantile)


@import_.command(name="csv")
@click.argument("path", type=CliPath(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", "mapping_path", required=True,
              type=CliPath(exists=True, dir_okay=False, path_type=Path),
              help="YAML mapping of your columns onto the raw contract.")
@click.option("--out", "out_dir", type=CliPath(path_type=Path), default=None,
              help="Folder for the raw tables [default: data/raw in the project].")
def import_csv_command(path, mapping_path, out_dir) -> None:
    """Import any line-level transactions file (CSV, Parquet, XLSX) through a mapping.

    Prints what was derived (receipts, prices, anchors) and every warning; both are kept
    in _import.json. Example mapping: examples/ta_feng.yml.
    """
    from xsell.importers import import_mapped

    paths = Paths.resolve(raw_dir=out_dir)
    _run_import(import_mapped, path, mapping_path, paths.raw_dir)


@main.command()
@click.option("--raw-dir", type=CliPath(path_type=Path), default=None,
              help="Raw contract folder [default: $XSELL_RAW_DIR or data/raw].")
@click.option("--build-db", type=CliPath(path_type=Path), default=None,
              help="DuckDB file dbt builds into [default: warehouse/xsell_build.duckdb].")
@click.option("--generate/--no-generate", "generate_if_empty", default=None,
              help="--generate: generate the synthetic store when the raw folder has no "
                   "transactions (never over files xsell did not write). --no-generate: "
                   "never. Default: only into the project's data/raw when it holds no raw "
                   "data.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed for the synthetic store, when one is generated.")
@click.option("--publish/--no-publish", "publish_result", default=True, show_default=True,
              help="Publish the build file for BI tools once the build has passed.")
@click.option("--incremental/--full-refresh", "incremental", default=False, show_default=True,
              help="--incremental appends the new days of the raw data to the line fact and "
                   "baskets already in the build file instead of rebuilding them (for a raw "
                   "folder that only grew by new days; the consistency tests stop the build "
                   "otherwise).")
@click.option("--vars", "dbt_vars", default=None, metavar="YAML",
              help="dbt vars for every model and test, as dbt takes them (YAML or JSON), e.g. "
                   "'{min_support: 0.02, ml_holdout_days: 14}'. Names are checked against "
                   "dbt_project.yml.")
@click.option("--accept-raw-changes", is_flag=True,
              help="Accept raw files changed since `xsell generate` / `xsell import` wrote "
                   "them: record them as they are now, then build.")
def run(raw_dir, build_db, generate_if_empty, seed, publish_result, incremental, dbt_vars,
        accept_raw_changes) -> None:
    """The main job: (generate) -> dbt build -> quality gate -> publish -> reports; prints
    which analyses ran on the data and why the others did not."""
    from xsell.pipeline import PipelineError, os_error_message, parse_vars, run_pipeline

    paths = Paths.resolve(raw_dir=raw_dir, build_db=build_db)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        variables = parse_vars(dbt_vars, paths.project_dir)
        report = run_pipeline(
            paths, generate_if_empty=generate_if_empty, seed=seed, log=click.echo,
            publish=publish_result, incremental=incremental, dbt_vars=variables,
            accept_raw_changes=accept_raw_changes,
        )
    except PipelineError as error:
        _echo_err(f"xsell run failed at step '{error.step}':\n{error}")
        sys.exit(1)
    except (KeyboardInterrupt, Terminated) as error:
        name = "SIGTERM" if isinstance(error, Terminated) else "SIGINT"
        _echo_err(f"xsell run interrupted ({name}): stopped; nothing more was published.")
        sys.exit(143 if isinstance(error, Terminated) else 130)
    except OSError as error:
        _echo_err(f"xsell run failed: {os_error_message(error)}")
        sys.exit(1)
    except MemoryError:
        from xsell.pipeline import memory_hint

        _echo_err(f"xsell run failed: {memory_hint()}")
        sys.exit(1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(report)


@main.command()
@click.option("--build-db", type=CliPath(path_type=Path), default=None,
              help="The build file to publish [default: warehouse/xsell_build.duckdb].")
@click.option("--force", is_flag=True,
              help="Publish even without a record that this build passed dbt and the "
                   "quality gate (says so).")
def publish(build_db, force) -> None:
    """Copy the build file atomically to the published file BI tools read.

    Only a build that `xsell run` built and gated (and that has not changed since) is
    published, unless --force."""
    from xsell.pipeline import os_error_message
    from xsell.publish import PublishError, passed_record_path, passed_sha256
    from xsell.publish import publish as publish_build
    from xsell.runlock import RunLockError, run_lock

    paths = Paths.resolve(build_db=build_db)
    expected = passed_sha256(paths.build_db)
    if expected is None and not force and paths.build_db.is_file():
        _echo_err(
            f"xsell publish failed:\n{paths.build_db} has no record of a build that passed "
            f"dbt and the quality gate ({passed_record_path(paths.build_db)}): its dbt build "
            "or gate failed, it was interrupted, or it was built by hand. Build it with "
            "`xsell run` (`--no-publish` to publish later), or publish it anyway with "
            "`xsell publish --force`."
        )
        sys.exit(1)
    if force:
        _echo_err(
            f"Publishing {paths.build_db} with --force: not checked against a record of a "
            "passing dbt build and quality gate."
        )
    try:
        with run_lock(paths.build_db, paths.published_db, command="xsell publish"):
            published = publish_build(
                paths.build_db, paths.published_db,
                expected_sha256=None if force else expected,
            )
    except (PublishError, RunLockError) as error:
        _echo_err(f"xsell publish failed:\n{error}")
        sys.exit(1)
    except OSError as error:
        _echo_err(f"xsell publish failed: {os_error_message(error)}")
        sys.exit(1)
    click.echo(published.describe())


@main.command()
@click.option("--format", "fmt", type=click.Choice(["parquet"]), default="parquet",
              show_default=True)
@click.option("--db", "db", type=CliPath(path_type=Path), default=None,
              help="DuckDB file to export [default: the published warehouse/xsell.duckdb].")
@click.option("--out", "out_dir", type=CliPath(file_okay=False, path_type=Path),
              default=None, help="Output folder [default: warehouse/export].")
def export(fmt, db, out_dir) -> None:
    """Write every table of the schemas marts and ml as Parquet, plus manifest.json."""
    from xsell.export import ExportError, export_parquet

    paths = Paths.resolve()
    try:
        exported = export_parquet(
            db or paths.published_db, out_dir or paths.published_db.parent / "export"
        )
    except ExportError as error:
        _echo_err(f"xsell export failed:\n{error}")
        sys.exit(1)
    except OSError as error:
        _os_failure("export", error)
    click.echo(exported.describe())


@main.command()
@click.option("--db", type=CliPath(path_type=Path), default=None,
              help="DuckDB file to report on [default: the published warehouse/xsell.duckdb].")
@click.option("--out", "out_dir", type=CliPath(path_type=Path), default=None,
              help="Folder for the HTML pages [default: $XSELL_REPORTS_DIR or reports/out].")
def report(db, out_dir) -> None:
    """Render the HTML reports (offline, interactive charts) from the published file."""
    from xsell.reports import ReportError, render_reports

    paths = Paths.resolve()
    try:
        summary = render_reports(db or paths.published_db, out_dir or paths.reports_dir)
    except ReportError as error:
        _echo_err(f"xsell report failed: {error}")
        sys.exit(1)
    except OSError as error:
        _os_failure("report", error)
    click.echo(summary.describe())


@main.command(name="validate")
@click.option("--build-db", type=CliPath(path_type=Path), default=None,
              help="Built file to validate [default: warehouse/xsell_build.duckdb].")
@click.option("--docs/--no-docs", "write_docs", default=True, show_default=True,
              help="Write Great Expectations Data Docs to reports/out/data_docs.")
@click.option("--bands", is_flag=True,
              help="Also check the bands of the synthetic store (gx/xsell_thresholds.yml): "
                   "figures that describe the generated store, not every store.")
def validate_command(build_db, write_docs, bands) -> None:
    """Run the Great Expectations suites in gx/ on the build file; exit 1 on a failure."""
    from xsell.quality import QualityError, validate

    paths = Paths.resolve(build_db=build_db)
    try:
        report = validate(paths.build_db, gx_dir=paths.project_dir / "gx",
                          docs_dir=paths.reports_dir / "data_docs" if write_docs else None,
                          bands=bands)
    except QualityError as error:
        _echo_err(f"xsell validate failed: {error}")
        sys.exit(1)
    except OSError as error:
        _os_failure("validate", error)
    click.echo(str(report))
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option("--manifest", "manifest_path", type=CliPath(path_type=Path), default=None,
              help="dbt manifest [default: target/manifest.json of the project].")
@click.option("--build-db", type=CliPath(path_type=Path), default=None,
              help="Built file whose columns must all be documented [default: the build file].")
@click.option("--max-children", type=click.IntRange(min=1), default=None,
              help="Most direct children a model may have [default: 10].")
def health(manifest_path, build_db, max_children) -> None:
    """Check documentation, key tests and layering from dbt's manifest; exit 1 on problems."""
    from xsell.health import DEFAULT_MAX_CHILDREN, check_project, load_manifest, relation_columns

    paths = Paths.resolve(build_db=build_db)
    manifest = load_manifest(manifest_path or paths.project_dir / "target" / "manifest.json")
    columns = relation_columns(paths.build_db) if paths.build_db.exists() else None
    problems = check_project(manifest, columns, max_children=max_children or DEFAULT_MAX_CHILDREN)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        _echo_err(f"{len(problems)} project health problem(s)")
        sys.exit(1)
    note = "" if columns is not None else " (columns not checked: no build file)"
    click.echo(f"project health: no problems{note}")


@main.command()
@click.option("--raw-dir", type=CliPath(path_type=Path), default=None)
def status(raw_dir) -> None:
    """Show where the project, raw data and build file are."""
    paths = Paths.resolve(raw_dir=raw_dir)
    try:
        raw_format = detect_raw_format(paths.raw_dir) or "absent"
    except ValueError as error:  # both formats
        raw_format = str(error)
    click.echo(f"project:    {paths.project_dir}")
    click.echo(f"raw data:   {paths.raw_dir} ({raw_format})")
    built = "present" if paths.build_db.exists() else "absent"
    click.echo(f"build file: {paths.build_db} ({built})")
    published = "present" if paths.published_db.exists() else "absent"
    click.echo(f"published:  {paths.published_db} ({published})")



# --------------------------------------------------------------------------- activation


@main.command()
@click.option("--db", type=CliPath(path_type=Path), default=None,
              help="The published file to serve [default: $XSELL_PUBLISHED_DB or "
                   "warehouse/xsell.duckdb]. Never the build file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 32), default=1, show_default=True,
              help="Processes answering requests; each holds the lookups in memory.")
def serve(db, host, port, workers) -> None:
    """A read-only JSON API over the published file (OpenAPI page at /docs); follows a
    republish within a second."""
    import duckdb

    from xsell.serve.app import serve as run_server

    paths = Paths.resolve()
    path = (db or paths.published_db).resolve()
    if path == paths.build_db.resolve():
        _echo_err(f"xsell serve: {path} is the build file; serve the published file "
                  f"({paths.published_db}), which a publish replaces whole.")
        sys.exit(1)
    if not path.is_file():
        _echo_err(f"xsell serve: no published file at {path}: run `xsell run` first.")
        sys.exit(1)
    try:
        run_server(path, host, port, workers=workers)
    except (OSError, duckdb.Error) as error:
        _echo_err(f"xsell serve failed: {error}")
        sys.exit(1)



@main.command()
@click.option("--db", type=CliPath(path_type=Path), default=None,
              help="The published file [default: $XSELL_PUBLISHED_DB or warehouse/xsell.duckdb].")
@click.option("--segment", default=None, help='RFM segment, e.g. "At Risk".')
@click.option("--ml-segment", default=None, help='KMeans segment, e.g. "High-value loyal".')
@click.option("--rfm", "rfm_rule", default=None, metavar="RULE",
              help="RFM scores (1-5), e.g. 'R=1-2,F=4-5' (lapsed frequent buyers).")
@click.option("--min-restaurant-propensity", type=click.FloatRange(0, 1), default=None,
              help="The model's P(restaurant visit) on the member's latest receipt, at least.")
@click.option("--likely-buyers", metavar="PRODUCT_ID", default=None,
              help="Customers whose recommendations hold this product, best placed first.")
@click.option("--all", "everyone", is_flag=True, help="Every customer (no filter).")
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="At most this many customers (by rank for --likely-buyers, else by CLV).")
@click.option("--offers", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Next best offers per customer.")
@click.option("--format", "fmt", type=click.Choice(["both", "csv", "parquet"]), default="both",
              show_default=True)
@click.option("--out", "out_dir", type=CliPath(path_type=Path), required=True,
              help="Folder for audience.csv, audience.parquet and manifest.json: new, empty "
                   "or written by an earlier xsell audience (nothing else is overwritten).")
def audience(db, segment, ml_segment, rfm_rule, min_restaurant_propensity, likely_buyers,
             everyone, top, offers, fmt, out_dir) -> None:
    """Campaign files for CRM and e-mail tools: the customers that pass every filter, with
    segment, CLV, their next best offers (names and reasons) and a manifest."""
    from xsell.audience import AudienceError, AudienceFilter, parse_rfm_rule, write_audience

    paths = Paths.resolve()
    try:
        chosen = AudienceFilter(
            segment=segment, ml_segment=ml_segment,
            rfm=parse_rfm_rule(rfm_rule) if rfm_rule else {},
            min_restaurant_propensity=min_restaurant_propensity,
            likely_buyers=likely_buyers, top=top, everyone=everyone,
        )
        written = write_audience(
            (db or paths.published_db).resolve(), out_dir.resolve(), chosen, offers=offers,
            formats=("csv", "parquet") if fmt == "both" else (fmt,),
        )
    except (AudienceError, OSError) as error:
        _echo_err(f"xsell audience failed: {error}")
        sys.exit(1)
    click.echo(written.describe())


if __name__ == "__main__":
    main()
