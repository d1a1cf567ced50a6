"""P(add-on category in the attach set) per anchor receipt and category, one logistic
regression per category, against the family-rate baseline
(xsell.ml.propensity.addon_propensity)."""

from xsell.coverage import applicable
from xsell.frames import frame_of, to_arrow
from xsell.ml.propensity import AddonParams, addon_propensity
from xsell.ml.registry import artifact_store, params_from_config
from xsell.ml.resources import one_large_model_at_a_time, row_count


def model(dbt, session):
    dbt.config(materialized="table")
    mode = dbt.config.get("ml_mode")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    holdout_days = dbt.config.get("ml_holdout_days")
    cutoff_date = dbt.config.get("ml_cutoff_date")
    random_state = dbt.config.get("ml_random_state")
    max_train_rows = dbt.config.get("ml_max_train_rows")
    regularization_c = dbt.config.get("addon_regularization_c")
    min_positives = dbt.config.get("addon_min_positives")
    promote_top_k = dbt.config.get("addon_promote_top_k")
    params = params_from_config(
        AddonParams,
        holdout_days=holdout_days, cutoff_date=cutoff_date, random_state=random_state,
        regularization_c=regularization_c, min_positives=min_positives,
        promote_top_k=promote_top_k,
        max_train_rows=max_train_rows,
    )
    source = dbt.ref("int_anchor_receipts_profiled")
    if not applicable(dbt.ref("int_analyses_assessed"), "addon_propensity"):
        source = source.limit(0)  # no rows: empty, typed outputs
    with one_large_model_at_a_time(row_count(source), dbt.config.get("ml_exclusive_rows")):
        # Arrow: repeated text stays dictionary-encoded on its way into DuckDB
        result = to_arrow(addon_propensity(
            frame_of(source),
            frame_of(dbt.ref("int_addon_category_days_aggregated")),
            params=params, store=artifact_store(session, artifact_dir), mode=mode,
        ))
    return result
