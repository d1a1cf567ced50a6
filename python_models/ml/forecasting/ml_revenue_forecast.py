"""Daily revenue per store for the next forecast_horizon_days, weekday and holiday
effects, with an interval from the backtest (xsell.ml.forecast.revenue_forecast)."""

from xsell.coverage import applicable_stores
from xsell.frames import frame_of
from xsell.ml.forecast import ForecastParams, revenue_forecast
from xsell.ml.registry import artifact_store, params_from_config


def model(dbt, session):
    dbt.config(materialized="table")
    mode = dbt.config.get("ml_mode")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    horizon_days = dbt.config.get("forecast_horizon_days")
    backtest_origins = dbt.config.get("forecast_backtest_origins")
    backtest_step_days = dbt.config.get("forecast_backtest_step_days")
    level_half_life_days = dbt.config.get("forecast_level_half_life_days")
    min_history_days = dbt.config.get("forecast_min_history_days")
    min_active_share = dbt.config.get("forecast_min_active_share")
    params = params_from_config(
        ForecastParams,
        horizon_days=horizon_days, backtest_origins=backtest_origins,
        backtest_step_days=backtest_step_days, level_half_life_days=level_half_life_days,
        min_history_days=min_history_days, min_active_share=min_active_share,
    )
    # only the stores whose history the data can support (int_analyses_assessed)
    stores = applicable_stores(dbt.ref("int_analyses_assessed"), "revenue_forecast")
    store_days = frame_of(dbt.ref("int_store_days_aggregated"))
    return revenue_forecast(
        store_days[store_days["store_id"].isin(stores)].reset_index(drop=True),
        params=params, store=artifact_store(session, artifact_dir), mode=mode,
    )
