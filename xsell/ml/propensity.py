"""Propensity models on receipts: will this shopper eat at the restaurant, and which add-on
categories will an anchor purchase pull along?

Both train on receipts before a cutoff (the last ``holdout_days`` days, or
``cutoff_date``) and are evaluated on the receipts from the cutoff on, against a baseline
that knows only the anchor: its rate in the training receipts.

``restaurant_propensity``: member purchase receipts (dbt: int_member_receipts_profiled)
with the basket (value, items, add-on and anchor lines, anchor families), the member
(household size, distance) and the moment (hour, weekday); label: a restaurant visit of
the member in the same store on the same day. A HistGradientBoostingClassifier
(no early stopping, so no random validation split across time); the baseline is the
training rate by has_anchor. Metrics ROC AUC, PR AUC, Brier, log loss, calibration error;
calibration by deciles; permutation importances (ROC AUC) on the test receipts.

``addon_propensity``: anchor receipts (int_anchor_receipts_profiled), one logistic
regression per add-on category (label: the category is in the receipt's attach set) on
anchor families, household size, distance, member or not, hour, weekday and whether the
category is on campaign that day; the baseline is the category's training rate among
receipts with the same anchor families. Per category: ROC AUC, PR AUC, Brier, base rate,
and precision/recall/F1 at the threshold that maximises F1 on the training receipts.
``ml_addon_recommendations_by_family`` ranks, per family, the categories by model lift:
the mean predicted attach probability over the family's receipts divided by the
category's base rate over all purchase receipts of the training period (the lift of
fct_addon_lift, from the model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse, special
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from xsell.ml.evaluation import (
    DATE,
    DATE_DTYPE,
    IMPORTANCE_COLUMNS,
    MetricRows,
    best_f1_threshold,
    binary_metrics,
    calibration_table,
    conform,
    empty_frame,
    temporal_cutoff,
    text_at,
    threshold_metrics,
    to_date,
    training_sample,
)
from xsell.ml.registry import ArtifactError, ArtifactStore, compute_run_id, model_mode

__all__ = [
    "ADDON_COLUMNS",
    "CALIBRATION_COLUMNS",
    "FAMILY_RECOMMENDATION_COLUMNS",
    "RESTAURANT_COLUMNS",
    "AddonParams",
    "BasketEncoder",
    "RestaurantParams",
    "addon_propensity",
    "restaurant_propensity",
    "split_families",
]

RESTAURANT = "ml_restaurant_propensity"
# Receipts in a fixed order whatever their numbers: a receipt number is a store's own
# (two stores may both have receipt 1), so the store comes before it.
RECEIPT_ORDER = ["sold_date", "store_id", "receipt_id"]
ADDON = "ml_addon_propensity"

RESTAURANT_COLUMNS = {
    "receipt_id": "str",
    "customer_id": "str",
    "store_id": "str",
    "sold_date": DATE,
    "split": "str",
    "has_anchor": "bool",
    "has_restaurant_visit": "bool",
    "restaurant_probability": "float64",
    "baseline_probability": "float64",
    "probability_decile": "int64",
    "run_id": "str",
}

CALIBRATION_COLUMNS = {
    "split": "str",
    "variant": "str",
    "decile": "int64",
    "receipts": "int64",
    "mean_predicted": "float64",
    "observed_rate": "float64",
    "min_predicted": "float64",
    "max_predicted": "float64",
    "run_id": "str",
}

ADDON_COLUMNS = {
    "receipt_id": "str",
    "store_id": "str",
    "sold_date": DATE,
    "split": "str",
    "anchor_families": "str",
    "addon_category": "str",
    "is_attached": "bool",
    "probability": "float64",
    "baseline_probability": "float64",
    "is_predicted": "bool",
    "run_id": "str",
}

FAMILY_RECOMMENDATION_COLUMNS = {
    "anchor_family": "str",
    "addon_category": "str",
    "promote_rank": "int64",
    "is_promoted": "bool",
    "expected_attach_rate": "float64",
    "base_rate": "float64",
    "model_lift": "float64",
    "observed_attach_rate": "float64",
    "anchor_receipts": "int64",
    "run_id": "str",
}

class CommaLists:
    """Comma-separated text (anchor families, add-on categories) parsed once per distinct
    value: millions of receipts carry a few dozen distinct lists, so rows share the
    parsed form through integer codes and no Python work is done per row."""

    def __init__(self, values: pd.Series):
        codes, uniques = pd.factorize(values.fillna("").astype(str).to_numpy(), sort=False)
        self.index = values.index
        self.codes = codes
        self.items = [tuple(sorted({part for part in text.split(",") if part}))
                      for text in uniques]

    def _take(self, per_value: list) -> np.ndarray:
        table = np.empty(len(per_value), dtype=object)
        for position, value in enumerate(per_value):
            table[position] = value
        return table[self.codes]

    def tuples(self) -> pd.Series:
        """Sorted tuples of the distinct items (empty for none), per row."""
        return pd.Series(self._take(self.items), index=self.index, dtype=object)

    def keys(self) -> np.ndarray:
        """The sorted items joined by commas, per row."""
        return self._take([",".join(items) for items in self.items])

    @cached_property
    def _holding(self) -> dict[str, list[int]]:
        """Per item, the distinct lists holding it (found once for the hundreds of add-on
        categories of a large catalogue)."""
        holding: dict[str, list[int]] = {}
        for position, items in enumerate(self.items):
            for name in items:
                holding.setdefault(name, []).append(position)
        return holding

    def contains(self, item: str) -> np.ndarray:
        """Per row: the row's list holds ``item``."""
        flags = np.zeros(len(self.items), dtype=bool)
        flags[self._holding.get(item, [])] = True
        return flags[self.codes]

    def multi_hot(self, names: list[str]) -> np.ndarray:
        """Rows x names: 1.0 where the row's list holds the name."""
        table = np.array(
            [[1.0 if name in items else 0.0 for name in names] for items in self.items],
            dtype=float,
        ).reshape(len(self.items), len(names))
        return table[self.codes]


