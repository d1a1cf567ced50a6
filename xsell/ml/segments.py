"""Behavioural customer segments: KMeans on scaled RFM and basket features.

k is chosen from a range by the silhouette (Davies-Bouldin and inertia are kept for
the record); clusters are numbered by value and named from their centroid profiles by
the rules in `name_segments`, never per cluster id. Everything is deterministic: input
sorted by customer_id, fixed random_state, one OpenMP thread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from xsell.ml.evaluation import training_sample

__all__ = [
    "SEGMENT_FEATURES",
    "customer_segments",
    "name_segments",
    "scaled_features",
    "segment_selection",
]

# Feature -> transform before standardising. Counts and money are right-skewed, so they
# enter as log1p; days and shares are on bounded linear scales.
SEGMENT_FEATURES = {
    "recency_days": "linear",
    "tenure_days": "linear",
    "purchase_receipts": "log",
    "revenue": "log",
    "avg_order_value": "log",
    "items_per_receipt": "log",
    "anchor_receipt_share": "linear",
}

# KMeans (and the PCA) fit on at most this many customers by default (dbt var
# segment_fit_sample): 6 values of k x 10 initialisations over the 720k customers of a
# 10M-line store cost a minute; the centroids of a 50k sample are the same to ~1 %.
FIT_SAMPLE = 50_000

# A centroid coordinate (in standard deviations) beyond this is "high" / "low".
LEVEL = 0.5

SELECTION_COLUMNS = {
    "k": "int64",
    "silhouette": "float64",
    "davies_bouldin": "float64",
    "inertia": "float64",
    "is_chosen": "bool",
    "customers": "int64",
    "silhouette_sample_size": "int64",
    "fit_sample_size": "int64",
}

SEGMENT_COLUMNS = {
    "customer_id": "object",
    "segment_id": "int64",
    "segment_name": "object",
    "pca_1": "float64",
    "pca_2": "float64",
    "distance_to_centroid": "float64",
    **{f"z_{name}": "float64" for name in SEGMENT_FEATURES},
}


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def absent_features(summary: pd.DataFrame) -> list[str]:
    """SEGMENT_FEATURES no customer has a value for: the money features of a store without
    prices. They enter as 0 (a constant, so they move no centroid) and are published as
    null, never as a made-up score."""
    return [name for name in SEGMENT_FEATURES if summary[name].isna().all()]


def scaled_features(summary: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
    """Customer ids (sorted) and their standardised, transformed SEGMENT_FEATURES."""
    frame = summary.sort_values("customer_id", kind="stable")
    absent = set(absent_features(frame))
    columns = []
    for name, transform in SEGMENT_FEATURES.items():
        values = frame[name].to_numpy(dtype=float)
        if name in absent:
            values = np.zeros(len(values))
        columns.append(np.log1p(np.clip(values, 0.0, None)) if transform == "log" else values)
    matrix = np.column_stack(columns)
    mean = matrix.mean(axis=0)
    std = matrix.std(axis=0)
    scaled = (matrix - mean) / np.where(std > 0, std, 1.0)
    return pd.Index(frame["customer_id"].astype(str), name="customer_id"), scaled


def _kmeans(k: int, random_state: int):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=random_state)


def _fit_labels(model, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Fit ``model`` on the customers at ``rows`` (all of them, or a fixed sample from
    :func:`training_sample`) and label every customer by its nearest centroid."""
    if rows.size == len(x):
        return model.fit_predict(x)
    model.fit(x[rows])
    return model.predict(x)


def segment_selection(
    summary: pd.DataFrame,
    *,
    k_min: int,
    k_max: int,
    random_state: int,
    silhouette_sample: int,
    fit_sample: int = FIT_SAMPLE,
) -> pd.DataFrame:
    """One row per k in [k_min, k_max]: silhouette (on a fixed random sample of at most
    ``silhouette_sample`` customers; it is quadratic in their number), Davies-Bouldin,
    inertia, and is_chosen for the k with the highest silhouette (smallest k on a tie).
    KMeans is fitted on at most ``fit_sample`` customers (a fixed random sample), and
    every customer is labelled by its nearest centroid: Davies-Bouldin and inertia are
    over all customers. Values of k that would leave a cluster per customer are skipped."""
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    k_min, k_max = int(k_min), int(k_max)
    if k_min < 2 or k_max < k_min:
        raise ValueError("need 2 <= k_min <= k_max")
    if len(summary) <= k_min:
        return _empty(SELECTION_COLUMNS)
    _, x = scaled_features(summary)
    n = len(x)
    rows = []
    sample = min(int(silhouette_sample), n)
    kmeans = {k: _kmeans(k, random_state) for k in range(k_min, min(k_max, n - 1) + 1)}
    fitted = training_sample(n, int(fit_sample), random_state)
    with threadpool_limits(limits=1):
        for k, model in kmeans.items():
            labels = _fit_labels(model, x, fitted)
            if len(np.unique(labels)) < 2:
                continue
            rows.append(
                {
                    "k": k,
                    "silhouette": float(
                        silhouette_score(x, labels, sample_size=sample, random_state=random_state)
                    ),
                    "davies_bouldin": float(davies_bouldin_score(x, labels)),
                    # over every customer: the fit's own inertia covers only its sample
                    "inertia": float(-model.score(x)) if fitted.size < n
                    else float(model.inertia_),
                    "customers": n,
                    "silhouette_sample_size": sample,
                    "fit_sample_size": int(fitted.size),
                }
            )
    if not rows:
        return _empty(SELECTION_COLUMNS)
    frame = pd.DataFrame(rows)
    best = frame.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]["k"]
    frame["is_chosen"] = frame["k"] == best
    return frame.reindex(columns=list(SELECTION_COLUMNS))


