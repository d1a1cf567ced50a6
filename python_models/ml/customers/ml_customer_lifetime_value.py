"""Per-customer P(alive), expected purchases, spend and discounted value over the next
clv_horizon_days (xsell.ml.customer_value.customer_lifetime_value)."""

from xsell.frames import frame_of
from xsell.ml.customer_value import customer_lifetime_value


def model(dbt, session):
    dbt.config(materialized="table")
    horizon_days = dbt.config.get("clv_horizon_days")
    discount_rate = dbt.config.get("clv_discount_rate_annual")
    return customer_lifetime_value(
        frame_of(dbt.ref("int_customers_summarised")),
        frame_of(dbt.ref("ml_clv_parameters")),
        horizon_days=int(horizon_days),
        discount_rate_annual=float(discount_rate),
    )
