"""Complete the room: the add-on products each anchor family's buyers take along most
(from the saved bundle of ml_recommendations)."""

from xsell.ml.recommend import ANCHOR_COLUMNS
from xsell.ml.registry import side_table


def model(dbt, session):
    dbt.config(materialized="table")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    dbt.ref("ml_recommendations")
    return side_table(session, artifact_dir, "ml_recommendations", "by_anchor", ANCHOR_COLUMNS)
