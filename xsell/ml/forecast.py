"""Daily revenue per store for the next ``horizon_days``, with weekday and holiday effects,
checked by a rolling-origin backtest against a seasonal-naive forecast.

Input (dbt: int_store_days_aggregated): store_id, sold_date, revenue (gross sales of the
day). Days without a sale are filled with 0 from a store's first sale to the last date
of the data.

**Model**, per store: a Poisson regression (log link, so effects multiply) of daily
revenue on weekday and a holiday flag over the whole history gives the pattern; the level
follows the recent days (the ratio of actual to pattern revenue, weighted by weights that
halve every ``level_half_life_days`` back from the last day). No trend is extrapolated.
A weekday without any sale in the last 8 weeks is a closing day and forecast 0 (an
online shop that never ships on Saturdays).

**Holidays** come from a rule (:func:`holiday_calendar`), not a seed: New Year's Day,
Good Friday, Easter Monday, Christmas Eve, Christmas Day, Boxing Day and New Year's Eve
(the Western retail closures; Easter by the Gregorian computus). A holiday's effect is
estimated from the holidays in the training window; without any it stays neutral (the
L2 penalty keeps the coefficient at 0). The synthetic store plants no holiday effect.

**Backtest**: origins every ``backtest_step_days`` days, the last one ``horizon_days``
before the end of the data, ``backtest_origins`` of them; at each origin the model is
fitted on the days before it and forecasts the next ``horizon_days``. The baseline is
seasonal naive: the last observed week repeated (the same weekday a week before the
origin, or earlier). MAPE (days with revenue > 0), SMAPE and MAE over every
(origin, day) point go to ml_model_metrics per store and pooled.

Stores need ``min_history_days`` of history and sales on at least ``min_active_share`` of
their days to be forecast (an online shop's rare export countries are not).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

from xsell.ml.evaluation import DATE, MetricRows, conform, empty_frame, forecast_errors
from xsell.ml.registry import ArtifactStore, compute_run_id, model_mode

__all__ = [
    "BACKTEST_COLUMNS",
    "FORECAST_COLUMNS",
    "ForecastParams",
    "StoreModel",
    "backtest",
    "daily_series",
    "easter_sunday",
    "fit_store_model",
    "holiday_calendar",
    "revenue_forecast",
    "seasonal_naive",
]

MODEL = "ml_revenue_forecast"
VARIANT = "poisson_weekday_holiday"
BASELINE = "baseline_seasonal_naive"

FORECAST_COLUMNS = {
    "store_id": "str",
    "forecast_date": DATE,
    "horizon_day": "int64",
    "weekday": "int64",
    "holiday_name": "str",
    "forecast_revenue": "float64",
    "lower_revenue": "float64",
    "upper_revenue": "float64",
    "seasonal_naive_revenue": "float64",
    "run_id": "str",
}

BACKTEST_COLUMNS = {
    "store_id": "str",
    "origin_date": DATE,
    "forecast_date": DATE,
    "horizon_day": "int64",
    "actual_revenue": "float64",
    "forecast_revenue": "float64",
    "seasonal_naive_revenue": "float64",
    "is_holiday": "bool",
    "run_id": "str",
}


@dataclass(frozen=True)
class ForecastParams:
    horizon_days: int = 30
    backtest_origins: int = 8
    backtest_step_days: int = 7
    level_half_life_days: float = 28.0
    min_history_days: int = 56
    min_active_share: float = 0.5
    penalty: float = 1e-3
    interval: float = 0.8


# --------------------------------------------------------------------------- holidays


def easter_sunday(year: int) -> dt.date:
    """Western Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


FIXED_HOLIDAYS = {
    (1, 1): "New Year's Day",
    (12, 24): "Christmas Eve",
    (12, 25): "Christmas Day",
    (12, 26): "Boxing Day",
    (12, 31): "New Year's Eve",
}
EASTER_HOLIDAYS = {-2: "Good Friday", 1: "Easter Monday"}


