"""Honest evaluation shared by the ML models: temporal splits, metric definitions, and
the long metric frame every model returns (unioned into ``ml.ml_model_metrics``).

Every time-ordered model trains on days before a cutoff and is evaluated on the days
from the cutoff on (:func:`temporal_cutoff`); nothing is split at random across time.
Each metric row says which model and variant (the model itself or a baseline) it
measures, on which split and data window, and the run id of the inputs and parameters
that produced it (:func:`xsell.ml.registry.compute_run_id`), so two builds of the same
data and vars write identical rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

__all__ = [
    "IMPORTANCE_COLUMNS",
    "METRIC_COLUMNS",
    "MetricRows",
    "best_f1_threshold",
    "binary_metrics",
    "calibration_table",
    "conform",
    "empty_frame",
    "expected_calibration_error",
    "forecast_errors",
    "parse_date",
    "ranking_metrics",
    "temporal_cutoff",
    "threshold_metrics",
    "to_date",
]

DATE = "date"  # marker for columns stored as datetime.date (DuckDB DATE)
_EMPTY_DATE = pd.ArrowDtype(pa.date32())  # what an empty DATE column is typed as
DATE_DTYPE = _EMPTY_DATE  # Arrow dates: DuckDB stores them as DATE, 4 bytes a row

METRIC_COLUMNS = {
    "run_id": "str",
    "model": "str",
    "variant": "str",
    "is_baseline": "bool",
    "segment": "str",
    "split": "str",
    "metric": "str",
    "value": "float64",
    "n": "int64",
    "window_start": DATE,
    "window_end": DATE,
    "train_start": DATE,
    "train_end": DATE,
}


# Feature importances of every model: what ``importance`` means is in ``method``
# (permutation drop in ROC AUC, |standardised coefficient|, ...); ``signed_value`` keeps
# the sign or the multiplicative effect where the method has one.
IMPORTANCE_COLUMNS = {
    "run_id": "str",
    "model": "str",
    "variant": "str",
    "segment": "str",
    "feature": "str",
    "importance": "float64",
    "importance_std": "float64",
    "signed_value": "float64",
    "method": "str",
}


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """A typed empty frame, so an empty result still creates a table with the right types
    (an empty object column would reach DuckDB as type NULL, hence Arrow dates)."""
    return pd.DataFrame(
        {
            name: pd.Series(dtype=_EMPTY_DATE if dtype == DATE else dtype)
            for name, dtype in columns.items()
        }
    )


def to_date(values) -> pd.Series:
    """Timestamps to datetime.date objects, which DuckDB stores as DATE (pandas would
    otherwise round-trip them as TIMESTAMP)."""
    series = pd.Series(values)
    converted = pd.to_datetime(series)
    # converted once per distinct day (a frame of millions of rows holds a few hundred)
    codes, days = pd.factorize(converted)
    table = np.empty(len(days) + 1, dtype=object)
    for position, day in enumerate(days):
        table[position] = day.date()
    table[-1] = None  # code -1: missing
    return pd.Series(table[codes], index=series.index, dtype=object)


def text_at(values, rows: np.ndarray) -> pd.Categorical:
    """Text ``values`` at positions ``rows``, as a categorical of the distinct values: a
    column repeating a few ids over millions of rows holds each id once."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    categories = pd.Index(np.asarray(uniques, dtype=object).astype(str), dtype=object)
    return pd.Categorical.from_codes(codes[np.asarray(rows)], categories=categories)


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Select and type the declared columns (dates as datetime.date). A text column that
    is a categorical stays one, with text categories: a table of tens of millions of rows
    repeats a few ids (xsell.frames.to_arrow writes it as Arrow dictionary text, which
    DuckDB stores as VARCHAR). A date column already in Arrow dates stays as it is."""
    out = pd.DataFrame(index=frame.index)
    for name, dtype in columns.items():
        values = frame[name]
        if dtype == DATE:
            if not len(frame):
                out[name] = pd.Series(dtype=_EMPTY_DATE)
            elif values.dtype == _EMPTY_DATE:
                out[name] = values
            else:
                out[name] = to_date(values)
        elif dtype == "str" and isinstance(values.dtype, pd.CategoricalDtype):
            out[name] = values.cat.rename_categories(values.cat.categories.astype(str))
        else:
            out[name] = values.astype(dtype)
    return out.reset_index(drop=True)


def parse_date(value) -> dt.date | None:
    """A date from a dbt var (strings; None, "None", "null" or "" mean unset)."""
    if value is None or (isinstance(value, str) and value.strip() in {"", "None", "null", "none"}):
        return None
    return pd.Timestamp(value).date()


def temporal_cutoff(
    dates: Iterable, holdout_days: int, cutoff_date: dt.date | str | None = None
) -> dt.date | None:
    """First day of the test split: ``cutoff_date`` when given, else the last
    ``holdout_days`` days of the data (the last date included). None without data."""
    explicit = parse_date(cutoff_date)
    if explicit is not None:
        return explicit
    series = pd.to_datetime(pd.Series(list(dates) if not isinstance(dates, pd.Series) else dates))
    if series.empty or series.isna().all():
        return None
    last = series.max().normalize()
    return (last - pd.Timedelta(days=int(holdout_days) - 1)).date()


def training_sample(rows: int, max_rows: int, random_state: int) -> np.ndarray:
    """Positions (sorted) of the training rows a model is fitted on: all ``rows`` when
    there are at most ``max_rows``, else a fixed random sample of ``max_rows`` of them.
    On a large store the fit costs grow with the rows while the holdout figures stop
    moving long before (10M lines: 2M restaurant training receipts); scores, metrics
    and baselines still use every row."""
    if max_rows <= 0:
        raise ValueError(f"max_train_rows must be positive, got {max_rows}")
    if rows <= max_rows:
        return np.arange(rows)
    chosen = np.random.default_rng(random_state).choice(rows, size=max_rows, replace=False)
    return np.sort(chosen)


# --------------------------------------------------------------------------- metric rows


class MetricRows:
    """Collects metric rows of one model run; :meth:`frame` returns the typed long frame."""

    def __init__(self, model: str):
        self.model = model
        self.rows: list[dict] = []

    def add(
        self,
        variant: str,
        metrics: dict[str, float],
        *,
        split: str,
        n: int,
        window: tuple,
        train: tuple,
        segment: str = "all",
        is_baseline: bool = False,
    ) -> None:
        for metric, value in metrics.items():
            self.rows.append(
                {
                    "variant": variant,
                    "is_baseline": is_baseline,
                    "segment": segment,
                    "split": split,
                    "metric": metric,
                    "value": float(value) if value is not None else np.nan,
                    "n": int(n),
                    "window_start": window[0],
                    "window_end": window[1],
                    "train_start": train[0],
                    "train_end": train[1],
                }
            )

    def frame(self, run_id: str) -> pd.DataFrame:
        if not self.rows:
            return empty_frame(METRIC_COLUMNS)
        frame = pd.DataFrame(self.rows)
        frame["run_id"] = run_id
        frame["model"] = self.model
        frame = conform(frame, METRIC_COLUMNS)
        keys = ["model", "segment", "split", "variant", "metric"]
        return frame.sort_values(keys, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- classification


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-count bins, weighted by size."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if y.size == 0:
        return np.nan
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, y.size)):
        total += chunk.size * abs(y[chunk].mean() - p[chunk].mean())
    return total / y.size


def ranking_areas(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """ROC AUC and average precision of scores ``p`` for labels ``y`` (0/1, both present),
    as scikit-learn defines them (``roc_auc_score``: the trapezoidal area, a tie counting
    half; ``average_precision_score``: the sum over distinct thresholds of the recall
    gained times the precision there); test_ml holds them equal to scikit-learn's.
    Computed here from one sort because those functions validate their input at some
    7 ms a call, and a store with hundreds of add-on categories asks for thousands."""
    order = np.argsort(p, kind="mergesort")[::-1]
    p, y = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p)), y.size - 1]  # last row of each distinct score
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    roc_auc = np.trapezoid(np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]])
    recall = tps / tps[-1]
    average_precision = np.sum(np.diff(np.r_[0.0, recall]) * (tps / (last + 1)))
    return float(roc_auc), float(average_precision)


def binary_metrics(y, p) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier score, log loss, calibration error,
    base rate and mean prediction. AUCs are NaN when only one class is present."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    both = y.size > 0 and 0 < y.sum() < y.size
    eps = 1e-12
    q = np.clip(p, eps, 1 - eps)
    roc_auc, pr_auc = ranking_areas(y, p) if both else (np.nan, np.nan)
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "brier": float(np.mean((p - y) ** 2)) if y.size else np.nan,
        "log_loss": float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))) if y.size else np.nan,
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()) if y.size else np.nan,
        "mean_predicted": float(p.mean()) if y.size else np.nan,
    }


def threshold_metrics(y, predicted) -> dict[str, float]:
    """Precision, recall and F1 of hard predictions (0 where undefined)."""
    y = np.asarray(y, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    tp = float(np.sum(y & predicted))
    precision = tp / predicted.sum() if predicted.sum() else 0.0
    recall = tp / y.sum() if y.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def best_f1_threshold(y, p) -> float:
    """The probability threshold with the highest F1 on (training) data."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=float)
    if y.sum() == 0:
        return 1.0
    order = np.argsort(-p, kind="stable")
    tp = np.cumsum(y[order])
    k = np.arange(1, y.size + 1)
    f1 = 2 * tp / (k + y.sum())
    # only cut between distinct scores
    distinct = np.r_[p[order][1:] != p[order][:-1], True]
    best = np.argmax(np.where(distinct, f1, -1))
    return float(p[order][best])


