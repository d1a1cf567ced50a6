"""P(restaurant visit the same day) for every member purchase receipt, against the
has-anchor baseline (xsell.ml.propensity.restaurant_propensity)."""

from xsell.coverage import applicable
from xsell.frames import frame_of
from xsell.ml.propensity import RestaurantParams, restaurant_propensity
from xsell.ml.registry import artifact_store, params_from_config


def model(dbt, session):
    dbt.config(materialized="table")
    mode = dbt.config.get("ml_mode")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    holdout_days = dbt.config.get("ml_holdout_days")
    cutoff_date = dbt.config.get("ml_cutoff_date")
    random_state = dbt.config.get("ml_random_state")
    max_train_rows = dbt.config.get("ml_max_train_rows")
    hyperparameters = dbt.config.get("restaurant_hyperparameters")
    params = params_from_config(
        RestaurantParams, hyperparameters,
        holdout_days=holdout_days, cutoff_date=cutoff_date, random_state=random_state,
        max_train_rows=max_train_rows,
    )
    receipts = dbt.ref("int_member_receipts_profiled")
    if not applicable(dbt.ref("int_analyses_assessed"), "restaurant_propensity"):
        receipts = receipts.limit(0)  # no rows: empty, typed outputs
    return restaurant_propensity(
        frame_of(receipts),
        params=params, store=artifact_store(session, artifact_dir), mode=mode,
    )