# --------------------------------------------------------------------------- naming

_QUALIFIERS = [
    # (feature, sign, words): the extra word for a duplicate name, first strong one wins.
    ("anchor_receipt_share", 1, "furniture buyers"),
    ("items_per_receipt", 1, "big baskets"),
    ("items_per_receipt", -1, "small baskets"),
    ("tenure_days", 1, "long-standing"),
    ("tenure_days", -1, "newer"),
    ("avg_order_value", 1, "high spend per visit"),
    ("avg_order_value", -1, "low spend per visit"),
]


def _base_name(z: dict[str, float]) -> str:
    """The name of a centroid from its standardised profile (first rule that holds)."""
    recent = z["recency_days"] < -LEVEL
    lapsed = z["recency_days"] > LEVEL
    frequent = z["purchase_receipts"] > LEVEL
    valuable = z["revenue"] > LEVEL
    low_value = z["revenue"] < -LEVEL
    new = z["tenure_days"] < -LEVEL
    if frequent and valuable and not lapsed:
        return "High-value loyal"
    if lapsed and valuable:
        return "Lapsed big spenders"
    if lapsed and low_value:
        return "Lapsed low spenders"
    if lapsed:
        return "Lapsing occasional"
    if new and recent:
        return "New big-ticket buyers" if valuable else "New customers"
    if valuable:
        return "Big-ticket occasional"
    if frequent:
        return "Frequent small spenders"
    if low_value:
        return "Low-value occasional"
    return "Everyday customers"


def name_segments(centroids: pd.DataFrame) -> pd.Series:
    """Names for centroid profiles (rows: segments; columns: SEGMENT_FEATURES in
    standard deviations from the customer mean).

    Each centroid gets the first rule of `_base_name` it satisfies. Segments that share
    a name get the qualifier of their most distinctive feature among `_QUALIFIERS`
    (e.g. "High-value loyal, furniture buyers"), and if that still collides, a number
    in value order ("... 2"). Names therefore follow from the profiles alone.
    """
    base = pd.Series({idx: _base_name(row.to_dict()) for idx, row in centroids.iterrows()})
    names = base.copy()
    for name, members in base.groupby(base):
        if len(members) < 2:
            continue
        for idx in members.index:
            z = centroids.loc[idx]
            scored = [
                (sign * z[feature], words)
                for feature, sign, words in _QUALIFIERS
                if sign * z[feature] > LEVEL
            ]
            if scored:
                names[idx] = f"{name}, {max(scored)[1]}"
    for _, members in names.groupby(names):
        if len(members) > 1:
            order = centroids.loc[members.index, "revenue"].sort_values(ascending=False).index
            for rank, idx in enumerate(order, start=1):
                names[idx] = f"{names[idx]} {rank}"
    return names


def customer_segments(
    summary: pd.DataFrame, selection: pd.DataFrame, *, random_state: int,
    fit_sample: int = FIT_SAMPLE,
) -> pd.DataFrame:
    """Per customer: segment at the chosen k of ``selection``, its name, the distance to
    the centroid, 2-D PCA coordinates of the scaled features, and the scaled features.
    KMeans and the PCA are fitted on the customers ``segment_selection`` fitted on (at
    most ``fit_sample``), then applied to every customer.

    Segment ids run 1..k by centroid revenue, highest first.
    """
    from sklearn.decomposition import PCA

    chosen = selection[selection["is_chosen"]]
    if chosen.empty or len(summary) == 0:
        return _empty(SEGMENT_COLUMNS)
    k = int(chosen["k"].iloc[0])
    ids, x = scaled_features(summary)
    model = _kmeans(k, random_state)
    with threadpool_limits(limits=1):
        fitted = training_sample(len(x), int(fit_sample), random_state)
        labels = _fit_labels(model, x, fitted)
        pca = PCA(n_components=2, svd_solver="full")
        coordinates = (
            pca.fit_transform(x) if fitted.size == len(x) else pca.fit(x[fitted]).transform(x)
        )
    centroids = pd.DataFrame(model.cluster_centers_, columns=list(SEGMENT_FEATURES))
    # Number segments by value so ids mean something and do not depend on KMeans' order.
    order = centroids.sort_values(["revenue", "purchase_receipts"], ascending=False).index
    segment_id = pd.Series(np.arange(1, k + 1), index=order)
    centroids.index = segment_id.reindex(centroids.index).to_numpy()
    names = name_segments(centroids.sort_index())
    ids_of = segment_id.reindex(labels).to_numpy()
    distance = np.linalg.norm(x - model.cluster_centers_[labels], axis=1)
    frame = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "segment_id": ids_of.astype(np.int64),
            "segment_name": names.reindex(ids_of).to_numpy(),
            "pca_1": coordinates[:, 0],
            "pca_2": coordinates[:, 1],
            "distance_to_centroid": distance,
        }
    )
    absent = set(absent_features(summary))
    for j, name in enumerate(SEGMENT_FEATURES):
        frame[f"z_{name}"] = np.nan if name in absent else x[:, j]
    return frame
