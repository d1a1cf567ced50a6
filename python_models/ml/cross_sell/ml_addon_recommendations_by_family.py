"""Add-on categories to promote per anchor family, ranked by model lift (from the saved
bundle of ml_addon_propensity)."""

from xsell.ml.propensity import FAMILY_RECOMMENDATION_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_addon_propensity")
    return side_table(session, artifact_dir, "ml_addon_propensity", "by_family",
                      FAMILY_RECOMMENDATION_COLUMNS)
