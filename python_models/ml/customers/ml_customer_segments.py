"""KMeans segment, derived name and 2-D PCA coordinates of every customer at the chosen k
(xsell.ml.segments.customer_segments)."""

from xsell.ml.segments import customer_segments


def model(dbt, session):
    dbt.config(materialized="table")
    random_state = dbt.config.get("segment_random_state")
    return customer_segments(
        dbt.ref("int_customers_summarised").df(),
        dbt.ref("ml_segment_selection").df(),
        random_state=int(random_state),
    )
