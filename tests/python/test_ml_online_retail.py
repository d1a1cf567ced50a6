"""Recommendations on real data: the UCI Online Retail file, imported and built once for
this module (only the nodes the recommender needs, without their tests).

Wholesale customers rebuy and buy related items, unlike the synthetic store's shoppers:
here personal signals must beat popularity by a wide margin. Skips when
../shared/datasets is absent.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from support import PROJECT_DIR, dataset_path, run_xsell

from xsell.dbt_runner import dbt_env, run_dbt

pytestmark = [pytest.mark.dbt, pytest.mark.dataset]

SELECT = ["+ml_recommendations_metrics", "+ml_recommendations_by_anchor"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    source = dataset_path("online_retail", "online_retail.csv.gz")
    work = tmp_path_factory.mktemp("ml_online_retail")
    raw, db = work / "raw", work / "build.duckdb"
    done = run_xsell(["import", "online-retail", str(source), "--out", str(raw)], work)
    assert done.returncode == 0, done.stderr
    env = dbt_env(raw, "parquet", db) | {"DBT_LOG_PATH": str(work / "logs")}
    result = run_dbt(
        ["build", "--select", *SELECT, "--exclude-resource-type", "test", "unit_test", "--quiet"],
        PROJECT_DIR, env, target_path=work / "target",
    )
    assert result.ok, result.summary()
    return db


def frame(db, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()


def metrics(db, segment: str) -> pd.DataFrame:
    """variant x metric on the holdout for one segment."""
    rows = frame(db, "select variant, metric, value from ml.ml_recommendations_metrics "
                     f"where segment = '{segment}' and split = 'test'")
    return rows.pivot(index="variant", columns="metric", values="value")


def test_recommendations_beat_popularity_and_personal_repeat(build):
    table = metrics(build, "all")
    recall = table["recall_at_10"]
    # measured: ranker 0.157, personal repeat 0.147, recent popularity 0.055, popularity 0.032
    assert recall["hybrid_ranker"] > 3 * recall["baseline_popularity"]
    assert recall["hybrid_ranker"] > 2 * recall["baseline_recent_popularity"]
    assert recall["hybrid_ranker"] > recall["baseline_personal_repeat"]
    for name in ("ndcg_at_10", "hit_rate_at_10"):
        assert table[name]["hybrid_ranker"] > table[name]["baseline_personal_repeat"], name
        assert table[name]["hybrid_ranker"] > 1.5 * table[name]["baseline_popularity"], name
    # popularity recommends the same ten products to everybody
    assert table["catalogue_coverage"]["hybrid_ranker"] > 20 * table["catalogue_coverage"][
        "baseline_popularity"
    ]
    warm = metrics(build, "members_warm")["recall_at_10"]
    assert warm["hybrid_ranker"] > 4 * warm["baseline_popularity"]


def test_popularity_baseline_equals_an_independent_count(build):
    """Recall@10 of the ten most bought products before the cutoff, counted in pandas from
    the receipts, equals the table's baseline figure: the evaluation is what it says."""
    lines = frame(build, "select * from intermediate.int_receipt_products_listed")
    products = frame(build, "select product_id from intermediate.int_products_classified "
                            "where is_anchor or is_addon")
    lines = lines[lines.product_id.isin(products.product_id)]
    lines["sold_date"] = pd.to_datetime(lines.sold_date)
    cutoff = lines.sold_date.max() - pd.Timedelta(days=27)
    train = lines[lines.sold_date < cutoff]
    test = lines[(lines.sold_date >= cutoff) & lines.customer_id.notna()]
    counts = train.groupby("product_id").receipt_id.nunique()
    top = set(counts.sort_values(ascending=False, kind="stable").index[:10])
    relevant = test.groupby("customer_id").product_id.apply(set)
    expected = float(np.mean([len(top & items) / len(items) for items in relevant]))
    got = metrics(build, "all")["recall_at_10"]["baseline_popularity"]
    assert got == pytest.approx(expected, abs=1e-9)


def test_complete_the_room_beats_popular_addons_on_anchor_baskets(build):
    table = metrics(build, "anchor_baskets")
    assert table["recall_at_10"]["anchor_attach_rate"] > 1.1 * table["recall_at_10"][
        "baseline_popularity"
    ]
    by_anchor = frame(build, "select * from ml.ml_recommendations_by_anchor")
    assert by_anchor.anchor_family.nunique() >= 10
    assert by_anchor.groupby("anchor_family").size().max() == 10
    # ranks follow the attach rate
    for _, rows in by_anchor.groupby("anchor_family"):
        assert rows.sort_values("recommendation_rank").attach_rate.is_monotonic_decreasing


def test_every_customer_gets_ten_products(build):
    recs = frame(build, "select * from ml.ml_recommendations")
    customers = frame(build, "select customer_id from intermediate.int_customers_profiled")
    buyers = frame(build, "select distinct customer_id from "
                          "intermediate.int_receipt_products_listed where customer_id is not null")
    assert set(recs.customer_id) == set(customers.customer_id)
    assert recs.groupby("customer_id").size().eq(10).all()
    # customers who never bought merchandise (only postage, say) are cold starts
    cold = set(recs.loc[recs.is_cold_start, "customer_id"])
    assert cold == set(customers.customer_id) - set(buyers.customer_id)
    assert {"buy_again", "popular_now"} <= set(recs.reason)
