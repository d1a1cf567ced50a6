"""Top-N products per loyalty member: popularity, item-item similarity, association rules,
complete-the-room and repeat signals weighed by a ranker learnt before the holdout
(xsell.ml.recommend.recommendations)."""

from xsell.frames import frame_of, to_arrow
from xsell.ml.recommend import RecommenderParams, recommendations
from xsell.ml.registry import artifact_store, params_from_config
from xsell.ml.resources import one_large_model_at_a_time, row_count


def model(dbt, session):
    dbt.config(materialized="table")
    mode = dbt.config.get("ml_mode")
    artifact_dir = dbt.config.get("ml_artifact_dir")
    holdout_days = dbt.config.get("ml_holdout_days")
    cutoff_date = dbt.config.get("ml_cutoff_date")
    random_state = dbt.config.get("ml_random_state")
    top_n = dbt.config.get("rec_top_n")
    validation_days = dbt.config.get("rec_validation_days")
    half_life_days = dbt.config.get("rec_half_life_days")
    repeat_min_lift = dbt.config.get("rec_repeat_min_lift")
    repeat_min_expected = dbt.config.get("rec_repeat_min_expected")
    hyperparameters = dbt.config.get("recommender_hyperparameters")
    params = params_from_config(
        RecommenderParams, hyperparameters,
        holdout_days=holdout_days, cutoff_date=cutoff_date, random_state=random_state,
        top_n=top_n, validation_days=validation_days, half_life_days=half_life_days,
        repeat_min_lift=repeat_min_lift, repeat_min_expected=repeat_min_expected,
    )
    source = dbt.ref("int_receipt_products_listed")
    with one_large_model_at_a_time(row_count(source), dbt.config.get("ml_exclusive_rows")):
        # Arrow: repeated text stays dictionary-encoded on its way into DuckDB
        result = to_arrow(recommendations(
            frame_of(source,
                     categorical=["receipt_id", "customer_id", "store_id", "product_id"]),
            frame_of(dbt.ref("int_products_classified")),
            frame_of(dbt.ref("int_customers_profiled").project("customer_id")),
            params=params, store=artifact_store(session, artifact_dir), mode=mode,
        ))
    return result
