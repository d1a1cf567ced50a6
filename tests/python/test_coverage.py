"""The coverage's Python side (xsell.coverage) and the checks on dbt vars: a var the
models cannot honour, or one dbt_project.yml does not declare, stops the run before any
model is built, naming it."""

from __future__ import annotations

import os
import shutil
import subprocess

import duckdb
import pytest
from support import PROJECT_DIR, run_xsell

from xsell.coverage import Coverage, CoverageRow, applicable, applicable_stores
from xsell.dbt_runner import dbt_executable
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


def _holdout(con, model, variant, metric, segment=None):
    """A variant's holdout metric, segments weighted by n (computed here, not by dbt)."""
    where = "and segment = ?" if segment else ""
    return con.execute(
        "select sum(value * coalesce(n, 1)) / sum(coalesce(n, 1)) from ml.ml_model_metrics "
        f"where model = ? and variant = ? and metric = ? and split = 'test' {where}",
        [model, variant, metric, *([segment] if segment else [])],
    ).fetchone()[0]


def _notes(db) -> dict[str, str | None]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute(
            "select analysis, note from marts.fct_analysis_coverage where store_id = 'ALL'"
        ).fetchall())


@pytest.mark.dbt
def test_a_model_that_does_no_better_than_its_baseline_is_noted(store_build, tmp_path):
    """The coverage note names the baseline a model failed to beat on the holdout, with both
    figures; on the test store the models beat their baselines and carry no such note."""
    before = _notes(store_build["db"])
    assert not [a for a, note in before.items() if note and "did no better" in note]
    db = tmp_path / "copy.duckdb"
    shutil.copy(store_build["db"], db)
    with duckdb.connect(str(db)) as con:
        con.execute("update ml.ml_model_metrics set value = 0.01 where model = "
                    "'ml_recommendations' and variant = 'hybrid_ranker' and metric = "
                    "'recall_at_10'")
        con.execute("update ml.ml_model_metrics set value = 9 where model = "
                    "'ml_addon_propensity' and variant = 'logistic_regression' and metric = "
                    "'log_loss'")
        baselines = {v: _holdout(con, "ml_recommendations", v, "recall_at_10", "all")
                     for v in ("baseline_popularity", "baseline_recent_popularity",
                               "baseline_personal_repeat")}
        best = max(baselines, key=baselines.get)
        addon_baseline = _holdout(con, "ml_addon_propensity", "baseline_family_rate", "log_loss")
    env = dict(os.environ, XSELL_BUILD_DB=str(db), XSELL_RAW_DIR=str(store_build["raw"]),
               DBT_TARGET_PATH=str(tmp_path / "target"), DBT_LOG_PATH=str(tmp_path / "logs"),
               DO_NOT_TRACK="1")
    done = subprocess.run([dbt_executable(), "run", "--select", "fct_analysis_coverage"],
                          cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    after = _notes(db)
    assert after["recommendations"] == (
        "on the holdout the model did no better than the simple baseline "
        f"{best.removeprefix('baseline_')} (recall_at_10 0.01 against "
        f"{round(baselines[best], 4)}): its scores add nothing over that baseline on this data")
    assert after["addon_propensity"] == (
        "on the holdout the model did no better than the simple baseline family_rate "
        f"(log_loss 9.0 against {round(addon_baseline, 4)}): its scores add nothing over that "
        "baseline on this data")
    unchanged = {a for a in before if a not in ("recommendations", "addon_propensity")}
    assert {a: after[a] for a in unchanged} == {a: before[a] for a in unchanged}
