"""Customer lifetime value inside the dbt DAG: fitted parameters, per-customer value, and
an honest holdout evaluation against a gradient-boosting model and a naive baseline.

The probabilistic models are those of `xsell.ml.clv` (BG/NBD purchases, Gamma-Gamma
spend), in days. Inputs come from the dbt project:

- ``customer_days``: one row per member and purchase day (int_customer_days_aggregated):
  customer_id, sold_date, receipts, item_count, anchor_receipts, revenue, anchor_revenue;
- ``summary``: the SQL summary at the as-of date (int_customers_summarised), whose
  BG/NBD columns equal `clv.summarise_transactions` at that date;
- ``profiles``: customer_id, household_size, distance_km (stg_pos__customers; may be empty).

Evaluation design (see `holdout_predictions`): the last ``holdout_days`` days before the
as-of date are the holdout; every model is fitted on data up to the cutoff only. The
gradient-boosting model needs a target it may see, so it learns on an earlier origin
inside the calibration period (features up to the origin, spend per day after it up to
the cutoff) and is then applied to features at the cutoff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from xsell.ml import clv
from xsell.ml.registry import compute_run_id

__all__ = [
    "CLV_PARAMETER_COLUMNS",
    "FEATURES",
    "HoldoutWindow",
    "clv_holdout_metrics",
    "clv_parameters",
    "customer_features",
    "customer_lifetime_value",
    "holdout_metrics",
    "holdout_predictions",
    "holdout_window",
]

DAY = pd.Timedelta(days=1)

# Calibration features of the gradient-boosting model (households and distance come
# from the loyalty profile; NaN when unknown, which the model handles natively).
FEATURES = [
    "recency_days",
    "tenure_days",
    "purchase_receipts",
    "purchase_days",
    "revenue",
    "avg_order_value",
    "items_per_receipt",
    "anchor_receipt_share",
    "anchor_revenue_share",
    "repeat_day_value",
    "household_size",
    "distance_km",
]

CLV_PARAMETER_COLUMNS = {
    "run_id": "object",
    "fit_name": "object",
    "observation_start": "datetime64[us]",
    "calibration_end": "datetime64[us]",
    "holdout_end": "datetime64[us]",
    "time_unit_days": "float64",
    "r": "float64",
    "alpha": "float64",
    "a": "float64",
    "b": "float64",
    "se_r": "float64",
    "se_alpha": "float64",
    "se_a": "float64",
    "se_b": "float64",
    "bgnbd_log_likelihood": "float64",
    "bgnbd_customers": "int64",
    "bgnbd_converged": "bool",
    "p": "float64",
    "q": "float64",
    "v": "float64",
    "se_p": "float64",
    "se_q": "float64",
    "se_v": "float64",
    "gamma_gamma_log_likelihood": "float64",
    "gamma_gamma_customers": "int64",
    "gamma_gamma_converged": "bool",
    "mean_purchase_rate": "float64",
    "population_mean_spend": "float64",
    "penalizer": "float64",
}

_DATE_COLUMNS = ("observation_start", "calibration_end", "holdout_end")


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _day(value) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def _days_frame(customer_days: pd.DataFrame) -> pd.DataFrame:
    days = customer_days.copy()
    days["sold_date"] = pd.to_datetime(days["sold_date"]).dt.normalize()
    return days.sort_values(["customer_id", "sold_date"], kind="stable")


def _dates_to_date(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Timestamps to datetime.date, which DuckDB reads as DATE (pandas would say TIMESTAMP)."""
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).dt.date.astype(object)
    return frame


