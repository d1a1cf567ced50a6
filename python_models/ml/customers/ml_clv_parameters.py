"""BG/NBD and Gamma-Gamma parameters at the as-of date and on the calibration period
(xsell.ml.customer_value.clv_parameters)."""

from dbt_common.invocation import get_invocation_id

from xsell.frames import frame_of
from xsell.ml.customer_value import clv_parameters


def model(dbt, session):
    dbt.config(materialized="table")
    holdout_days = dbt.config.get("clv_holdout_days")
    penalizer = dbt.config.get("clv_penalizer")
    return clv_parameters(
        frame_of(dbt.ref("int_customers_summarised")),
        frame_of(dbt.ref("int_customer_days_aggregated")),
        holdout_days=int(holdout_days),
        penalizer=float(penalizer),
        run_id=get_invocation_id(),
    )
