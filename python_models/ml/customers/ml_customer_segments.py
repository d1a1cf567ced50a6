"""KMeans segment, derived name and 2-D PCA coordinates of every customer at the chosen k
(xsell.ml.segments.customer_segments)."""

from xsell.coverage import applicable
from xsell.frames import frame_of
from xsell.ml.segments import customer_segments


def model(dbt, session):
    dbt.config(materialized="table")
    random_state = dbt.config.get("segment_random_state")
    summary = dbt.ref("int_customers_summarised")
    if not applicable(dbt.ref("int_analyses_assessed"), "customer_segments"):
        summary = summary.limit(0)  # no rows: empty, typed outputs
    return customer_segments(
        frame_of(summary),
        frame_of(dbt.ref("ml_segment_selection")),
        random_state=int(random_state),
        fit_sample=int(dbt.config.get("segment_fit_sample")),
    )
