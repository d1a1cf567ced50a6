"""Holdout evaluation of BG/NBD + Gamma-Gamma, gradient boosting and a naive baseline
(xsell.ml.customer_value.clv_holdout_metrics)."""

from dbt_common.invocation import get_invocation_id

from xsell.frames import frame_of
from xsell.ml.customer_value import clv_holdout_metrics


def model(dbt, session):
    dbt.config(materialized="table")
    holdout_days = dbt.config.get("clv_holdout_days")
    random_state = dbt.config.get("clv_random_state")
    profiles = dbt.ref("int_customers_profiled").project("customer_id, household_size, distance_km")
    return clv_holdout_metrics(
        frame_of(dbt.ref("int_customer_days_aggregated")),
        frame_of(profiles),
        frame_of(dbt.ref("ml_clv_parameters")),
        holdout_days=int(holdout_days),
        random_state=int(random_state),
        run_id=get_invocation_id(),
    )