def split_families(values: pd.Series) -> pd.Series:
    """Comma-separated anchor families to sorted tuples (empty for none)."""
    return CommaLists(values).tuples()


def _multi_hot(values: pd.Series, names: list[str]) -> np.ndarray:
    """Multi-hot matrix of comma-separated values over names."""
    return CommaLists(values).multi_hot(names)


def _split_of(dates: pd.Series, cutoff) -> np.ndarray:
    return np.where(pd.to_datetime(dates) >= pd.Timestamp(cutoff), "test", "train")


def _windows(dates: pd.Series, cutoff) -> tuple[tuple, tuple]:
    dates = pd.to_datetime(dates)
    cutoff = pd.Timestamp(cutoff)
    return (
        (dates.min(), cutoff - pd.Timedelta(days=1)),
        (cutoff, dates.max()),
    )


# --------------------------------------------------------------------------- restaurant


@dataclass(frozen=True)
class RestaurantParams:
    holdout_days: int = 28
    cutoff_date: str | None = None
    random_state: int = 42
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    permutation_repeats: int = 5
    max_train_rows: int = 500_000


RESTAURANT_NUMERIC = [
    "revenue",
    "item_count",
    "addon_line_count",
    "anchor_line_count",
    "household_size",
    "distance_km",
    "sold_hour",
    "sold_weekday",
    "has_anchor",
]


def _restaurant_matrix(frame: pd.DataFrame, families: list[str],
                       numeric: list[str] = RESTAURANT_NUMERIC) -> np.ndarray:
    values = frame[numeric].astype(float).to_numpy()
    return np.hstack([values, _multi_hot(frame["anchor_families"], families)])


def _known_numeric(train: pd.DataFrame) -> list[str]:
    """The numeric features the training receipts know: a store without prices has no
    basket value on any receipt, and a feature without one value tells the model nothing
    (it is left out, not filled in)."""
    return [name for name in RESTAURANT_NUMERIC if train[name].notna().any()]


