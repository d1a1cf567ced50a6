"""The quality gate: the Great Expectations suites in gx/ on the built synthetic store.

One clean validation and two of corrupted copies of the build file (each validation
costs seconds of GE time), shared by the assertions below; they validate in two worker
processes, and one corrupted copy again in this process to compare. Every validation runs
on a copy of gx/ in tmp, so the repository's gx/uncommitted/ is never written.
"""

from __future__ import annotations

import filecmp
import json
import multiprocessing
import os
import re
import shutil
import signal
from pathlib import Path
from urllib.parse import unquote

import duckdb
import great_expectations.expectations as gxe
import pandas as pd
import pytest
from support import CHROMIUM, PROJECT_DIR, dump_dom

from xsell.quality import QualityError, validate
from xsell.quality import gate as gate_module
from xsell.quality.docs_offline import offline_page
from xsell.quality.gate import CHECKS_SUITE, load_thresholds, parameters
from xsell.quality.reconcile import CHECKS, reconcile
from xsell.quality.report import format_value
from xsell.quality.suites import all_suites

pytestmark = pytest.mark.dbt

GX_DIR = PROJECT_DIR / "gx"


def copy_gx(target: Path) -> Path:
    shutil.copytree(GX_DIR, target, ignore=shutil.ignore_patterns("uncommitted"))
    return target


def copy_build(build_db: Path, target: Path) -> Path:
    shutil.copyfile(build_db, target)
    return target


def by_suite(report, suite: str, column: str | None = None):
    return [f for f in report.failures
            if f.suite == suite and (column is None or f.column == column)]


def by_check(report, check: str):
    return [f for f in report.failures if f.check == check]


@pytest.fixture(scope="module")
def clean(store_build, tmp_path_factory):
    work = tmp_path_factory.mktemp("quality_clean")
    gx_dir = copy_gx(work / "gx")
    # bands: the synthetic store's own figures are checked on the synthetic store
    report = validate(store_build["db"], gx_dir=gx_dir, docs_dir=work / "docs", workers=2,
                      bands=True)
    return {"report": report, "gx": gx_dir, "docs": work / "docs", "db": store_build["db"]}


# --- the clean build passes ----------------------------------------------------------------


def test_clean_build_passes_every_suite(clean):
    report = clean["report"]
    assert report.ok, str(report)
    assert report.failures == [] and report.warnings == []
    specs = all_suites()
    assert sorted(s.suite for s in report.suites) == sorted(s.name for s in specs)
    # every declared expectation was evaluated: none silently dropped on the way to gx/
    assert report.evaluated == sum(len(s.expectations) for s in specs)
    assert str(report).startswith(f"Quality gate passed: {report.evaluated:,} expectations")


def test_frames_hold_every_row_of_their_table(clean):
    rows = {s.suite: s.rows for s in clean["report"].suites}
    with duckdb.connect(str(clean["db"]), read_only=True) as con:
        for table in ("staging.stg_pos__transactions", "marts.fct_attach_rates",
                      "marts.dim_customers", "ml.ml_customer_segments"):
            assert rows[table] == con.execute(f"select count(*) from {table}").fetchone()[0]
    assert rows["staging.stg_pos__transactions"] > 100_000


