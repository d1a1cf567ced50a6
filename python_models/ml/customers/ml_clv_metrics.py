"""Holdout evaluation of BG/NBD + Gamma-Gamma, gradient boosting and a naive baseline
(xsell.ml.customer_value.clv_holdout_metrics)."""

from xsell.coverage import applicable
from xsell.frames import frame_of
from xsell.ml.customer_value import clv_holdout_metrics


def model(dbt, session):
    dbt.config(materialized="table")
    holdout_days = dbt.config.get("clv_holdout_days")
    random_state = dbt.config.get("clv_random_state")
    profiles = dbt.ref("int_customers_profiled").project("customer_id, household_size, distance_km")
    days = dbt.ref("int_customer_days_aggregated")
    if not applicable(dbt.ref("int_analyses_assessed"), "clv_holdout"):
        days = days.limit(0)  # no rows: empty, typed outputs
    return clv_holdout_metrics(
        frame_of(days),
        frame_of(profiles),
        frame_of(dbt.ref("ml_clv_parameters")),
        holdout_days=int(holdout_days),
        random_state=int(random_state),
    )