def restaurant_propensity(
    receipts: pd.DataFrame, *, params: RestaurantParams, store: ArtifactStore, mode: str = "train"
) -> pd.DataFrame:
    """The ml_restaurant_propensity node: P(restaurant visit the same day) per member
    purchase receipt, with the has-anchor baseline; saves or loads the bundle."""
    mode = model_mode(mode)
    frame = receipts.sort_values(RECEIPT_ORDER, kind="stable").reset_index(drop=True)
    if mode == "score":
        bundle, meta = store.current(RESTAURANT)
        return _restaurant_scores(frame, bundle, meta["run_id"], split="score")
    run_id = compute_run_id(RESTAURANT, asdict(params), receipts)
    cutoff = temporal_cutoff(frame["sold_date"], params.holdout_days, params.cutoff_date)
    split = _split_of(frame["sold_date"], cutoff) if cutoff else np.array([], dtype=str)
    train, test = frame[split == "train"], frame[split == "test"]
    y_train = train["has_restaurant_visit"].astype(bool).to_numpy()
    if len(train) == 0 or y_train.all() or not y_train.any():
        reason = "no restaurant visits" if len(train) and not y_train.any() else "no data"
        store.save(RESTAURANT, run_id, {"outputs": {}, "estimator": None}, {"status": reason})
        return empty_frame(RESTAURANT_COLUMNS)

    families = sorted({f for fams in CommaLists(train["anchor_families"]).items for f in fams})
    numeric = _known_numeric(train)
    features = numeric + [f"family_{name}" for name in families]
    estimator = HistGradientBoostingClassifier(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        early_stopping=False,
        random_state=params.random_state,
    )
    fit_rows = training_sample(len(train), params.max_train_rows, params.random_state)
    with threadpool_limits(1):
        estimator.fit(_restaurant_matrix(train.iloc[fit_rows], families, numeric),
                      y_train[fit_rows])
    rates = train.groupby("has_anchor")["has_restaurant_visit"].mean()
    baseline = {bool(k): float(v) for k, v in rates.items()}
    bundle = {"estimator": estimator, "families": families, "features": features,
              "numeric": numeric, "baseline": baseline,
              "fallback_rate": float(y_train.mean())}
    scored = _restaurant_scores(frame, bundle, run_id, split=split)

    metrics = MetricRows(RESTAURANT)
    train_window, test_window = _windows(frame["sold_date"], cutoff)
    calibration = []
    for name, window in (("train", train_window), ("test", test_window)):
        part = scored[scored["split"] == name]
        if part.empty:
            continue
        y = part["has_restaurant_visit"].to_numpy(dtype=float)
        for variant, column, is_baseline in (
            ("hist_gradient_boosting", "restaurant_probability", False),
            ("baseline_has_anchor_rate", "baseline_probability", True),
        ):
            metrics.add(variant, binary_metrics(y, part[column]), split=name, n=len(part),
                        window=window, train=train_window, is_baseline=is_baseline)
        if name == "test":
            calibration.append(_calibration(y, part))
    importances = _permutation_importances(estimator, scored, frame, families, features, params)
    outputs = {
        "metrics": metrics.frame(run_id),
        "calibration": pd.concat(calibration, ignore_index=True).assign(run_id=run_id)
        if calibration else None,
        "importances": importances.assign(run_id=run_id),
    }
    store.save(
        RESTAURANT, run_id, {**bundle, "outputs": outputs},
        {
            "status": "trained",
            "estimator": type(estimator).__name__,
            "features": features,
            "params": asdict(params),
            "train_start": train_window[0], "train_end": train_window[1],
            "test_start": test_window[0], "test_end": test_window[1],
            "train_rows": len(train), "test_rows": len(test), "fit_rows": int(fit_rows.size),
        },
    )
    return scored


