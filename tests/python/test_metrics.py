"""The semantic layer: MetricFlow's `mf` queries the metrics defined once in the dbt
project (models/marts/*/_*__semantic.yml) on the DuckDB build of the test store, and the
figures equal the marts.

`mf` reads the semantic manifest at <project>/target/semantic_manifest.json and connects
through profiles.yml. To read the manifest of conftest.store_build's build (written to its
own target folder) without touching the project's target/, it runs in a folder holding the
project's dbt_project.yml and that manifest (DBT_PROJECT_DIR), with the project's profiles
(DBT_PROFILES_DIR) and XSELL_BUILD_DB pointing at the build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from support import PROJECT_DIR

pytestmark = pytest.mark.dbt

MF = str(Path(sys.executable).parent / "mf")

METRICS = {
    "revenue", "margin", "receipts", "average_basket_value", "attach_rate",
    "restaurant_conversion", "addon_lift", "repeat_rate", "clv",
}


def query(build, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(build["db"]), read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def mf(store_build, tmp_path_factory):
    """Run `mf <args>` on the store build; returns (CompletedProcess, its output folder)."""
    work = tmp_path_factory.mktemp("metricflow")
    project = work / "project"
    (project / "target").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "dbt_project.yml", project / "dbt_project.yml")
    shutil.copy(store_build["work"] / "target" / "semantic_manifest.json",
                project / "target" / "semantic_manifest.json")
    env = {
        **os.environ,
        "DBT_PROJECT_DIR": str(project),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_LOG_PATH": str(work / "logs"),
        "XSELL_TARGET": "duckdb",
        "XSELL_BUILD_DB": str(store_build["db"]),
        "DO_NOT_TRACK": "1",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([MF, *args], cwd=project, env=env, capture_output=True,
                              text=True, check=False, timeout=600)

    return run, work


def _query(mf, name: str, metrics: list[str], group_by: list[str]) -> pd.DataFrame:
    run, work = mf
    out = work / f"{name}.csv"
    done = run("query", "--metrics", ",".join(metrics), "--group-by", ",".join(group_by),
               "--csv", str(out))
    assert done.returncode == 0 and out.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return pd.read_csv(out)


def _close(a, b) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-9, atol=1e-9))


def test_every_metric_is_defined_once_and_validates_against_the_warehouse(mf, store_build):
    manifest = json.loads(
        (store_build["work"] / "target" / "semantic_manifest.json").read_text()
    )
    names = [metric["name"] for metric in manifest["metrics"]]
    assert set(names) >= METRICS
    assert len(names) == len(set(names))
    spines = manifest["project_configuration"]["time_spines"]
    assert [spine["node_relation"]["alias"] for spine in spines] == ["dim_dates"]
    run, _ = mf
    done = run("validate-configs")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ERRORS: 0" in done.stdout and "Successfully validated metrics" in done.stdout


def test_revenue_and_margin_by_store_and_month_equal_the_revenue_mix(mf, store_build):
    metrics = _query(mf, "store_month", ["revenue", "margin"], ["store", "metric_time__month"])
    metrics["month"] = pd.to_datetime(metrics["metric_time__month"])
    mix = query(store_build, """
        select store_id as store, date_trunc('month', sold_date) as month,
               sum(revenue) as revenue, sum(margin) as margin
        from marts.fct_revenue_mix where revenue_stream != 'RESTAURANT'
        group by all
    """)
    mix["month"] = pd.to_datetime(mix["month"])
    merged = metrics.merge(mix, on=["store", "month"], how="outer", suffixes=("", "_mart"),
                           indicator=True)
    print(f"\nmf revenue and margin by store and month:\n{merged.to_string()}")
    assert (merged["_merge"] == "both").all()
    assert len(merged) == 2 * 6  # two stores, January to June
    assert _close(merged["revenue"], merged["revenue_mart"])
    assert _close(merged["margin"], merged["margin_mart"])


def test_receipt_metrics_by_store_equal_the_marts(mf, store_build):
    metrics = _query(mf, "store", [
        "receipts", "average_basket_value", "attach_rate", "restaurant_conversion",
        "addon_lift", "addon_rate",
    ], ["store"]).set_index("store").sort_index()
    print(f"\nmf receipt metrics by store:\n{metrics.to_string()}")
    coverage = query(store_build, """
        select store_id, purchase_receipts, revenue from marts.fct_customer_coverage
        where store_id != 'ALL' order by store_id
    """).set_index("store_id")
    attach = query(store_build, """
        select store_id, attached_receipts, anchor_receipts from marts.fct_attach_rates_overall
        order by store_id
    """).set_index("store_id")
    restaurant = query(store_build, """
        select store_id, sum(converted_receipts) as converted, sum(receipts) as receipts
        from marts.fct_restaurant_conversion_by_group group by store_id order by store_id
    """).set_index("store_id")
    addons = query(store_build, """
        select store_id,
               count(*) filter (where has_addon_attached) as addon_receipts,
               count(*) filter (where is_purchase) as purchase_receipts
        from marts.fct_receipts group by store_id order by store_id
    """).set_index("store_id")
    assert list(metrics.index) == ["S01", "S02"]
    assert (metrics["receipts"] == coverage["purchase_receipts"]).all()
    assert _close(metrics["average_basket_value"],
                  coverage["revenue"] / coverage["purchase_receipts"])
    attach_rate = attach["attached_receipts"] / attach["anchor_receipts"]
    assert _close(metrics["attach_rate"], attach_rate)
    assert _close(metrics["restaurant_conversion"],
                  restaurant["converted"] / restaurant["receipts"])
    addon_rate = addons["addon_receipts"] / addons["purchase_receipts"]
    assert _close(metrics["addon_rate"], addon_rate)
    assert _close(metrics["addon_lift"], attach_rate / addon_rate)


def test_customer_metrics_by_rfm_segment_equal_the_customer_marts(mf, store_build):
    metrics = _query(mf, "segment", [
        "repeat_rate", "clv", "average_clv", "buying_customers", "repeat_customers",
    ], ["customer__rfm_segment"])
    print(f"\nmf customer metrics by RFM segment:\n{metrics.to_string()}")
    metrics = metrics.dropna(subset=["customer__rfm_segment"]).set_index(
        "customer__rfm_segment").sort_index()
    marts = query(store_build, """
        select rfm_segment, customers, expected_discounted_value
        from marts.fct_revenue_at_risk where customers > 0 order by rfm_segment
    """).set_index("rfm_segment")
    assert list(metrics.index) == list(marts.index)
    assert (metrics["buying_customers"] == marts["customers"]).all()
    assert _close(metrics["clv"], marts["expected_discounted_value"])
    valued = query(store_build, """
        select rfm_segment, avg(lifetime_value) as average_clv from marts.dim_customers
        where rfm_segment is not null group by all order by 1
    """).set_index("rfm_segment")["average_clv"]
    assert _close(metrics["average_clv"], valued)
    assert metrics["clv"].notna().all() and (metrics["clv"] > 0).all()
    # repeat buyers: members with purchase receipts on two different days, from the facts
    repeat = query(store_build, """
        select customers.rfm_segment, count(*) as repeat_customers
        from (
            select customer_id from marts.fct_receipts
            where is_purchase and customer_id is not null
            group by customer_id having count(distinct sold_date) > 1
        ) as buyers
        inner join marts.dim_customers as customers using (customer_id)
        group by all order by 1
    """).set_index("rfm_segment")["repeat_customers"]
    repeat = repeat.reindex(marts.index, fill_value=0)
    assert (metrics["repeat_customers"] == repeat).all()
    assert _close(metrics["repeat_rate"], repeat / marts["customers"])
    assert 0 < repeat.sum() < marts["customers"].sum()
