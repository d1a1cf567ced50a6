"""Calibration of the restaurant model by deciles of its probability, per split (from the
saved bundle of ml_restaurant_propensity)."""

from xsell.ml.propensity import CALIBRATION_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_restaurant_propensity")
    return side_table(session, artifact_dir, "ml_restaurant_propensity", "calibration",
                      CALIBRATION_COLUMNS)