def _calibration(y: np.ndarray, part: pd.DataFrame) -> pd.DataFrame:
    """Test-split calibration: deciles of the model's probability, and the baseline's
    groups (it has one value per has_anchor, so its "deciles" are those groups)."""
    model = calibration_table(y, part["restaurant_probability"].to_numpy())
    model["variant"] = "hist_gradient_boosting"
    p = part["baseline_probability"].to_numpy()
    groups = []
    for index, value in enumerate(np.unique(p), start=1):
        chosen = p == value
        groups.append({"decile": index, "rows": int(chosen.sum()), "mean_predicted": value,
                       "observed_rate": float(y[chosen].mean()), "min_predicted": value,
                       "max_predicted": value})
    baseline = pd.DataFrame(groups).assign(variant="baseline_has_anchor_rate")
    return pd.concat([model, baseline], ignore_index=True).assign(
        split="test", receipts=lambda f: f["rows"]
    )


def _restaurant_scores(frame: pd.DataFrame, bundle: dict, run_id: str, split) -> pd.DataFrame:
    if bundle.get("estimator") is None or frame.empty:
        return empty_frame(RESTAURANT_COLUMNS)
    with threadpool_limits(1):
        probability = bundle["estimator"].predict_proba(
            _restaurant_matrix(frame, bundle["families"],
                               bundle.get("numeric", RESTAURANT_NUMERIC))
        )[:, 1]
    out = frame[["receipt_id", "customer_id", "store_id", "sold_date", "has_anchor",
                 "has_restaurant_visit"]].copy()
    out["split"] = split
    out["restaurant_probability"] = probability
    out["baseline_probability"] = (
        out["has_anchor"].astype(bool).map(bundle["baseline"]).fillna(bundle["fallback_rate"])
    )
    ranks = out.groupby("split")["restaurant_probability"].rank(method="first", pct=True)
    out["probability_decile"] = np.ceil(ranks * 10).clip(1, 10).astype("int64")
    out["run_id"] = run_id
    return conform(out, RESTAURANT_COLUMNS)


# Permutation importances score at most this many test receipts per repeat (a fixed random
# sample, sklearn's max_samples): each of the repeats x features predictions costs a pass
# of the boosted trees over them, which on a 10M-line store (170k test receipts) took
# longer than fitting the model. Smaller test splits are used whole, as before.
PERMUTATION_MAX_ROWS = 10_000


def _permutation_importances(estimator, scored, frame, families, features, params):
    test = scored["split"] == "test"
    if test.sum() == 0 or scored.loc[test, "has_restaurant_visit"].nunique() < 2:
        return empty_frame(IMPORTANCE_COLUMNS)
    X = _restaurant_matrix(frame[test.to_numpy()], families,
                           [f for f in features if f in RESTAURANT_NUMERIC])
    y = scored.loc[test, "has_restaurant_visit"].astype(bool).to_numpy()
    max_samples = PERMUTATION_MAX_ROWS if len(y) > PERMUTATION_MAX_ROWS else 1.0
    with threadpool_limits(1):
        result = permutation_importance(
            estimator, X, y, scoring="roc_auc", n_repeats=params.permutation_repeats,
            random_state=params.random_state, max_samples=max_samples,
        )
    return pd.DataFrame(
        {
            "model": RESTAURANT,
            "variant": "hist_gradient_boosting",
            "segment": "all",
            "feature": features,
            "importance": result.importances_mean,
            "importance_std": result.importances_std,
            "signed_value": result.importances_mean,
            "method": "permutation_roc_auc_test",
        }
    )


# --------------------------------------------------------------------------- add-ons


@dataclass(frozen=True)
class AddonParams:
    holdout_days: int = 28
    cutoff_date: str | None = None
    random_state: int = 42
    regularization_c: float = 1.0
    min_positives: int = 30
    promote_top_k: int = 3
    max_train_rows: int = 500_000


