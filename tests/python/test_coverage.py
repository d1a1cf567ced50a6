"""The coverage's Python side (xsell.coverage) and the checks on dbt vars: a var the
models cannot honour, or one dbt_project.yml does not declare, stops the run before any
model is built, naming it."""

from __future__ import annotations

import duckdb
import pytest
from support import PROJECT_DIR, run_xsell

from xsell.coverage import Coverage, CoverageRow, applicable, applicable_stores
from xsell.pipeline import PipelineError, parse_vars


def _row(analysis, tables, status, reason=None, store="ALL", rows=0, note=None):
    return CoverageRow(analysis=analysis, store_id=store, title=analysis.title(), area="x",
                       tables=tuple(tables), status=status, row_count=rows, reason=reason,
                       note=note)


def test_a_table_has_a_reason_only_when_no_analysis_filling_it_ran():
    coverage = Coverage((
        _row("rules_product", ["marts.fct_association_rules"], "ran", rows=10),
        _row("rules_category", ["marts.fct_association_rules"], "no_result", "nothing frequent"),
        _row("impulse", ["marts.fct_impulse_by_hour"], "not_applicable", "no times of day"),
        _row("forecast", ["ml.ml_revenue_forecast"], "not_applicable", "no prices", store="S1"),
        _row("forecast", ["ml.ml_revenue_forecast"], "not_applicable", "no prices", store="S2"),
    ))
    assert coverage.table_reason("marts.fct_association_rules") is None
    assert coverage.table_reason("marts.fct_impulse_by_hour") == "no times of day"
    # two scopes with the same reason: said once, with the analysis it belongs to
    assert coverage.table_reason("ml.ml_revenue_forecast") == "Forecast: no prices"
    assert coverage.table_reason("marts.fct_customer_rfm") is None  # no analysis fills it
    assert coverage.table_reasons() == {"marts.fct_impulse_by_hour": "no times of day",
                                        "ml.ml_revenue_forecast": "Forecast: no prices"}
    text = coverage.summary()
    assert text.splitlines()[0] == "Analyses: 1 of 5 ran on this data"
    assert "- Impulse: not applicable: no times of day" in text
    assert "- Forecast [S2]: not applicable: no prices" in text


def test_models_ask_whether_their_analysis_applies():
    con = duckdb.connect()
    assessed = con.sql(
        "select * from (values ('rfm', 'ALL', true), ('impulse_by_hour', 'ALL', false), "
        "('revenue_forecast', 'S2', true), ('revenue_forecast', 'S1', false), "
        "('revenue_forecast', 'S3', true)) as t(analysis, store_id, is_applicable)"
    )
    assert applicable(assessed, "rfm")
    assert not applicable(assessed, "impulse_by_hour")
    assert not applicable(assessed, "no_such_analysis")
    assert applicable_stores(assessed, "revenue_forecast") == ["S2", "S3"]
    with pytest.raises(ValueError):
        applicable(assessed, "rfm' or '1'='1")


def test_vars_are_parsed_as_dbt_takes_them_and_checked_against_the_project():
    assert parse_vars("{min_support: 0.02, ml_holdout_days: 14}", PROJECT_DIR) == {
        "min_support": 0.02, "ml_holdout_days": 14}
    assert parse_vars('{"python_models": false}', PROJECT_DIR) == {"python_models": False}
    assert parse_vars(None, PROJECT_DIR) == {}
    with pytest.raises(PipelineError, match="unknown dbt var.*min_suport"):
        parse_vars("{min_suport: 0.02}", PROJECT_DIR)
    with pytest.raises(PipelineError, match="must be a mapping"):
        parse_vars("0.02", PROJECT_DIR)
    with pytest.raises(PipelineError, match="not valid YAML"):
        parse_vars("{min_support: [", PROJECT_DIR)


@pytest.mark.dbt
def test_a_var_the_models_cannot_honour_stops_the_run_before_building(tmp_path):
    raw = tmp_path / "raw"
    from xsell.generate import generate_store

    generate_store(raw, seed=1, days=3, stores=1, visits_per_day=5)
    build = tmp_path / "build.duckdb"
    done = run_xsell(["run", "--raw-dir", str(raw), "--build-db", str(build), "--no-generate",
                      "--vars", "{min_support: 1.5, attach_window_minutes: 0}"], tmp_path)
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "min_support = 1.5: must be a share above 0 and at most 1" in output
    assert "attach_window_minutes = 0: must be minutes, more than 0" in output
    if build.exists():  # nothing was built
        with duckdb.connect(str(build), read_only=True) as con:
            assert con.execute("select count(*) from duckdb_tables()").fetchone()[0] == 0
