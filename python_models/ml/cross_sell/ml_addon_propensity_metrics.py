"""Holdout metrics of the add-on models and their baseline, per category (from the saved
bundle)."""

from xsell.ml.evaluation import METRIC_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_addon_propensity")
    return side_table(session, artifact_dir, "ml_addon_propensity", "metrics", METRIC_COLUMNS)
