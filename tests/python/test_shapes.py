"""The shape matrix: `xsell run` on data shapes xsell was not built against.

Each shape (tests/python/shapes.py) is a small store: every receipt anonymous, members
only, no prices, dates without times, 7 and 14 days of history (two seeds), nobody buying
twice, every or no product an anchor, a single receipt, one day, and an attach window of
two days. For each, `xsell run` exits 0 and publishes, the quality gate passes, the
coverage table says exactly which analyses ran (asserted per shape), and every report
page renders in Chromium without a JavaScript error.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from markupsafe import escape
from shapes import make_shape
from support import CHROMIUM, check_pages_in_browser, run_xsell

pytestmark = pytest.mark.dbt

# Analyses that do not run on a 60-day, one-store synthetic store of 40 visits a day: its
# history is shorter than the 90-day holdout of the lifetime-value evaluation.
BASE = {"clv_holdout": "not_applicable"}
MEMBERS = {a: "not_applicable" for a in (
    "restaurant_conversion", "restaurant_timing", "customer_profiles", "rfm",
    "cohort_retention", "revenue_at_risk", "customer_lifetime_value", "clv_holdout",
    "customer_segments", "restaurant_propensity", "recommendations",
)}
ANCHORS = {a: "not_applicable" for a in (
    "attach_rates", "addon_lift", "addon_propensity", "recommendations_by_anchor",
)}
# (the recommender still lists popular and bought-again products, with a note); the
# generated campaign covers the first weeks, so a short history has no baseline day for it
SHORT = {**{a: "not_applicable" for a in (
    "restaurant_propensity", "addon_propensity", "clv_holdout",
)}, "promotion_uplift": "no_result"}

# shape: (seed, vars, {analysis: status} of every analysis that did not run, the analyses
# whose outcome depends on how the model fits the seed's data: {analysis: allowed statuses})
SHAPES = {
    "anonymous": (7, None, MEMBERS, {}),
    # BG/NBD on 60 days of members who all buy often may not be estimable (no_result)
    "members_only": (7, None, BASE, {"customer_lifetime_value": {"ran", "no_result"}}),
    "no_prices": (7, None, {**BASE, "revenue_mix": "not_applicable",
                            "revenue_at_risk": "not_applicable"}, {}),
    "date_only": (7, None, {**BASE, "impulse_by_hour": "not_applicable",
                            "restaurant_timing": "not_applicable"}, {}),
    # a few days of a small store: no two products on 5 receipts (var rules_min_count) nor
    # two products of 20 receipts (var affinity_min_count) on 5 together
    # (affinity_min_together)
    "days_7": (7, None, {**SHORT, "association_rules_product": "no_result",
                         "product_affinity": "no_result"},
               {"customer_lifetime_value": {"ran", "no_result"}}),
    "days_14": (7, None, SHORT, {"customer_lifetime_value": {"ran", "no_result"}}),
    "days_14@3": (3, None, {**SHORT, "association_rules_product": "no_result",
                            "product_affinity": "no_result"},
                  {"customer_lifetime_value": {"ran", "no_result"}}),
    "nobody_twice": (7, None, {**BASE, "customer_lifetime_value": "not_applicable"}, {}),
    "all_anchors": (7, None, {**BASE, **ANCHORS}, {}),
    "no_anchors": (7, None, {**BASE, **ANCHORS}, {}),
    # one member's receipt: what a single basket supports
    "single_receipt": (7, None, {
        "restaurant_timing": "no_result", "product_affinity": "no_result",
        "association_rules_product": "no_result",
        "customer_lifetime_value": "not_applicable", "clv_holdout": "not_applicable",
        "customer_segments": "not_applicable", "restaurant_propensity": "not_applicable",
        "addon_propensity": "not_applicable",
    }, {"recommendations": {"ran", "no_result"},
        "attach_rates": {"ran", "not_applicable"}, "addon_lift": {"ran", "not_applicable"},
        "recommendations_by_anchor": {"ran", "not_applicable"},
        "association_rules_category": {"ran", "no_result"},
        "restaurant_conversion": {"ran", "not_applicable"},
        "promotion_uplift": {"ran", "no_result"}}),
    "one_day": (7, None, {**SHORT, "customer_lifetime_value": "not_applicable",
                          "product_affinity": "no_result",
                          "association_rules_product": "no_result",
                          "association_rules_category": "no_result"}, {}),
    # the dbt Python models off (the Spark default): the SQL marts still run and publish
    "python_models_off": (7, {"python_models": False}, {a: "not_built" for a in (
        "association_rules_product", "association_rules_category", "customer_lifetime_value",
        "clv_holdout", "customer_segments", "restaurant_propensity", "addon_propensity",
        "recommendations", "recommendations_by_anchor")}, {}),
    "attach_two_days": (7, {"attach_window_minutes": 2880}, BASE,
                        {"customer_lifetime_value": {"ran", "no_result"}}),
}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def shape_run(request, tmp_path_factory):
    name = request.param
    seed, variables, _, _ = SHAPES[name]
    work = tmp_path_factory.mktemp(f"shape_{name.replace('@', '_')}")
    base = {"attach_two_days": "members_only", "python_models_off": "members_only"}
    raw = make_shape(base.get(name, name.split("@")[0]), work / "raw", seed=seed)
    args = ["run", "--raw-dir", str(raw), "--build-db", str(work / "build.duckdb"),
            "--no-generate"]
    if variables:
        args += ["--vars", json.dumps(variables)]
    done = run_xsell(args, work)
    return {"name": name, "work": work, "done": done}


def _coverage(db) -> dict[str, tuple[str, str | None]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            (analysis if store == "ALL" else f"{analysis}[{store}]"): (status, reason)
            for analysis, store, status, reason in con.execute(
                "select analysis, store_id, status, reason from marts.fct_analysis_coverage"
            ).fetchall()
        }


def test_run_publishes_and_says_which_analyses_ran(shape_run):
    name, work, done = shape_run["name"], shape_run["work"], shape_run["done"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Quality gate passed" in done.stdout
    published = work / "published.duckdb"
    assert published.is_file()
    _, _, expected, variable = SHAPES[name]
    coverage = _coverage(published)
    forecast = {k: v for k, v in coverage.items() if k.startswith("revenue_forecast[")}
    assert forecast, "the forecast is assessed per store"
    whole = {k: v for k, v in coverage.items() if k not in forecast}
    not_ran = {a: status for a, (status, _) in whole.items()
               if status != "ran" and a not in variable}
    assert not_ran == {a: s for a, s in expected.items() if s != "ran" and a not in variable}
    for analysis, allowed in variable.items():
        assert whole[analysis][0] in allowed, (analysis, whole[analysis])
    # every analysis that did not run says why, and xsell run printed it
    for analysis, (status, reason) in coverage.items():
        if status != "ran":
            assert reason and len(reason) > 20, (analysis, reason)
            assert reason in done.stdout, (analysis, reason)
    assert "Analyses: " in done.stdout


def test_every_report_page_renders_in_a_browser(shape_run, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip(f"headless browser test needs Chromium at {CHROMIUM}")
    assert shape_run["done"].returncode == 0
    reports = shape_run["work"] / "reports"
    doms = check_pages_in_browser(reports, tmp_path)
    assert "index" in doms and len(doms) >= 8
    # the index lists the coverage, with the reasons
    coverage = _coverage(shape_run["work"] / "published.duckdb")
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert "What this data supports" in index
    for _, reason in coverage.values():
        if reason:
            assert str(escape(reason)) in index
