"""Silhouette, Davies-Bouldin and inertia of KMeans for each k in the configured range,
and the chosen k (xsell.ml.segments.segment_selection)."""

from xsell.coverage import applicable
from xsell.frames import frame_of
from xsell.ml.segments import segment_selection


def model(dbt, session):
    dbt.config(materialized="table")
    k_min = dbt.config.get("segment_k_min")
    k_max = dbt.config.get("segment_k_max")
    random_state = dbt.config.get("segment_random_state")
    sample = dbt.config.get("segment_silhouette_sample")
    summary = dbt.ref("int_customers_summarised")
    if not applicable(dbt.ref("int_analyses_assessed"), "customer_segments"):
        summary = summary.limit(0)  # no rows: empty, typed outputs
    return segment_selection(
        frame_of(summary),
        k_min=int(k_min),
        k_max=int(k_max),
        random_state=int(random_state),
        silhouette_sample=int(sample),
        fit_sample=int(dbt.config.get("segment_fit_sample")),
    )