class BasketEncoder:
    """Anchor receipt -> model matrix: anchor-family multi-hot, household size and log
    distance (median-imputed, standardised, with a missing flag), member flag, hour and
    weekday one-hot. Learnt on the training receipts only."""

    def fit(self, frame: pd.DataFrame) -> BasketEncoder:
        families = CommaLists(frame["anchor_families"]).items
        self.families = sorted({f for fams in families for f in fams})
        self.hours = sorted(frame["sold_hour"].dropna().astype(int).unique().tolist())
        self.weekdays = sorted(frame["sold_weekday"].dropna().astype(int).unique().tolist())
        self.stats = {}
        for column, values in self._numeric(frame).items():
            known = values[~np.isnan(values)]
            median = float(np.median(known)) if known.size else 0.0
            filled = np.where(np.isnan(values), median, values)
            if not filled.size:  # no training receipt: the identity scaling
                self.stats[column] = (median, 0.0, 1.0)
                continue
            self.stats[column] = (median, float(filled.mean()), float(filled.std()) or 1.0)
        return self

    @staticmethod
    def _numeric(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        distance = frame["distance_km"].astype(float).to_numpy()
        return {
            "household_size": frame["household_size"].astype(float).to_numpy(),
            "log_distance_km": np.log1p(np.where(distance < 0, np.nan, distance)),
        }

    @property
    def names(self) -> list[str]:
        return (
            [f"family_{f}" for f in self.families]
            + list(self.stats)
            + [f"{c}_missing" for c in self.stats]
            + ["is_member"]
            + [f"hour_{h}" for h in self.hours]
            + [f"weekday_{d}" for d in self.weekdays]
        )

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        parts = [_multi_hot(frame["anchor_families"], self.families)]
        numeric, missing = [], []
        for column, values in self._numeric(frame).items():
            median, mean, std = self.stats[column]
            missing.append(np.isnan(values).astype(float))
            numeric.append((np.where(np.isnan(values), median, values) - mean) / std)
        parts += [np.column_stack(numeric), np.column_stack(missing)]
        parts.append(frame["is_member"].astype(float).to_numpy()[:, None])
        hour = frame["sold_hour"].astype(float).to_numpy()
        weekday = frame["sold_weekday"].astype(float).to_numpy()
        parts.append((hour[:, None] == np.asarray(self.hours, dtype=float)).astype(float))
        parts.append((weekday[:, None] == np.asarray(self.weekdays, dtype=float)).astype(float))
        return np.hstack(parts)


BASELINE_PRIOR = 10.0


def addon_propensity(
    receipts: pd.DataFrame,
    category_days: pd.DataFrame,
    *,
    params: AddonParams,
    store: ArtifactStore,
    mode: str = "train",
) -> pd.DataFrame:
    """The ml_addon_propensity node: P(add-on category in the attach set) per anchor
    receipt and category, one logistic regression per category, with the family-rate
    baseline; side tables: metrics, per-family promotions, coefficients."""
    mode = model_mode(mode)
    frame = receipts.sort_values(RECEIPT_ORDER, kind="stable").reset_index(drop=True)
    attached = CommaLists(frame["addon_categories"])
    on_campaign = CommaLists(frame["campaign_categories"])
    if mode == "score":
        bundle, meta = store.current(ADDON)
        if bundle.get("models") and "family_keys" not in bundle["baselines"]:
            raise ArtifactError(
                f"the saved {ADDON} artifact (run {meta['run_id']}) holds its baselines in "
                "the layout of an earlier xsell: retrain with ml_mode=train"
            )
        return _addon_scores(frame, attached, on_campaign, bundle, meta["run_id"], "score")
    run_id = compute_run_id(ADDON, asdict(params), receipts, category_days)
    cutoff = temporal_cutoff(frame["sold_date"], params.holdout_days, params.cutoff_date)
    if cutoff is None:
        store.save(ADDON, run_id, {"outputs": {}, "models": {}}, {"status": "no anchor receipts"})
        return empty_frame(ADDON_COLUMNS)
    split = _split_of(frame["sold_date"], cutoff)
    is_train = split == "train"
    train = frame[is_train]
    encoder = BasketEncoder().fit(train)
    # the models (and their F1 thresholds) learn from a fixed sample of the training
    # receipts on a large store; the baselines count every training receipt
    fit_rows = np.flatnonzero(is_train)[
        training_sample(len(train), params.max_train_rows, params.random_state)
    ]
    # sparse: on a large catalogue most columns are anchor-family flags (Ta-Feng: 316 of
    # 319), one or two set per receipt, and the solver's products then cost per entry
    X_fit = sparse.csr_matrix(encoder.transform(frame.iloc[fit_rows]))
    categories = sorted({c for cats in attached.items for c in cats})
    models, thresholds, by_family, overall = {}, {}, {}, {}
    # the baseline's groups: the anchor-family sets of the training receipts
    family_sets = CommaLists(frame["anchor_families"])
    group, family_keys = pd.factorize(family_sets.keys()[is_train], sort=True)
    group_size = np.bincount(group, minlength=len(family_keys))
    for category in categories:
        has_category = attached.contains(category)
        y = has_category[is_train]
        if y.sum() < params.min_positives or (~y).sum() < params.min_positives:
            continue
        y_fit = has_category[fit_rows]
        if y_fit.all() or not y_fit.any():
            continue
        campaign = on_campaign.contains(category)[fit_rows].astype(float)
        X_category = sparse.hstack([X_fit, campaign[:, None]], format="csr")
        model = LogisticRegression(C=params.regularization_c, max_iter=2000)
        with threadpool_limits(1):
            model.fit(X_category, y_fit)
        models[category] = model
        # picked on the probabilities exactly as the receipts are scored (_addon_scores)
        thresholds[category] = best_f1_threshold(
            y_fit, _logistic_probability(model, X_fit, campaign))
        # training rate per anchor-family set, shrunk towards the overall rate by a prior
        # of BASELINE_PRIOR receipts (rare family combinations would otherwise say 0 or 1)
        with_category = np.bincount(group, weights=y, minlength=len(family_keys))
        by_family[category] = (
            (with_category + BASELINE_PRIOR * y.mean()) / (group_size + BASELINE_PRIOR)
        )
        overall[category] = float(y.mean())
    # per category: the rate of each family set of family_keys, and the overall rate
    baselines = {"family_keys": np.asarray(family_keys, dtype=object),
                 "by_family": by_family, "overall": overall}
    bundle = {"encoder": encoder, "models": models, "thresholds": thresholds,
              "baselines": baselines}
    scored = _addon_scores(frame, attached, on_campaign, bundle, run_id, split)
    train_window, test_window = _windows(frame["sold_date"], cutoff)
    metrics = _addon_metrics(scored, thresholds, train_window, test_window).frame(run_id)
    base_rates = _base_rates(category_days, cutoff)
    promotions = _promotions(scored, base_rates, params).assign(run_id=run_id)
    importances = _coefficients(models, encoder).assign(run_id=run_id)
    outputs = {
        "metrics": metrics,
        "by_family": (
            conform(promotions, FAMILY_RECOMMENDATION_COLUMNS) if len(promotions) else None
        ),
        "importances": conform(importances, IMPORTANCE_COLUMNS) if len(importances) else None,
    }
    store.save(
        ADDON, run_id, {**bundle, "outputs": outputs},
        {
            "status": "trained" if models else "no category with enough positives",
            "estimator": "LogisticRegression per add-on category",
            "features": encoder.names + ["on_campaign"],
            "params": asdict(params),
            "train_start": train_window[0], "train_end": train_window[1],
            "test_start": test_window[0], "test_end": test_window[1],
            "train_rows": int(is_train.sum()), "test_rows": int((~is_train).sum()),
            "fit_rows": int(fit_rows.size),
        },
    )
    return scored


def _addon_scores(frame, attached, on_campaign, bundle, run_id, split) -> pd.DataFrame:
    """One row per receipt and modelled category, category by category (receipts in frame
    order within each), built column-wise: the result has tens of millions of rows on a
    large store, so no per-category frame copies."""
    models = bundle.get("models") or {}
    if frame.empty or not models:
        return empty_frame(ADDON_COLUMNS)
    X = sparse.csr_matrix(bundle["encoder"].transform(frame))  # as the models were fit
    families = CommaLists(frame["anchor_families"])
    baselines = bundle["baselines"]
    # each distinct family set of frame among the training ones (-1: not seen in training)
    seen = pd.Index(baselines["family_keys"]).get_indexer(
        [",".join(items) for items in families.items])
    n, categories = len(frame), list(models)
    probability, is_attached, baseline_probability, is_predicted = [], [], [], []
    for category, model in models.items():
        campaign = on_campaign.contains(category).astype(float)
        p = _logistic_probability(model, X, campaign)
        by_set = np.where(seen >= 0, baselines["by_family"][category][seen],
                          baselines["overall"][category])
        probability.append(p)
        is_attached.append(attached.contains(category))
        baseline_probability.append(by_set[families.codes])
        is_predicted.append(p >= bundle["thresholds"][category])
    # text columns as categoricals over the n receipts (or the categories): each value
    # is stored once, not once per category, and sold_date as Arrow dates
    rows = np.tile(np.arange(n), len(categories))
    out = pd.DataFrame(
        {
            name: text_at(frame[name], rows)
            for name in ("receipt_id", "store_id", "anchor_families")
        }
    )
    dates = pd.Series(
        pd.array(to_date(frame["sold_date"]), dtype=DATE_DTYPE).take(rows), dtype=DATE_DTYPE
    )
    out.insert(2, "sold_date", dates)
    out["split"] = text_at(pd.Series(np.broadcast_to(np.asarray(split, dtype=object), n)), rows)
    out["addon_category"] = pd.Categorical.from_codes(
        np.repeat(np.arange(len(categories)), n), categories=pd.Index(categories, dtype=object)
    )
    out["is_attached"] = np.concatenate(is_attached)
    out["probability"] = np.concatenate(probability)
    out["baseline_probability"] = np.concatenate(baseline_probability)
    out["is_predicted"] = np.concatenate(is_predicted)
    out["run_id"] = pd.Categorical.from_codes(
        np.zeros(len(rows), dtype=np.int8), categories=pd.Index([run_id], dtype=object)
    )
    return conform(out, ADDON_COLUMNS)


def _logistic_probability(model, X, last: np.ndarray) -> np.ndarray:
    """``model.predict_proba(hstack([X, last]))[:, 1]`` of a binary logistic regression,
    without copying X (receipts x features, CSR: 1.3M anchor receipts at 10M lines)."""
    coef = model.coef_.ravel()
    with threadpool_limits(1):
        logit = X @ coef[:-1] + last * coef[-1] + model.intercept_[0]
    return special.expit(logit)


def _addon_metrics(scored, thresholds, train_window, test_window) -> MetricRows:
    metrics = MetricRows(ADDON)
    # positions per (split, category) instead of frame copies: scored can hold tens of
    # millions of rows
    codes, categories = pd.factorize(scored["addon_category"], sort=True)
    is_attached = scored["is_attached"].to_numpy(dtype=bool)
    is_predicted = scored["is_predicted"].to_numpy(dtype=bool)
    probability = scored["probability"].to_numpy(dtype=float)
    baseline_probability = scored["baseline_probability"].to_numpy(dtype=float)
    for name, window in (("train", train_window), ("test", test_window)):
        in_split = (scored["split"] == name).to_numpy(dtype=bool)
        for code, category in enumerate(categories):
            rows = np.flatnonzero(in_split & (codes == code))
            if rows.size == 0:
                continue
            y = is_attached[rows]
            model = binary_metrics(y, probability[rows])
            model.update(threshold_metrics(y, is_predicted[rows]))
            model["threshold"] = thresholds[category]
            baseline = binary_metrics(y, baseline_probability[rows])
            for variant, values, is_baseline in (
                ("logistic_regression", model, False),
                ("baseline_family_rate", baseline, True),
            ):
                metrics.add(variant, values, split=name, n=len(rows), window=window,
                            train=train_window, segment=category, is_baseline=is_baseline)
    return metrics


def _base_rates(category_days: pd.DataFrame, cutoff) -> pd.Series:
    """P(add-on category in the attach set) over every purchase receipt before the cutoff."""
    days = category_days[pd.to_datetime(category_days["sold_date"]) < pd.Timestamp(cutoff)]
    receipts = days.drop_duplicates("sold_date")["purchase_receipts"].sum()
    with_category = days.groupby("category")["addon_receipts"].sum()
    return with_category / receipts if receipts else with_category * np.nan


def _rows_per_family(scored: pd.DataFrame) -> pd.DataFrame:
    """The scored rows repeated once per anchor family of their receipt, in the order of
    ``explode`` (a receipt with two families gives two adjacent rows; none, no row), with
    only the columns the promotions need, families and categories as integer codes."""
    families = CommaLists(scored["anchor_families"])
    per_value = np.array([len(items) for items in families.items], dtype=np.int64)
    lengths = per_value[families.codes]
    row = np.repeat(np.arange(len(scored)), lengths)
    position = np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    flat_codes, family_names = pd.factorize(
        np.array([family for items in families.items for family in items], dtype=object)
    )
    starts = np.cumsum(per_value) - per_value
    category_codes, category_names = pd.factorize(scored["addon_category"])
    return pd.DataFrame(
        {
            "family": flat_codes[starts[families.codes[row]] + position],
            "addon_category": category_codes[row],
            "is_train": (scored["split"] == "train").to_numpy(dtype=bool)[row],
            "probability": scored["probability"].to_numpy(dtype=float)[row],
            "is_attached": scored["is_attached"].to_numpy(dtype=bool)[row],
        }
    ), np.asarray(family_names, dtype=object), np.asarray(category_names, dtype=object)


def _promotions(scored: pd.DataFrame, base_rates: pd.Series, params: AddonParams) -> pd.DataFrame:
    """Per anchor family, add-on categories ranked by model lift (mean predicted attach
    probability over the family's receipts / base rate over all purchase receipts)."""
    if scored.empty:
        return pd.DataFrame()
    rows, family_names, category_names = _rows_per_family(scored)
    keys = ["family", "addon_category"]
    # a receipt has one row per category, so it counts once per (family, category)
    table = rows.groupby(keys).agg(
        expected_attach_rate=("probability", "mean"),
        anchor_receipts=("probability", "size"),
    ).reset_index()
    observed = rows[rows["is_train"]].groupby(keys)["is_attached"].mean()
    table = table.join(observed.rename("observed_attach_rate"), on=keys)
    table["family"] = family_names[table["family"].to_numpy()]
    table["addon_category"] = category_names[table["addon_category"].to_numpy()]
    table["base_rate"] = table["addon_category"].map(base_rates).astype(float)
    table["model_lift"] = table["expected_attach_rate"] / table["base_rate"]
    table = table.sort_values(
        ["family", "model_lift", "addon_category"], ascending=[True, False, True], kind="stable"
    )
    table["promote_rank"] = table.groupby("family").cumcount() + 1
    table["is_promoted"] = (table["promote_rank"] <= params.promote_top_k) & (
        table["model_lift"] > 1
    )
    return table.rename(columns={"family": "anchor_family"})


def _coefficients(models: dict, encoder: BasketEncoder) -> pd.DataFrame:
    names = encoder.names + ["on_campaign"]
    frames = [
        pd.DataFrame(
            {
                "model": ADDON,
                "variant": "logistic_regression",
                "segment": category,
                "feature": names,
                "importance": np.abs(model.coef_.ravel()),
                "importance_std": np.nan,
                "signed_value": model.coef_.ravel(),
                "method": "abs_logistic_coefficient",
            }
        )
        for category, model in sorted(models.items())
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