def new_run_id(model: str, params: dict, *frames: pd.DataFrame) -> str:
    """The run id of a fit: a hash of the model, its parameters and its input frames (the
    same data and vars give the same id, as for every model in xsell.ml.registry)."""
    return compute_run_id(model, params, *frames)


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class HoldoutWindow:
    """Dates of the evaluation split, all inclusive.

    Calibration is [observation_start, calibration_end], the holdout
    (calibration_end, holdout_end]. The gradient-boosting model learns features up to
    training_origin and the target in (training_origin, calibration_end]; it is None
    when the calibration period is too short to hold an earlier origin.
    """

    observation_start: pd.Timestamp
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp
    holdout_days: int
    training_origin: pd.Timestamp | None
    training_window_days: int


def holdout_window(observation_start, as_of_date, holdout_days: int) -> HoldoutWindow | None:
    """The split: the last ``holdout_days`` days up to the as-of date are the holdout.

    The training window of the gradient-boosting model is as long as the holdout, or
    half the calibration period when that is shorter (so that the model still sees as
    much history before its origin as it predicts after). None when the holdout leaves
    no calibration day.
    """
    start, as_of = _day(observation_start), _day(as_of_date)
    holdout_days = int(holdout_days)
    if holdout_days < 1:
        raise ValueError("holdout_days must be at least 1")
    cutoff = as_of - holdout_days * DAY
    if cutoff < start:
        return None
    calibration_days = (cutoff - start) // DAY
    window = min(holdout_days, calibration_days // 2)
    origin = cutoff - window * DAY if window >= 1 else None
    return HoldoutWindow(start, cutoff, as_of, holdout_days, origin, int(max(window, 0)))


# --------------------------------------------------------------------------- features


def customer_features(
    customer_days: pd.DataFrame, cutoff, profiles: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per-customer features from purchase days up to ``cutoff`` (inclusive).

    The same definitions as the SQL summary int_customers_summarised (a test holds them
    equal at the as-of date), plus household_size and distance_km from the profile.
    Indexed by customer_id, sorted.
    """
    cutoff = _day(cutoff)
    days = _days_frame(customer_days)
    days = days[days["sold_date"] <= cutoff]
    # The BG/NBD / Gamma-Gamma columns come from the reference summary itself.
    summary = _clv_summary(days, None, cutoff)
    grouped = days.groupby("customer_id", sort=True)
    first = grouped["sold_date"].min()
    last = grouped["sold_date"].max()
    receipts = grouped["receipts"].sum()
    # null, not 0, for a store without prices: money is never made up
    revenue = grouped["revenue"].sum(min_count=1)
    features = pd.DataFrame(
        {
            "first_purchase_date": first,
            "last_purchase_date": last,
            "recency_days": ((cutoff - last) // DAY).astype(np.int64),
            "tenure_days": summary["tenure_days"].astype(np.int64),
            "purchase_receipts": receipts.astype(np.int64),
            "purchase_days": grouped["sold_date"].count().astype(np.int64),
            "revenue": revenue.astype(float),
            "avg_order_value": revenue / receipts,
            "items_per_receipt": grouped["item_count"].sum() / receipts,
            "anchor_receipt_share": grouped["anchor_receipts"].sum() / receipts,
            "anchor_revenue_share": (
                grouped["anchor_revenue"].sum(min_count=1) / revenue.where(revenue > 0)
            ).where(revenue.isna(), lambda share: share.fillna(0.0)),
            "repeat_purchase_days": summary["repeat_purchase_days"].astype(np.int64),
            "purchase_span_days": summary["purchase_span_days"].astype(np.int64),
            "repeat_day_value": summary["repeat_day_value"].astype(float),
        }
    )
    profile = _profile_columns(profiles)
    features = features.join(profile, how="left")
    features.index.name = "customer_id"
    return features


def _profile_columns(profiles: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["household_size", "distance_km"]
    if profiles is None or len(profiles) == 0:
        return pd.DataFrame(columns=columns, dtype=float).rename_axis("customer_id")
    frame = profiles.drop_duplicates("customer_id").set_index("customer_id")
    return frame.reindex(columns=columns).astype(float)


# --------------------------------------------------------------------------- fitting


def _summary_arrays(summary: pd.DataFrame) -> dict[str, np.ndarray]:
    """BG/NBD inputs from the SQL summary's column names."""
    return {
        "frequency": summary["repeat_purchase_days"].to_numpy(dtype=float),
        "recency": summary["purchase_span_days"].to_numpy(dtype=float),
        "T": summary["tenure_days"].to_numpy(dtype=float),
        "monetary_value": summary["repeat_day_value"].to_numpy(dtype=float),
    }


def _clv_summary(days: pd.DataFrame, start, end, holdout_end=None) -> pd.DataFrame:
    """clv.summarise_transactions on purchase days, renamed to the SQL summary's names."""
    summary = clv.summarise_transactions(
        days,
        customer_col="customer_id",
        date_col="sold_date",
        value_col="revenue",
        calibration_end=end,
        observation_start=start,
        holdout_end=holdout_end,
    )
    return summary.rename(
        columns={
            "frequency": "repeat_purchase_days",
            "recency": "purchase_span_days",
            "T": "tenure_days",
            "monetary_value": "repeat_day_value",
        }
    )


def _fit_row(
    summary: pd.DataFrame, *, fit_name: str, start, end, holdout_end, penalizer: float, run_id: str
) -> dict | None:
    arrays = _summary_arrays(summary)
    if len(summary) == 0 or arrays["frequency"].sum() == 0:
        return None
    bg = clv.fit_bgnbd(arrays["frequency"], arrays["recency"], arrays["T"], penalizer=penalizer)
    try:
        gg = clv.fit_gamma_gamma(arrays["frequency"], arrays["monetary_value"], penalizer=penalizer)
    except ValueError:  # no repeat customer with positive spend
        gg = None
    row = {
        "run_id": run_id,
        "fit_name": fit_name,
        "observation_start": start,
        "calibration_end": end,
        "holdout_end": holdout_end,
        "time_unit_days": 1.0,
        "r": bg.r,
        "alpha": bg.alpha,
        "a": bg.a,
        "b": bg.b,
        "se_r": bg.se_r,
        "se_alpha": bg.se_alpha,
        "se_a": bg.se_a,
        "se_b": bg.se_b,
        "bgnbd_log_likelihood": bg.log_likelihood,
        "bgnbd_customers": bg.n_customers,
        "bgnbd_converged": bg.converged,
        "mean_purchase_rate": bg.r / bg.alpha,
        "penalizer": float(penalizer),
    }
    gg_fields = ["p", "q", "v", "se_p", "se_q", "se_v"]
    if gg is None:
        row.update({name: math.nan for name in gg_fields})
        row.update(
            gamma_gamma_log_likelihood=math.nan,
            gamma_gamma_customers=0,
            gamma_gamma_converged=False,
            population_mean_spend=math.nan,
        )
    else:
        row.update({name: getattr(gg, name) for name in gg_fields})
        row.update(
            gamma_gamma_log_likelihood=gg.log_likelihood,
            gamma_gamma_customers=gg.n_customers,
            gamma_gamma_converged=gg.converged,
            population_mean_spend=gg.p * gg.v / (gg.q - 1.0) if gg.q > 1 else math.inf,
        )
    return row


def clv_parameters(
    summary: pd.DataFrame,
    customer_days: pd.DataFrame,
    *,
    holdout_days: int,
    penalizer: float = 0.0,
    run_id: str | None = None,
) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma parameters, two fits (one row each):

    - ``as_of``: every purchase day up to the as-of date (the SQL summary); it values
      customers in ml_customer_lifetime_value;
    - ``calibration``: purchase days up to the holdout cutoff only; ml_clv_metrics
      scores the holdout with it.

    A fit is left out when it has no customer with a repeat purchase.
    """
    run_id = run_id or new_run_id(
        "ml_clv_parameters", {"holdout_days": holdout_days, "penalizer": penalizer},
        summary, customer_days,
    )
    rows = []
    days = _days_frame(customer_days)
    # Sorted input: the likelihood sums in a fixed order, so refits give identical bits.
    summary = summary.sort_values("customer_id", kind="stable").reset_index(drop=True)
    if len(summary) and len(days):
        start = days["sold_date"].min()
        as_of = _day(summary["as_of_date"].max())
        row = _fit_row(
            summary,
            fit_name="as_of",
            start=start,
            end=as_of,
            holdout_end=None,
            penalizer=penalizer,
            run_id=run_id,
        )
        rows.append(row)
        window = holdout_window(start, as_of, holdout_days)
        if window is not None:
            calibration = _clv_summary(days, start, window.calibration_end)
            rows.append(
                _fit_row(
                    calibration,
                    fit_name="calibration",
                    start=start,
                    end=window.calibration_end,
                    holdout_end=window.holdout_end,
                    penalizer=penalizer,
                    run_id=run_id,
                )
            )
    rows = [row for row in rows if row is not None]
    if not rows:
        return _dates_to_date(_empty(CLV_PARAMETER_COLUMNS), _DATE_COLUMNS)
    frame = pd.DataFrame(rows).reindex(columns=list(CLV_PARAMETER_COLUMNS))
    return _dates_to_date(frame, _DATE_COLUMNS)


def _params(row: pd.Series) -> tuple[clv.BgNbdParams, clv.GammaGammaParams]:
    bg = clv.BgNbdParams(
        r=row["r"],
        alpha=row["alpha"],
        a=row["a"],
        b=row["b"],
        log_likelihood=row["bgnbd_log_likelihood"],
        n_customers=int(row["bgnbd_customers"]),
        converged=bool(row["bgnbd_converged"]),
    )
    gg = clv.GammaGammaParams(
        p=row["p"],
        q=row["q"],
        v=row["v"],
        log_likelihood=row["gamma_gamma_log_likelihood"],
        n_customers=int(row["gamma_gamma_customers"]),
        converged=bool(row["gamma_gamma_converged"]),
    )
    return bg, gg


def _fit(parameters: pd.DataFrame, fit_name: str) -> pd.Series | None:
    chosen = parameters[parameters["fit_name"] == fit_name]
    return None if chosen.empty else chosen.iloc[0]


def bgnbd_usable(bg: clv.BgNbdParams) -> bool:
    """A BG/NBD fit that values customers: converged, with finite parameters. On a short
    history with little repeat buying the optimiser wanders off (r = 270,291, alpha =
    1.2e7 on 7 days of a synthetic store) and the expected purchases cannot be computed;
    such a fit is kept in ml_clv_parameters (bgnbd_converged = false) but values nobody."""
    values = np.array([bg.r, bg.alpha, bg.a, bg.b], dtype=float)
    return bool(bg.converged and np.all(np.isfinite(values)) and np.all(values > 0))


def gamma_gamma_usable(gg: clv.GammaGammaParams) -> bool:
    """A Gamma-Gamma fit that gives a finite expected spend: converged, q > 1. Without it
    (no prices, too few repeat buyers) the value columns stay empty: expected purchases
    only, no spend is invented."""
    values = np.array([gg.p, gg.q, gg.v], dtype=float)
    return bool(gg.converged and np.all(np.isfinite(values)) and gg.q > 1.0)


LIFETIME_VALUE_COLUMNS = {
    "customer_id": "object",
    "as_of_date": "datetime64[us]",
    "repeat_purchase_days": "int64",
    "purchase_span_days": "int64",
    "tenure_days": "int64",
    "repeat_day_value": "float64",
    "probability_alive": "float64",
    "expected_purchases": "float64",
    "expected_spend_per_purchase": "float64",
    "expected_spend": "float64",
    "expected_discounted_value": "float64",
    "horizon_days": "int64",
    "discount_rate_annual": "float64",
}


def customer_lifetime_value(
    summary: pd.DataFrame,
    parameters: pd.DataFrame,
    *,
    horizon_days: int,
    discount_rate_annual: float,
) -> pd.DataFrame:
    """Per customer at the as-of date, from the ``as_of`` fit of ``parameters``:

    P(alive), expected purchase days in the next ``horizon_days`` (BG/NBD), the
    Gamma-Gamma expected value of a purchase day, expected spend (their product) and
    its value discounted monthly at ``discount_rate_annual``
    (`clv.expected_discounted_value`).
    """
    empty = _dates_to_date(_empty(LIFETIME_VALUE_COLUMNS), ["as_of_date"])
    row = _fit(parameters, "as_of")
    if row is None or len(summary) == 0:
        return empty
    bg, gg = _params(row)
    if not bgnbd_usable(bg):
        return empty
    summary = summary.sort_values("customer_id", kind="stable").reset_index(drop=True)
    arrays = _summary_arrays(summary)
    x, t_x, big_t = arrays["frequency"], arrays["recency"], arrays["T"]
    zbar = arrays["monetary_value"]
    purchases = clv.bgnbd_expected_purchases(bg, float(horizon_days), x, t_x, big_t)
    alive = clv.bgnbd_probability_alive(bg, x, t_x, big_t)
    if not (np.all(np.isfinite(purchases)) and np.all(np.isfinite(alive))):
        return empty
    if gamma_gamma_usable(gg):
        per_purchase = clv.gamma_gamma_expected_spend(gg, x, zbar)
        discounted = clv.expected_discounted_value(
            bg,
            gg,
            x,
            t_x,
            big_t,
            zbar,
            horizon_days=float(horizon_days),
            discount_rate_annual=float(discount_rate_annual),
        )
    else:
        per_purchase = np.full(len(x), np.nan)
        discounted = np.full(len(x), np.nan)
    frame = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].astype(str),
            "as_of_date": summary["as_of_date"],
            "repeat_purchase_days": summary["repeat_purchase_days"].astype(np.int64),
            "purchase_span_days": summary["purchase_span_days"].astype(np.int64),
            "tenure_days": summary["tenure_days"].astype(np.int64),
            "repeat_day_value": zbar,
            "probability_alive": alive,
            "expected_purchases": purchases,
            "expected_spend_per_purchase": per_purchase,
            "expected_spend": purchases * per_purchase,
            "expected_discounted_value": discounted,
            "horizon_days": int(horizon_days),
            "discount_rate_annual": float(discount_rate_annual),
        }
    )
    return _dates_to_date(frame, ["as_of_date"])


# --------------------------------------------------------------------------- evaluation

MODELS = ("bgnbd_gamma_gamma", "gradient_boosting", "naive_rate")


def _gradient_boosting(random_state: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    # Poisson loss: the targets are non-negative rates with many zeros. No early
    # stopping, so no random validation split: the fit depends on random_state only.
    return HistGradientBoostingRegressor(
        loss="poisson",
        learning_rate=0.05,
        max_iter=200,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        early_stopping=False,
        random_state=random_state,
    )


def _holdout_actuals(days: pd.DataFrame, customers: pd.Index, start, end) -> pd.DataFrame:
    window = days[(days["sold_date"] > start) & (days["sold_date"] <= end)]
    grouped = window.groupby("customer_id")
    # without prices there is no spend to compare with: null, not 0
    priced = bool(days["revenue"].notna().any())
    spend = (grouped["revenue"].sum().reindex(customers, fill_value=0.0) if priced
             else pd.Series(np.nan, index=customers))
    return pd.DataFrame(
        {
            "purchases": grouped["sold_date"].count().reindex(customers, fill_value=0),
            "spend": spend,
        }
    ).astype({"purchases": np.int64, "spend": float})


def holdout_predictions(
    customer_days: pd.DataFrame,
    profiles: pd.DataFrame | None,
    calibration_parameters: pd.Series | None,
    window: HoldoutWindow,
    *,
    random_state: int,
) -> pd.DataFrame:
    """Per calibration customer: actual holdout purchase days and spend, and each model's
    prediction of them (columns ``<model>__purchases`` and ``<model>__spend``).

    - bgnbd_gamma_gamma: BG/NBD expected purchase days over the holdout (fitted up to the
      cutoff; refitted here when ``calibration_parameters`` is None) times the
      Gamma-Gamma expected value of a purchase day;
    - gradient_boosting: two HistGradientBoostingRegressor (purchase days per day and
      spend per day after the training origin, features up to it), applied to the
      features at the cutoff and multiplied by the holdout length;
    - naive_rate: the customer's calibration repeat rate carries on: repeat purchase
      days / T and repeat spend / T (0 when T = 0), times the holdout length.
    """
    days = _days_frame(customer_days)
    start, cutoff, end = window.observation_start, window.calibration_end, window.holdout_end
    days = days[days["sold_date"] >= start]
    features = customer_features(days, cutoff, profiles)
    if features.empty:
        return pd.DataFrame()
    horizon = float(window.holdout_days)
    actual = _holdout_actuals(days, features.index, cutoff, end)
    out = pd.DataFrame(index=features.index)
    out["actual__purchases"] = actual["purchases"]
    out["actual__spend"] = actual["spend"]

    # BG/NBD + Gamma-Gamma, fitted on calibration days only.
    x = features["repeat_purchase_days"].to_numpy(float)
    t_x = features["purchase_span_days"].to_numpy(float)
    big_t = features["tenure_days"].to_numpy(float)
    zbar = features["repeat_day_value"].to_numpy(float)
    if calibration_parameters is None:
        summary = features.assign(as_of_date=cutoff)
        row = _fit_row(
            summary,
            fit_name="calibration",
            start=start,
            end=cutoff,
            holdout_end=end,
            penalizer=0.0,
            run_id="",
        )
        calibration_parameters = None if row is None else pd.Series(row)
    if calibration_parameters is not None:
        bg, gg = _params(calibration_parameters)
        if bgnbd_usable(bg):
            purchases = clv.bgnbd_expected_purchases(bg, horizon, x, t_x, big_t)
            out["bgnbd_gamma_gamma__purchases"] = purchases
            out["bgnbd_gamma_gamma__spend"] = (
                purchases * clv.gamma_gamma_expected_spend(gg, x, zbar)
                if gamma_gamma_usable(gg) else np.nan
            )

    # Gradient boosting: learns on an earlier origin, never sees the holdout.
    if window.training_origin is not None:
        origin = window.training_origin
        train = customer_features(days, origin, profiles)
        target = _holdout_actuals(days, train.index, origin, cutoff) / window.training_window_days
        # One OpenMP thread: on small data, thread start-up and spinning cost sklearn
        # far more than they save (25x slower with 2 threads on the test store).
        models = {name: _gradient_boosting(random_state) for name in ("purchases", "spend")}
        # A feature with no value at all (e.g. household size when the data has no
        # customers table) cannot be binned; the model does without it.
        usable = [name for name in FEATURES if train[name].notna().any()]
        # (sklearn is imported above: threadpoolctl only limits libraries already loaded.)
        with threadpool_limits(limits=1):
            for name, model in models.items():
                if train.empty or target[name].isna().any():  # no prices: no spend
                    continue
                model.fit(train[usable].to_numpy(float), target[name].to_numpy(float))
                rate = model.predict(features[usable].to_numpy(float))
                out[f"gradient_boosting__{name}"] = np.clip(rate, 0.0, None) * horizon

    # Naive: the observed repeat rate continues.
    repeat_spend = features["repeat_day_value"] * features["repeat_purchase_days"]
    per_day = np.where(big_t > 0, 1.0 / np.where(big_t > 0, big_t, 1.0), 0.0)
    out["naive_rate__purchases"] = x * per_day * horizon
    out["naive_rate__spend"] = repeat_spend.to_numpy(float) * per_day * horizon
    return out


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


METRIC_COLUMNS = {
    "run_id": "object",
    "model": "object",
    "target": "object",
    "customers": "int64",
    "actual_total": "float64",
    "predicted_total": "float64",
    "total_ratio": "float64",
    "mae": "float64",
    "rmse": "float64",
    "correlation": "float64",
    "actual_mean": "float64",
    "observation_start": "datetime64[us]",
    "calibration_end": "datetime64[us]",
    "holdout_start": "datetime64[us]",
    "holdout_end": "datetime64[us]",
    "holdout_days": "int64",
    "training_origin": "datetime64[us]",
    "training_window_days": "int64",
}

_METRIC_DATES = (
    "observation_start",
    "calibration_end",
    "holdout_start",
    "holdout_end",
    "training_origin",
)


def holdout_metrics(
    predictions: pd.DataFrame, window: HoldoutWindow | None, run_id: str
) -> pd.DataFrame:
    """MAE, RMSE, Pearson correlation and totals of each model against the actuals."""
    rows = []
    for model in MODELS:
        for target in ("purchases", "spend"):
            column = f"{model}__{target}"
            if column not in predictions:
                continue
            actual = predictions[f"actual__{target}"].to_numpy(float)
            predicted = predictions[column].to_numpy(float)
            if np.isnan(actual).any() or np.isnan(predicted).any():
                continue  # no prices, or no spend model: nothing to score
            error = predicted - actual
            rows.append(
                {
                    "run_id": run_id,
                    "model": model,
                    "target": target,
                    "customers": len(actual),
                    "actual_total": float(actual.sum()),
                    "predicted_total": float(predicted.sum()),
                    "total_ratio": float(predicted.sum() / actual.sum())
                    if actual.sum() > 0
                    else math.nan,
                    "mae": float(np.mean(np.abs(error))),
                    "rmse": float(np.sqrt(np.mean(error**2))),
                    "correlation": _correlation(actual, predicted),
                    "actual_mean": float(actual.mean()),
                    "observation_start": window.observation_start,
                    "calibration_end": window.calibration_end,
                    "holdout_start": window.calibration_end + DAY,
                    "holdout_end": window.holdout_end,
                    "holdout_days": window.holdout_days,
                    "training_origin": window.training_origin
                    if model == "gradient_boosting"
                    else pd.NaT,
                    "training_window_days": window.training_window_days
                    if model == "gradient_boosting"
                    else 0,
                }
            )
    frame = pd.DataFrame(rows) if rows else _empty(METRIC_COLUMNS)
    frame = frame.reindex(columns=list(METRIC_COLUMNS))
    return _dates_to_date(frame, _METRIC_DATES)


def clv_holdout_metrics(
    customer_days: pd.DataFrame,
    profiles: pd.DataFrame | None,
    parameters: pd.DataFrame,
    *,
    holdout_days: int,
    random_state: int,
    run_id: str | None = None,
) -> pd.DataFrame:
    """ml_clv_metrics: the holdout evaluation of every model (see `holdout_predictions`),
    scored with the ``calibration`` fit of ``parameters``."""
    run_id = run_id or new_run_id(
        "ml_clv_metrics", {"holdout_days": holdout_days, "random_state": random_state},
        customer_days, *(frame for frame in (profiles, parameters) if frame is not None),
    )
    days = _days_frame(customer_days)
    if days.empty:
        return holdout_metrics(pd.DataFrame(), None, run_id)
    window = holdout_window(days["sold_date"].min(), days["as_of_date"].max(), holdout_days)
    calibration = _fit(parameters, "calibration")
    if window is None or calibration is None:
        return holdout_metrics(pd.DataFrame(), None, run_id)
    predictions = holdout_predictions(
        days, profiles, calibration, window, random_state=random_state
    )
    return holdout_metrics(predictions, window, run_id)