def calibration_table(y, p, bins: int = 10) -> pd.DataFrame:
    """Equal-count bins of the prediction (deciles by default): rows, mean predicted
    probability, observed rate, and the bin's probability range."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    rows = []
    for index, chunk in enumerate(np.array_split(order, bins) if y.size else [], start=1):
        if chunk.size == 0:
            continue
        rows.append(
            {
                "decile": index,
                "rows": int(chunk.size),
                "mean_predicted": float(p[chunk].mean()),
                "observed_rate": float(y[chunk].mean()),
                "min_predicted": float(p[chunk].min()),
                "max_predicted": float(p[chunk].max()),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- ranking


def ranking_metrics(
    lists: np.ndarray, relevant: sparse.csr_matrix, k: int, catalogue_size: int
) -> dict[str, float]:
    """Top-k list quality over every user with at least one relevant item.

    ``lists`` (users x k) holds item indices (-1 = empty slot); ``relevant`` is a
    users x items 0/1 matrix over the full catalogue (no sampled negatives).
    recall@k = hits / |relevant|; ndcg@k with binary gains and the ideal DCG of
    min(|relevant|, k) hits; hit_rate@k = share of users with a hit; coverage = share of
    the catalogue recommended to at least one user (of all users in ``lists``).
    """
    lists = np.asarray(lists)[:, :k]
    relevant = sparse.csr_matrix(relevant)
    n_relevant = np.asarray(relevant.sum(axis=1)).ravel().astype(np.int64)
    valid = lists >= 0
    rows = np.repeat(np.arange(lists.shape[0]), lists.shape[1]).reshape(lists.shape)
    hits = np.zeros(lists.shape, dtype=bool)
    if valid.any():
        hits[valid] = np.asarray(relevant[rows[valid], lists[valid]]).ravel() > 0
    discounts = 1.0 / np.log2(np.arange(2, lists.shape[1] + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)
    idcg = ideal[np.clip(n_relevant, 1, lists.shape[1]) - 1]
    users = n_relevant > 0
    n_hits = hits.sum(axis=1)
    recommended = np.unique(lists[valid])
    return {
        f"recall_at_{k}": (
            float(np.mean(n_hits[users] / n_relevant[users])) if users.any() else np.nan
        ),
        f"ndcg_at_{k}": float(np.mean(dcg[users] / idcg[users])) if users.any() else np.nan,
        f"hit_rate_at_{k}": float(np.mean(n_hits[users] > 0)) if users.any() else np.nan,
        "catalogue_coverage": recommended.size / catalogue_size if catalogue_size else np.nan,
    }


# --------------------------------------------------------------------------- forecasts


def forecast_errors(actual, forecast) -> dict[str, float]:
    """MAPE (over days with actual > 0), SMAPE (0 where both are 0), MAE and bias
    (mean forecast - actual), on the same points for every variant."""
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    positive = a > 0
    denominator = np.abs(a) + np.abs(f)
    safe = np.where(denominator > 0, denominator, 1.0)
    smape = np.where(denominator > 0, 2 * np.abs(f - a) / safe, 0.0)
    return {
        "mape": (
            float(np.mean(np.abs(f[positive] - a[positive]) / a[positive]))
            if positive.any()
            else np.nan
        ),
        "smape": float(np.mean(smape)) if a.size else np.nan,
        "mae": float(np.mean(np.abs(f - a))) if a.size else np.nan,
        "bias": float(np.mean(f - a)) if a.size else np.nan,
    }