def test_parameters_are_the_bands_and_counts_of_the_build(clean):
    thresholds = load_thresholds(GX_DIR)
    with duckdb.connect(str(clean["db"]), read_only=True) as con:
        tables = {r[0] for r in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
        values = parameters(con, tables, thresholds)
        profiles = con.execute("select count(*) from staging.stg_pos__customers").fetchone()[0]
    assert values["profile_rows"] == profiles > 1000
    assert values["attach_rate_all_min"] == thresholds["attach_rate_all_min"] == 0.5
    used = {
        value["$PARAMETER"]
        for spec in all_suites() for e in spec.expectations
        for value in e.configuration.kwargs.values()
        if isinstance(value, dict) and "$PARAMETER" in value
    }
    assert used and used <= set(values), used - set(values)


def test_reconciliation_agrees_exactly_on_the_clean_store(clean):
    with duckdb.connect(str(clean["db"]), read_only=True) as con:
        tables = {r[0] for r in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
        checked = reconcile(con, tables)
        store_days = con.execute(
            "select count(*) from (select distinct store_id, sold_date "
            "from staging.stg_pos__transactions)").fetchone()[0]
    frame = checked.frame
    assert checked.skipped == {}
    assert set(frame["check"]) == {c.name for c in CHECKS}
    assert (frame["excess"] == 0).all()
    # one compared figure per store and day, each within a cent of the staged lines
    mix = frame[frame["check"] == "revenue_mix_matches_staged_lines"]
    assert len(mix) == store_days
    assert (mix["left_value"] - mix["right_value"]).abs().max() < 0.01
    # the synthetic store never puts two anchor families on one receipt, so a store's
    # anchor receipts equal the sum of the families' in fct_addon_lift
    stores = frame[frame["check"] == "attach_all_receipts_within_lift_families"]
    assert len(stores) == 2
    assert (stores["left_value"] == stores["right_value"]).all()
    assert (stores["left_value"] > 1000).all()


def test_data_docs_show_this_run(clean):
    index = clean["docs"] / "index.html"
    assert clean["report"].docs_index == index
    html = index.read_text()
    for suite in ("marts.fct_attach_rates", "staging.stg_pos__transactions", CHECKS_SUITE):
        assert suite in html
    pages = list((clean["docs"] / "validations").rglob("*.html"))
    assert len(pages) == len(clean["report"].suites)
    # the worker processes render the pages of the suites they validated
    assert clean["report"].timings["docs pages"] > 0
    suite_pages = list((clean["docs"] / "expectations").rglob("*.html"))
    assert len(suite_pages) == len(clean["report"].suites)
    for page in pages + suite_pages:
        assert "</html>" in page.read_text()


# Anything a page would fetch: a script, stylesheet, image or frame, a CSS url() or
# @import, protocol-relative (//host/...) included.
_LOADS = re.compile(r"""\b(?:src|href|srcset|data)\s*=\s*["']?\s*(?:https?:)?//"""
                    r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?(?:https?:)?//""",
                    re.IGNORECASE)


def test_data_docs_hold_no_external_url(clean):
    docs = clean["docs"]
    index = (docs / "index.html").read_text(encoding="utf-8")
    suite_page = (docs / "expectations" / "marts" / "fct_attach_rates.html").read_text()
    (result_page,) = (docs / "validations" / "marts" / "fct_attach_rates").rglob("*.html")
    result_page = result_page.read_text()
    for html in (index, suite_page, result_page):
        assert not _LOADS.search(html), _LOADS.search(html).group(0)
        assert "http://" not in html and "https://" not in html
        # the only script left is xsell's own (no jQuery, Bootstrap or Vega to call)
        assert re.findall(r"<script\b[^>]*>", html) == ["<script data-xsell-offline>"]
    for page in docs.rglob("*.html"):  # every page, and the styles GE copies
        assert not _LOADS.search(page.read_text()), page
    for sheet in (docs / "static").rglob("*.css"):
        assert "http" not in sheet.read_text(), sheet
    # the logo GE loads from S3 comes from the site's own copy
    assert 'src="static/images/logo-long.png"' in index
    assert 'src="../../static/images/logo-long.png"' in suite_page
    assert (docs / "static" / "images" / "logo-long.png").is_file()
    # the pages keep their content: the suite's expectations, the run's figures
    assert "attached_receipts" in suite_page and "Evaluated Expectations" in result_page


def test_data_docs_index_lists_the_results_offline_in_a_browser(clean, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip(f"headless browser test needs Chromium at {CHROMIUM}")
    docs = shutil.copytree(clean["docs"], tmp_path / "docs")
    offline = "--proxy-server=127.0.0.1:9"  # every request to the network is refused
    # control: a page that needs a script from a CDN fails in this browser
    control = docs / "control.html"
    control.write_text('<html><head></head><body><script src="https://code.jquery.com/'
                       'jquery-3.7.1.min.js"></script><script>$("body")</script></body></html>')
    root = re.search(r"<html[^>]*>", dump_dom(control, tmp_path / "p0", offline)[0]).group(0)
    assert "data-js-errors" in root

    dom, log = dump_dom(docs / "index.html", tmp_path / "p1", offline)
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert "data-js-errors" not in root and "Uncaught" not in log, (root, log[-2000:])
    suites = {s.suite for s in clean["report"].suites}
    listed = re.findall(r'<a class="ge-index-page-table-validation-links-item" '
                        r'href="(validations/[^"]+\.html)">xsell_build-([\w.]+)</a>', dom)
    assert {suite for _, suite in listed} == suites
    assert len(listed) == len(suites) == len(list((docs / "validations").rglob("*.html")))
    for href, _ in listed:
        assert (docs / unquote(href)).is_file(), href
    assert len(re.findall(r'href="expectations/[^"]+\.html"', dom)) >= len(suites)

    # a result page: its collapsed blocks open and "Failed Only" hides the passed rows
    (page,) = (docs / "validations" / "marts" / "fct_attach_rates").rglob("*.html")
    clicks = """<script>window.addEventListener("load", function () {
      var link = document.querySelector('[data-toggle="collapse"]'); link.click();
      document.querySelectorAll(".btn-group-toggle label")[1].click();
      var passed = document.querySelectorAll(".hide-succeeded-validation-target-child");
      var hidden = [].filter.call(passed, function (e) {
        return getComputedStyle(e.parentElement).display === "none"; }).length;
      var block = document.querySelector(link.getAttribute("href"));
      document.documentElement.setAttribute("data-clicked",
        getComputedStyle(block).display + " " + hidden + "/" + passed.length);
    });</script></body>"""
    page.write_text(page.read_text().replace("</body>", clicks, 1))
    dom, log = dump_dom(page, tmp_path / "p2", offline)
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert "data-js-errors" not in root and "Uncaught" not in log, (root, log[-2000:])
    shown, counts = re.search(r'data-clicked="(\w+) (\d+/\d+)"', root).groups()
    hidden, passed = counts.split("/")
    assert shown != "none" and int(passed) > 0 and hidden == passed


def test_offline_rewriting_drops_every_load_and_changes_nothing_the_second_time():
    page = """<html><head><link rel="stylesheet" href="https://cdn.example/b.css"/>
    <style>.navbar-brand a { background: url('https://s3.example/logo.png') 0 0; }</style>
    <script src="https://cdn.example/jquery.js"></script>
    <script src="//cdn.example/vega.js"></script></head><body>
    <img class="NO-CACHE" src="https://s3.example/logo-long.png?d=1" alt="GE"/>
    <script>$(".x").fadeIn();</script>
    <div id="g"></div><script>vegaEmbed('#g', spec);</script>
    <p>Made with <a href="https://ge.example">Great Expectations</a>.</p>
    <table><tr><td>kept</td></tr></table>
    <footer><p>Newsletter <a href="https://ge.example/news">Subscribe</a></p></footer>
    </body></html>"""
    once = offline_page(page, "../../", "var xsell = 1;\n")
    assert "example" not in once and "//" not in once
    assert '<img class="NO-CACHE" src="../../static/images/logo-long.png" alt="GE"/>' in once
    assert "url('../../static/images/logo-long.png')" in once
    assert "fadeIn" not in once and "Vega library" in once and "Newsletter" not in once
    assert "<span>Great Expectations</span>" in once and "<td>kept</td>" in once
    assert once.count("<script") == 1 and "var xsell = 1;" in once
    assert offline_page(once, "../../", "var xsell = 1;\n") == once


def test_validation_leaves_the_committed_gx_files_as_they_are(clean):
    compared = filecmp.dircmp(GX_DIR, clean["gx"], ignore=["uncommitted"])
    differing = []

    def walk(cmp):
        differing.extend(cmp.diff_files + cmp.left_only + cmp.right_only)
        for sub in cmp.subdirs.values():
            walk(sub)

    walk(compared)
    assert differing == []


def test_gx_is_in_step_with_the_declarations(tmp_path):
    from xsell.quality.authoring import write_gx

    gx_dir = copy_gx(tmp_path / "gx")
    assert write_gx(gx_dir) == [], "run `python -m xsell.quality write-gx` and commit gx/"


# --- corrupted copies fail, naming what is wrong -------------------------------------------


@pytest.fixture(scope="module")
def corrupted(store_build, tmp_path_factory):
    """A recency score of 7 for one customer of dim_customers, another customer twice.
    (Keys, nulls and the ranges dbt tests are dbt's; the gate checks what dbt does not
    say: these scores of dim_customers and the tables' agreement.)"""
    work = tmp_path_factory.mktemp("quality_corrupted")
    db = copy_build(store_build["db"], work / "build.duckdb")
    with duckdb.connect(str(db)) as con:
        scored = con.execute(
            "select max(customer_id) from marts.dim_customers where has_purchase"
        ).fetchone()[0]
        con.execute("update marts.dim_customers set recency_score = 7 where customer_id = ?",
                    [scored])
        customer = con.execute(
            "select min(customer_id) from marts.dim_customers where has_purchase"
        ).fetchone()[0]
        con.execute(
            "insert into marts.dim_customers select * from marts.dim_customers "
            "where customer_id = ?", [customer]
        )
        rfm_rows = con.execute("select count(*) from marts.fct_customer_rfm").fetchone()[0]
    report = validate(db, gx_dir=copy_gx(work / "gx"), docs_dir=None, workers=2)
    return {"report": report, "scored": scored, "customer": customer,
            "rfm_rows": rfm_rows, "db": db, "work": work}


def test_corrupted_score_fails_naming_expectation_table_column_and_value(corrupted):
    report = corrupted["report"]
    assert not report.ok
    [failure] = by_suite(report, "marts.dim_customers", "recency_score")
    assert failure.table == "marts.dim_customers"
    assert failure.expectation == "expect_column_values_to_be_between"
    assert failure.arguments == "min_value=1, max_value=5"
    assert failure.unexpected_count == 1
    assert failure.examples == (f"7 (customer_id={corrupted['scored']})",)
    text = str(report)
    assert text.startswith("Quality gate FAILED")
    assert ("marts.dim_customers.recency_score: expect_column_values_to_be_between"
            "(min_value=1, max_value=5)") in text
    assert f"e.g. 7 (customer_id={corrupted['scored']})" in text


def test_corruption_fails_exactly_the_expectations_it_breaks(corrupted):
    failed = {(f.suite, f.check or f.expectation, f.column) for f in corrupted["report"].failures}
    assert failed == {
        ("marts.dim_customers", "expect_column_values_to_be_between", "recency_score"),
        # the duplicate counts one customer and their revenue twice
        (CHECKS_SUITE, "customer_counts_agree", "customers"),
        (CHECKS_SUITE, "customer_revenue_agrees", "monetary, revenue"),
    }
    [counts] = by_check(corrupted["report"], "customer_counts_agree")
    rfm_rows = corrupted["rfm_rows"]
    assert counts.examples == (
        f"dim_customers with a purchase: fct_customer_rfm rows {rfm_rows} vs "
        f"other table {rfm_rows + 1}",
    )


@pytest.fixture(scope="module")
def reconciliation_broken(store_build, tmp_path_factory):
    """Revenue mix 100.00 off on one store-day, the overall anchor receipts one too many,
    ml_segment_selection dropped, and a band tightened past the store's attach rate."""
    work = tmp_path_factory.mktemp("quality_reconciliation")
    db = copy_build(store_build["db"], work / "build.duckdb")
    with duckdb.connect(str(db)) as con:
        store, day = con.execute(
            "select store_id, sold_date from marts.fct_revenue_mix "
            "where revenue_stream = 'ANCHOR' order by sold_date desc, store_id limit 1"
        ).fetchone()
        con.execute(
            "update marts.fct_revenue_mix set revenue = revenue + 100 "
            "where revenue_stream = 'ANCHOR' and store_id = ? and sold_date = ?", [store, day]
        )
        staged = con.execute(
            "select sum(quantity * unit_price) from staging.stg_pos__transactions "
            "where store_id = ? and sold_date = ?", [store, day]
        ).fetchone()[0]
        overall, rate = con.execute(
            "select anchor_receipts, attach_rate from marts.fct_attach_rates_overall "
            "where store_id = ?", [store]
        ).fetchone()
        con.execute(
            "update marts.fct_attach_rates_overall set anchor_receipts = anchor_receipts + 1 "
            "where store_id = ?", [store]
        )
        con.execute("drop table ml.ml_segment_selection")
    report = validate(db, gx_dir=copy_gx(work / "gx"), docs_dir=None,
                      thresholds={"attach_rate_all_min": 0.99}, workers=2, bands=True)
    return {"report": report, "store": store, "day": day, "staged": staged,
            "overall": overall, "rate": rate}


def test_broken_revenue_reconciliation_names_store_day_and_both_figures(reconciliation_broken):
    r = reconciliation_broken
    [failure] = by_check(r["report"], "revenue_mix_matches_staged_lines")
    assert failure.suite == CHECKS_SUITE
    assert failure.table == "marts.fct_revenue_mix, staging.stg_pos__transactions"
    assert failure.column == "revenue"
    assert failure.unexpected_count == 1
    assert failure.examples == (
        f"{r['store']} {r['day'].isoformat()}: fct_revenue_mix "
        f"{format_value(r['staged'] + 100)} vs staged lines {format_value(r['staged'])}",
    )
    assert "cross-table check revenue_mix_matches_staged_lines" in str(r["report"])


def test_overall_anchor_receipts_above_the_families_sum_fail(reconciliation_broken):
    r = reconciliation_broken
    [failure] = by_check(r["report"], "attach_all_receipts_within_lift_families")
    assert failure.examples == (
        f"store {r['store']}: fct_attach_rates_overall {r['overall'] + 1} vs "
        f"sum of fct_addon_lift families {r['overall']}",
    )


def test_missing_table_fails_its_suite_and_skips_its_checks(reconciliation_broken):
    report = reconciliation_broken["report"]
    [failure] = by_suite(report, "ml.ml_segment_selection")
    assert failure.expectation == "table_exists"
    assert "the build has no table ml.ml_segment_selection" in failure.error
    assert report.skipped_checks == {
        "one_segment_choice": "the build has no ml.ml_segment_selection"}


def test_band_override_fails_with_the_observed_rate_and_the_parameter(reconciliation_broken):
    r = reconciliation_broken
    [failure] = by_suite(r["report"], "bands.fct_attach_rates_overall", "attach_rate")
    assert failure.table == "marts.fct_attach_rates_overall"
    assert failure.arguments == (
        "min_value=0.99 [attach_rate_all_min], max_value=0.999 [attach_rate_all_max]"
    )
    assert failure.unexpected_count == 2  # both stores attach about 97 %
    assert f"{format_value(r['rate'])} (store_id={r['store']})" in failure.examples
    # the three above, the missing table, and the revenue mix +100 seen from the star
    # schema (sales_lines_match_revenue_mix)
    assert len(r["report"].failures) == 5
    assert {f.check for f in r["report"].failures} >= {"sales_lines_match_revenue_mix"}


# --- worker processes ----------------------------------------------------------------------


def test_workers_report_exactly_what_one_process_reports(corrupted):
    """The corrupted copy validated in this process: the same failures (suite, table,
    column, arguments, counts, examples), in the same order, as the two workers found."""
    forked = corrupted["report"]
    here = validate(corrupted["db"], gx_dir=copy_gx(corrupted["work"] / "gx_here"),
                    docs_dir=None, workers=1)
    assert "docs pages" not in here.timings and here.timings["validate"] > 0
    assert here.failures == forked.failures and len(here.failures) == 3
    assert here.warnings == forked.warnings
    assert here.suites == forked.suites
    assert here.skipped_checks == forked.skipped_checks
    assert here.unvalidated_tables == forked.unvalidated_tables

    def without_seconds(report):
        return re.sub(r"\(\d+\.\d s\)", "", str(report))

    assert without_seconds(here) == without_seconds(forked)


def _fail_in_worker(monkeypatch, suite: str, fail) -> None:
    """Make the worker process validating `suite` call fail() (never this process)."""
    parent, real = os.getpid(), gate_module._Job.run

    def run(self, index, con):
        if self.definitions[index].suite.name == suite and os.getpid() != parent:
            fail()
        return real(self, index, con)

    monkeypatch.setattr(gate_module._Job, "run", run)


def test_a_worker_killed_mid_suite_raises_quality_error_naming_it(store_build, tmp_path,
                                                                   monkeypatch):
    _fail_in_worker(monkeypatch, "marts.dim_customers",
                    lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(QualityError, match=(
            r"worker process xsell-gate-\d was killed by signal 9 while validating suite "
            r"marts\.dim_customers")):
        validate(store_build["db"], gx_dir=copy_gx(tmp_path / "gx"), docs_dir=None, workers=2)
    assert multiprocessing.active_children() == []  # the other worker was stopped


def test_an_error_in_a_worker_raises_quality_error_with_its_message(store_build, tmp_path,
                                                                   monkeypatch):
    def fail():
        raise RuntimeError("disk on fire")

    _fail_in_worker(monkeypatch, "ml.ml_model_registry", fail)
    with pytest.raises(QualityError, match=(
            r"validating suite ml\.ml_model_registry failed in worker process xsell-gate-\d: "
            r"RuntimeError: disk on fire")):
        validate(store_build["db"], gx_dir=copy_gx(tmp_path / "gx"), docs_dir=None, workers=2)
    assert multiprocessing.active_children() == []


def test_suite_pages_are_rendered_again_only_when_stale(store_build, tmp_path):
    """A second validation into the same Data Docs folder renders its validation pages
    and keeps the suite pages (same suites, same GE); a page edited since is rendered
    again."""
    gx_dir, docs = copy_gx(tmp_path / "gx"), tmp_path / "docs"
    first = validate(store_build["db"], gx_dir=gx_dir, docs_dir=docs, workers=2)
    suite_pages = {p: p.read_bytes() for p in (docs / "expectations").rglob("*.html")}
    assert len(suite_pages) == len(first.suites)
    edited = docs / "expectations" / "marts" / "fct_attach_rates.html"
    edited.write_text(edited.read_text().replace("</html>", "edited</html>"))

    second = validate(store_build["db"], gx_dir=gx_dir, docs_dir=docs, workers=2)
    assert second.ok
    assert "edited" not in edited.read_text()  # rendered again
    for page, content in suite_pages.items():
        if page != edited:
            assert page.read_bytes() == content, page  # kept as rendered
    assert len(list((docs / "validations").rglob("*.html"))) == 2 * len(second.suites)
    assert "expectations/marts/fct_attach_rates.html" in (docs / "index.html").read_text()


def test_workers_must_be_at_least_one(store_build, tmp_path):
    with pytest.raises(QualityError, match="workers must be at least 1"):
        validate(store_build["db"], gx_dir=copy_gx(tmp_path / "gx"), docs_dir=None, workers=0)


# --- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.7, "1.7"), (3.0, "3"), (0.968144044, "0.968144"), (34952.125, "34,952.12"),
     (None, "null"), (float("nan"), "null"), (pd.Timestamp("2025-01-01"), "2025-01-01"),
     (pd.Timestamp("2025-01-01 10:15"), "2025-01-01 10:15:00"), ("C0001", "C0001")],
)
def test_values_are_written_as_a_person_would(value, text):
    assert format_value(value) == text


def test_importing_the_package_is_cheap_and_preload_imports_ge_in_the_background():
    import subprocess
    import sys

    code = (
        "import sys, os, xsell.quality as q\n"
        "print('great_expectations' in sys.modules, os.environ['GX_ANALYTICS_ENABLED'])\n"
        "q.preload(); q.gate._preloading.join()\n"
        "print('great_expectations' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=PROJECT_DIR)
    assert done.stdout.split() == ["False", "false", "True"]


# --- one kind of check, one layer ----------------------------------------------------------


def _number(value):
    """A bound as a number; a Jinja expression (e.g. of a var) stays text."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return str(value)


def _dbt_rules(manifest: dict) -> set[tuple]:
    """(schema.table, rule, column(s), arguments) of every dbt data test without a where."""
    rules = set()
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or "test_metadata" not in node:
            continue
        if node["config"].get("where"):
            continue
        tested = [manifest["nodes"][d] for d in node["depends_on"]["nodes"]
                  if d.startswith(("model.", "seed."))]
        if not tested:
            continue
        table = f"{tested[0]['schema']}.{tested[0]['name']}"
        name, kwargs = node["test_metadata"]["name"], node["test_metadata"].get("kwargs", {})
        column = kwargs.get("column_name")
        if name in ("not_null", "unique"):
            rules.add((table, name, column, None))
        elif name == "accepted_range":
            bounds = tuple(_number(kwargs.get(k)) for k in ("min_value", "max_value"))
            rules.add((table, "between", column, bounds))
        elif name == "accepted_values":
            rules.add((table, "in_set", column, tuple(sorted(map(str, kwargs["values"])))))
        elif name == "unique_combination_of_columns":
            rules.add((table, "unique", tuple(kwargs["combination_of_columns"]), None))
    return rules


def _ge_rule(table: str, expectation) -> tuple | None:
    """The same key for a Great Expectations row-level expectation without a condition."""
    if getattr(expectation, "row_condition", None):
        return None
    kind = type(expectation).__name__
    if kind == "ExpectColumnValuesToNotBeNull":
        return (table, "not_null", expectation.column, None)
    if kind == "ExpectColumnValuesToBeUnique":
        return (table, "unique", expectation.column, None)
    if kind == "ExpectCompoundColumnsToBeUnique":
        return (table, "unique", tuple(expectation.column_list), None)
    if kind == "ExpectColumnValuesToBeBetween" and not (
            expectation.strict_min or expectation.strict_max):
        bounds = tuple(_number(v) for v in (expectation.min_value, expectation.max_value))
        return (table, "between", expectation.column, bounds)
    if kind == "ExpectColumnValuesToBeInSet":
        return (table, "in_set", expectation.column,
                tuple(sorted(map(str, expectation.value_set))))
    return None


def test_no_expectation_repeats_a_dbt_test(store_build):
    """STYLE: a rule dbt tests on a column is not checked again by the gate."""
    manifest = json.loads((store_build["work"] / "target" / "manifest.json").read_text())
    dbt_rules = _dbt_rules(manifest)
    assert len(dbt_rules) > 150  # the parse found the project's tests
    ge_rules = [(_ge_rule(spec.table, e), spec.name) for spec in all_suites()
                for e in spec.expectations]
    repeated = [(rule, suite) for rule, suite in ge_rules if rule in dbt_rules]
    assert repeated == []
    # the matcher does see a repetition when there is one
    assert _ge_rule("marts.fct_customer_rfm", gxe.ExpectColumnValuesToNotBeNull(
        column="customer_id")) in dbt_rules
