"""BG/NBD and Gamma-Gamma parameters at the as-of date and on the calibration period
(xsell.ml.customer_value.clv_parameters)."""

from xsell.coverage import applicable
from xsell.frames import frame_of
from xsell.ml.customer_value import clv_parameters


def model(dbt, session):
    dbt.config(materialized="table")
    holdout_days = dbt.config.get("clv_holdout_days")
    penalizer = dbt.config.get("clv_penalizer")
    summary = dbt.ref("int_customers_summarised")
    days = dbt.ref("int_customer_days_aggregated")
    if not applicable(dbt.ref("int_analyses_assessed"), "customer_lifetime_value"):
        summary, days = summary.limit(0), days.limit(0)  # no rows: empty, typed outputs
    return clv_parameters(
        frame_of(summary),
        frame_of(days),
        holdout_days=int(holdout_days),
        penalizer=float(penalizer),
    )
