"""Feature importances of every ML model: permutation importances, standardised
coefficients or multiplicative effects, as each model has them (from the saved bundles)."""

from xsell.ml.registry import feature_importances


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_restaurant_propensity")
    dbt.ref("ml_addon_propensity")
    dbt.ref("ml_recommendations")
    dbt.ref("ml_revenue_forecast")
    return feature_importances(
        session, artifact_dir,
        ["ml_restaurant_propensity", "ml_addon_propensity", "ml_recommendations",
         "ml_revenue_forecast"],
    )
