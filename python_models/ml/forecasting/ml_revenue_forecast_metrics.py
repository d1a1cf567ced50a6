"""Backtest MAPE, SMAPE, MAE and bias of the forecast and of seasonal naive (from the
saved bundle)."""

from xsell.ml.evaluation import METRIC_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_revenue_forecast")
    return side_table(session, artifact_dir, "ml_revenue_forecast", "metrics", METRIC_COLUMNS)
