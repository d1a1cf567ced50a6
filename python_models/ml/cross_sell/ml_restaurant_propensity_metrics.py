"""Holdout metrics of the restaurant model and its baseline (from the saved bundle)."""

from xsell.ml.evaluation import METRIC_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_restaurant_propensity")
    return side_table(session, artifact_dir, "ml_restaurant_propensity", "metrics",
                      METRIC_COLUMNS)
