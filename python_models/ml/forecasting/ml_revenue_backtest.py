"""Rolling-origin backtest of the revenue forecast against seasonal naive, one row per
store, origin and forecast day (from the saved bundle of ml_revenue_forecast)."""

from xsell.ml.forecast import BACKTEST_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_revenue_forecast")
    return side_table(session, artifact_dir, "ml_revenue_forecast", "backtest", BACKTEST_COLUMNS)