def holiday_calendar(start, end) -> pd.DataFrame:
    """Holidays between start and end (inclusive): date, holiday_name."""
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    rows = []
    for year in range(start.year, end.year + 1):
        for (month, day), name in FIXED_HOLIDAYS.items():
            rows.append((dt.date(year, month, day), name))
        easter = easter_sunday(year)
        for offset, name in EASTER_HOLIDAYS.items():
            rows.append((easter + dt.timedelta(days=offset), name))
    frame = pd.DataFrame(rows, columns=["date", "holiday_name"])
    frame = frame[(frame["date"] >= start) & (frame["date"] <= end)]
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.sort_values("date").reset_index(drop=True)


# --------------------------------------------------------------------------- model


def daily_series(store_days: pd.DataFrame) -> dict[str, pd.Series]:
    """Revenue per store and day, zero-filled from the store's first sale to the last date
    of the data."""
    frame = store_days.assign(sold_date=pd.to_datetime(store_days["sold_date"]).dt.normalize())
    if frame.empty:
        return {}
    last = frame["sold_date"].max()
    series = {}
    for store_id, rows in frame.groupby(frame["store_id"].astype(str), sort=True):
        days = pd.date_range(rows["sold_date"].min(), last, freq="D")
        series[store_id] = (
            rows.groupby("sold_date")["revenue"].sum().reindex(days, fill_value=0.0).astype(float)
        )
    return series


def _design(dates: pd.DatetimeIndex, holidays: set) -> np.ndarray:
    weekday = np.asarray(dates.day_of_week)
    onehot = (weekday[:, None] == np.arange(7)).astype(float)
    holiday = np.asarray([d in holidays for d in dates.normalize()], dtype=float)[:, None]
    return np.hstack([onehot, holiday])


FEATURES = [f"weekday_{d}" for d in range(1, 8)] + ["holiday"]


CLOSED_WEEKS = 8  # a weekday without a sale in the last 8 weeks is a closing day


@dataclass
class StoreModel:
    estimator: PoissonRegressor  # weekday + holiday pattern, fitted on the whole history
    scale: float  # revenue unit the estimator was fitted in
    level: float  # recent level relative to the pattern (recency-weighted)
    last_date: pd.Timestamp
    last_week: np.ndarray  # revenue of the last 7 days (seasonal naive)
    closed_weekdays: tuple = ()  # 0 = Monday; forecast 0 (the store does not trade then)

    def predict(self, dates: pd.DatetimeIndex, holidays: set) -> np.ndarray:
        if self.scale == 0:
            return np.zeros(len(dates))
        with threadpool_limits(1):
            pattern = self.estimator.predict(_design(dates, holidays))
        forecast = pattern * self.scale * self.level
        return np.where(np.isin(dates.day_of_week, self.closed_weekdays), 0.0, forecast)


def fit_store_model(history: pd.Series, params: ForecastParams, holidays: set) -> StoreModel:
    """Weekday and holiday effects from a Poisson regression on the whole history; the
    level from the recent days: sum(w y) / sum(w pattern) with weights halving every
    level_half_life_days back from the last day."""
    y = history.to_numpy(dtype=float)
    scale = float(y.mean())
    estimator = PoissonRegressor(alpha=params.penalty, max_iter=1000)
    level = 1.0
    if scale > 0:
        design = _design(history.index, holidays)
        with threadpool_limits(1):
            estimator.fit(design, y / scale)
            pattern = estimator.predict(design) * scale
        age = (history.index[-1] - history.index).days.to_numpy(dtype=float)
        weight = np.power(0.5, age / params.level_half_life_days)
        level = float(np.sum(weight * y) / max(np.sum(weight * pattern), 1e-12))
    recent = history[history.index > history.index[-1] - pd.Timedelta(weeks=CLOSED_WEEKS)]
    trading = recent[recent > 0].index.day_of_week.unique()
    closed = ()
    if len(history) >= 7 * CLOSED_WEEKS:
        closed = tuple(int(d) for d in range(7) if d not in trading)
    return StoreModel(estimator, scale, level, history.index[-1], y[-7:], closed)


