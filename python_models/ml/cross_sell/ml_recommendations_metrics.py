"""Holdout Recall/nDCG/HitRate@N and coverage of the recommender and its baselines (from
the saved bundle)."""

from xsell.ml.evaluation import METRIC_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_recommendations")
    return side_table(session, artifact_dir, "ml_recommendations", "metrics", METRIC_COLUMNS)
