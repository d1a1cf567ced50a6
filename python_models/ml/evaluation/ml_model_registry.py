"""Every saved model artifact (joblib) with its hash and metadata; is_current marks the
ones this build trained or scored with (xsell.ml.registry.registry_frame)."""

from xsell.ml.registry import artifact_store, registry_frame


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_restaurant_propensity")
    dbt.ref("ml_addon_propensity")
    dbt.ref("ml_recommendations")
    dbt.ref("ml_revenue_forecast")
    return registry_frame(artifact_store(session, artifact_dir))