def seasonal_naive(last_week: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed week repeated: day h (0-based) after the origin gets the value of
    the same weekday in the week before the origin."""
    week = np.zeros(7)
    week[7 - len(last_week):] = last_week
    return week[np.arange(horizon) % 7]


def _eligible(series: pd.Series, params: ForecastParams) -> bool:
    return len(series) >= params.min_history_days and (series > 0).mean() >= params.min_active_share


def backtest(series: dict[str, pd.Series], params: ForecastParams, holidays: set) -> pd.DataFrame:
    """Rolling-origin forecasts of every eligible store (see the module doc)."""
    rows = []
    for store_id, history in series.items():
        if not _eligible(history, params):
            continue
        last = history.index[-1]
        for k in range(params.backtest_origins - 1, -1, -1):
            back = params.horizon_days - 1 + k * params.backtest_step_days
            origin = last - pd.Timedelta(days=back)
            past = history[history.index < origin]
            if len(past) < params.min_history_days:
                continue
            end = min(origin + pd.Timedelta(days=params.horizon_days - 1), last)
            dates = pd.date_range(origin, end)
            model = fit_store_model(past, params, holidays)
            rows.append(
                pd.DataFrame(
                    {
                        "store_id": store_id,
                        "origin_date": origin,
                        "forecast_date": dates,
                        "horizon_day": np.arange(1, len(dates) + 1),
                        "actual_revenue": history.reindex(dates).to_numpy(),
                        "forecast_revenue": model.predict(dates, holidays),
                        "seasonal_naive_revenue": seasonal_naive(model.last_week, len(dates)),
                        "is_holiday": [d in holidays for d in dates],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _backtest_metrics(points: pd.DataFrame, first_date) -> MetricRows:
    metrics = MetricRows(MODEL)
    if points.empty:
        return metrics
    window = (points["origin_date"].min(), points["forecast_date"].max())
    train = (first_date, points["origin_date"].max() - pd.Timedelta(days=1))
    segments = [("all", points)] + list(points.groupby("store_id", sort=True))
    for segment, rows in segments:
        for variant, column, is_baseline in (
            (VARIANT, "forecast_revenue", False),
            (BASELINE, "seasonal_naive_revenue", True),
        ):
            metrics.add(
                variant, forecast_errors(rows["actual_revenue"], rows[column]), split="backtest",
                n=len(rows), window=window, train=train, segment=str(segment),
                is_baseline=is_baseline,
            )
    return metrics


def _intervals(points: pd.DataFrame, level: float) -> dict[str, tuple[float, float]]:
    """Per store, quantiles of actual / forecast over the backtest: the forecast interval
    multipliers (empirical, so they carry the model's real error)."""
    out = {}
    if points.empty:
        return out
    low, high = (1 - level) / 2, 1 - (1 - level) / 2
    usable = points[points["forecast_revenue"] > 0]
    for store_id, rows in usable.groupby("store_id"):
        ratio = rows["actual_revenue"] / rows["forecast_revenue"]
        out[store_id] = (float(ratio.quantile(low)), float(ratio.quantile(high)))
    return out


def _future(models: dict, intervals: dict, horizon: int, holidays_for) -> pd.DataFrame:
    frames = []
    for store_id, model in sorted(models.items()):
        dates = pd.date_range(model.last_date + pd.Timedelta(days=1), periods=horizon)
        names = holidays_for(dates)
        forecast = model.predict(dates, set(names))
        low, high = intervals.get(store_id, (np.nan, np.nan))
        frames.append(
            pd.DataFrame(
                {
                    "store_id": store_id,
                    "forecast_date": dates,
                    "horizon_day": np.arange(1, horizon + 1),
                    "weekday": dates.day_of_week + 1,
                    "holiday_name": [names.get(d) for d in dates],
                    "forecast_revenue": forecast,
                    "lower_revenue": forecast * low,
                    "upper_revenue": forecast * high,
                    "seasonal_naive_revenue": seasonal_naive(model.last_week, horizon),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _holiday_lookup(start, end) -> dict:
    calendar = holiday_calendar(start, end)
    return dict(zip(calendar["date"], calendar["holiday_name"], strict=True))


def revenue_forecast(
    store_days: pd.DataFrame, *, params: ForecastParams, store: ArtifactStore, mode: str = "train"
) -> pd.DataFrame:
    """The ml_revenue_forecast node. ``train``: backtest, fit every eligible store on all
    its days, save the bundle, forecast the next horizon_days. ``score``: forecast the
    horizon after the saved models' last day with the saved models."""
    mode = model_mode(mode)

    def holidays_for(dates):
        return {d: n for d, n in _holiday_lookup(dates.min(), dates.max()).items()}

    if mode == "score":
        bundle, meta = store.current(MODEL)
        future = _future(bundle["models"], bundle["intervals"], params.horizon_days, holidays_for)
        if future.empty:
            return empty_frame(FORECAST_COLUMNS)
        return conform(future.assign(run_id=meta["run_id"]), FORECAST_COLUMNS)

    run_id = compute_run_id(MODEL, asdict(params), store_days)
    series = daily_series(store_days)
    if not series:
        store.save(MODEL, run_id, {"outputs": {}, "models": {}, "intervals": {}},
                   {"status": "no sales"})
        return empty_frame(FORECAST_COLUMNS)
    first = min(s.index[0] for s in series.values())
    last = max(s.index[-1] for s in series.values())
    holidays = set(_holiday_lookup(first, last + pd.Timedelta(days=params.horizon_days)))
    points = backtest(series, params, holidays)
    metrics = _backtest_metrics(points, first)
    intervals = _intervals(points, params.interval)
    models = {
        store_id: fit_store_model(history, params, holidays)
        for store_id, history in series.items()
        if _eligible(history, params)
    }
    future = _future(models, intervals, params.horizon_days, holidays_for)
    outputs = {
        "metrics": metrics.frame(run_id),
        "backtest": (
            conform(points.assign(run_id=run_id), BACKTEST_COLUMNS) if len(points) else None
        ),
        "importances": _effects(models).assign(run_id=run_id) if models else None,
    }
    store.save(
        MODEL, run_id, {"models": models, "intervals": intervals, "outputs": outputs},
        {
            "status": "trained" if models else "no store with enough history",
            "estimator": "PoissonRegressor per store (weekday + holiday, recency-weighted)",
            "features": FEATURES,
            "params": asdict(params),
            "train_start": first,
            "train_end": last,
            "test_start": points["origin_date"].min() if len(points) else None,
            "test_end": last if len(points) else None,
            "train_rows": int(sum(len(s) for s in series.values())),
            "test_rows": len(points),
        },
    )
    if future.empty:
        return empty_frame(FORECAST_COLUMNS)
    return conform(future.assign(run_id=run_id), FORECAST_COLUMNS)


def _effects(models: dict) -> pd.DataFrame:
    """Multiplicative effects exp(coefficient) of weekdays and holidays per store."""
    frames = []
    for store_id, model in sorted(models.items()):
        coef = model.estimator.coef_ if model.scale > 0 else np.zeros(len(FEATURES))
        frames.append(
            pd.DataFrame(
                {
                    "model": MODEL,
                    "variant": VARIANT,
                    "segment": store_id,
                    "feature": FEATURES,
                    "importance": np.abs(coef),
                    "importance_std": np.nan,
                    "signed_value": np.exp(coef),
                    "method": "poisson_coefficient (signed_value = multiplicative effect)",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
