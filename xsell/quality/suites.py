"""The Great Expectations suites, declared once here and written to gx/ by `write_gx`.

gx/ (a GE file context) is what `validate` runs: one suite, data asset and validation
definition per table, named `<schema>.<table>`, plus `checks.reconciliation` over the
cross-table figures of `xsell.quality.reconcile`. This module is their source: edit it,
then run `python -m xsell.quality write-gx` and commit gx/. A test keeps gx/ and this
module in step.

Tunable numbers are `$PARAMETER`s whose values live in gx/xsell_thresholds.yml (bands)
or are computed from the build when it is validated (row counts relative to the input):
see `xsell.quality.gate.parameters`.

dbt's tests check the same keys and ranges inside the build; these suites check the
finished file again from outside, add distribution bands and relations between columns
and tables, and fail the gate before anything is published.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

RAW_TABLES_STAGED = ("transactions", "products", "customers", "restaurant_orders", "campaigns")


@dataclass(frozen=True)
class SuiteSpec:
    """One suite: its name is also its data asset's and validation definition's name."""

    name: str
    family: str
    key: tuple[str, ...]  # columns that identify a row in failure examples
    expectations: list = field(default_factory=list)
    table: str | None = None  # schema.table; None for a frame computed in pandas

    def __post_init__(self):
        if self.table is None and self.family != "checks":
            object.__setattr__(self, "table", self.name)

    @property
    def meta(self) -> dict:
        return {"xsell": {"family": self.family, "table": self.table, "key": list(self.key)}}


# --- helpers: one line per rule in the declarations below ---------------------------------


def param(name: str) -> dict:
    return {"$PARAMETER": name}


def not_null(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def unique(*columns: str):
    if len(columns) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=columns[0])
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns))


def between(column: str, low=None, high=None, *, where=None, strict_min=False):
    kwargs = {"column": column, "min_value": low, "max_value": high}
    if strict_min:
        kwargs["strict_min"] = True
    if where is not None:
        kwargs["row_condition"] = where
    return gxe.ExpectColumnValuesToBeBetween(**kwargs)


def shares(*columns: str) -> list:
    """Rates, shares, probabilities and supports: in [0, 1]."""
    return [between(c, 0, 1) for c in columns]


def non_negative(*columns: str) -> list:
    return [between(c, 0) for c in columns]


def positive(*columns: str) -> list:
    return [between(c, 0, strict_min=True) for c in columns]


def in_set(column: str, values: Iterable, *, where=None):
    kwargs = {"column": column, "value_set": list(values)}
    if where is not None:
        kwargs["row_condition"] = where
    return gxe.ExpectColumnValuesToBeInSet(**kwargs)


def at_least(column_a: str, column_b: str, *, where=None, strictly=False):
    """column_a >= column_b (> when ``strictly``) on every row where both are present."""
    kwargs = {"column_A": column_a, "column_B": column_b, "or_equal": not strictly,
              "ignore_row_if": "either_value_is_missing"}
    if where is not None:
        kwargs["row_condition"] = where
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(**kwargs)


def rows_at_least(parameter: str):
    return gxe.ExpectTableRowCountToBeBetween(min_value=param(parameter))


def mean_in_band(column: str, band: str, *, where=None):
    """The column's mean inside [<band>_min, <band>_max] of gx/xsell_thresholds.yml."""
    kwargs = {"column": column, "min_value": param(f"{band}_min"),
              "max_value": param(f"{band}_max")}
    if where is not None:
        kwargs["row_condition"] = where
    return gxe.ExpectColumnMeanToBeBetween(**kwargs)


def _flat(*items) -> list:
    out = []
    for item in items:
        out.extend(item if isinstance(item, list) else [item])
    return out


# --- staging: the clean rows of each raw table ---------------------------------------------

STAGING = [
    SuiteSpec(
        "staging.stg_pos__transactions", "staging", ("store_id", "receipt_id", "line_number"),
        _flat(
            # staged lines >= staged_share_min x raw lines: the rest went to quarantine
            rows_at_least("staged_rows_min_transactions"),
            not_null("receipt_id", "line_number", "store_id", "product_id", "quantity",
                     "unit_price", "sold_at", "sold_date"),
            unique("store_id", "receipt_id", "line_number"),
            positive("unit_price"),
            gxe.ExpectColumnValuesToNotBeInSet(column="quantity", value_set=[0]),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__products", "staging", ("product_id",),
        _flat(
            rows_at_least("staged_rows_min_products"),
            not_null("product_id", "category", "is_merchandise"),
            unique("product_id"),
            in_set("size_class", ["LARGE", "SMALL"]),
            non_negative("unit_cost"),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__customers", "staging", ("customer_id",),
        _flat(
            rows_at_least("staged_rows_min_customers"),
            not_null("customer_id"),
            unique("customer_id"),
            between("household_size", 1),
            non_negative("distance_km"),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__restaurant_orders", "staging", ("restaurant_order_id",),
        _flat(
            rows_at_least("staged_rows_min_restaurant_orders"),
            not_null("restaurant_order_id", "store_id", "ordered_at"),
            unique("restaurant_order_id"),
            positive("amount"),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__campaigns", "staging", ("campaign_target_id",),
        _flat(
            rows_at_least("staged_rows_min_campaigns"),
            not_null("campaign_target_id", "campaign_id", "starts_at", "ends_at"),
            unique("campaign_target_id"),
            between("discount_pct", 0, 100),
            at_least("ends_at", "starts_at"),
        ),
    ),
]

# --- cross-sell marts ----------------------------------------------------------------------

OVERALL = Column("grain") == "all"

CROSS_SELL = [
    SuiteSpec(
        "marts.fct_attach_rates", "cross_sell", ("grain", "anchor_family", "sold_date"),
        _flat(
            not_null("grain", "anchor_family", "anchor_receipts", "attached_receipts",
                     "attach_rate"),
            in_set("grain", ["family_day", "family", "all"]),
            unique("grain", "anchor_family", "sold_date"),
            shares("attach_rate", "two_plus_addon_rate"),
            non_negative("anchor_receipts", "addon_lines", "addon_revenue"),
            at_least("anchor_receipts", "attached_receipts"),
            at_least("attached_receipts", "two_plus_addon_receipts"),
            in_set("anchor_family", ["ALL"], where=OVERALL),
            # the share of anchor receipts that pull an add-on along, over all days
            between("attach_rate", param("attach_rate_all_min"), param("attach_rate_all_max"),
                    where=OVERALL),
        ),
    ),
    SuiteSpec(
        "marts.fct_addon_lift", "cross_sell", ("anchor_family", "addon_category"),
        _flat(
            not_null("anchor_family", "addon_category", "all_receipts", "anchor_receipts",
                     "addon_receipts", "joint_receipts", "lift"),
            unique("anchor_family", "addon_category"),
            shares("p_addon_given_anchor", "p_addon"),
            non_negative("lift", "lift_ci_low", "lift_ci_high", "joint_receipts"),
            at_least("anchor_receipts", "joint_receipts"),
            at_least("addon_receipts", "joint_receipts"),
            at_least("all_receipts", "anchor_receipts"),
            at_least("lift", "lift_ci_low"),
            at_least("lift_ci_high", "lift"),
        ),
    ),
    SuiteSpec(
        "marts.fct_association_rules", "cross_sell", ("item_level", "antecedent", "consequent"),
        _flat(
            not_null("item_level", "antecedent", "consequent", "support", "confidence",
                     "lift"),
            in_set("item_level", ["product", "category"]),
            unique("item_level", "antecedent", "consequent"),
            shares("support", "confidence", "antecedent_support", "consequent_support"),
            non_negative("lift", "conviction"),
            # |leverage| <= 1/4 for any two events
            between("leverage", -0.25, 0.25),
            at_least("confidence", "support"),
            at_least("antecedent_basket_count", "rule_basket_count"),
            at_least("n_baskets", "antecedent_basket_count"),
        ),
    ),
    SuiteSpec(
        "marts.fct_frequent_itemsets", "cross_sell", ("item_level", "itemset"),
        _flat(
            not_null("item_level", "itemset", "itemset_length", "basket_count", "support"),
            in_set("item_level", ["product", "category"]),
            unique("item_level", "itemset"),
            shares("support"),
            between("itemset_length", 1),
            at_least("n_baskets", "basket_count"),
        ),
    ),
    SuiteSpec(
        "marts.fct_product_affinity", "cross_sell", ("relation", "product_id", "affinity_rank"),
        _flat(
            not_null("relation", "product_id", "affinity_rank", "related_product_id"),
            in_set("relation", ["co_purchase", "upsell"]),
            unique("relation", "product_id", "affinity_rank"),
            shares("cosine_similarity"),
            between("affinity_rank", 1),
            at_least("basket_count", "together_count"),
            at_least("related_basket_count", "together_count"),
        ),
    ),
    SuiteSpec(
        "marts.fct_restaurant_conversion", "cross_sell", ("grain", "anchor_family", "sold_date"),
        _flat(
            not_null("grain", "anchor_family", "receipts", "conversion_rate"),
            unique("grain", "anchor_family", "sold_date"),
            shares("conversion_rate"),
            non_negative("receipts", "restaurant_revenue"),
            at_least("receipts", "converted_receipts"),
        ),
    ),
    SuiteSpec(
        "marts.fct_restaurant_timing", "cross_sell", ("shopper_group", "bucket_order"),
        _flat(
            not_null("shopper_group", "bucket_order", "timing_bucket", "visits"),
            in_set("shopper_group", ["ANY_ANCHOR", "NO_ANCHOR"]),
            unique("shopper_group", "bucket_order"),
            shares("visit_share"),
            non_negative("visits"),
        ),
    ),
    SuiteSpec(
        "marts.fct_revenue_mix", "cross_sell", ("store_id", "sold_date", "revenue_stream"),
        _flat(
            not_null("store_id", "sold_date", "revenue_stream", "revenue"),
            in_set("revenue_stream", ["ANCHOR", "ADDON", "OTHER", "RESTAURANT", "RETURNS"]),
            unique("store_id", "sold_date", "revenue_stream"),
            shares("cost_coverage"),
            non_negative("receipts"),
            at_least("lines", "receipts"),
            between("revenue", None, 0, where=Column("revenue_stream") == "RETURNS"),
            between("revenue", 0, where=Column("revenue_stream") != "RETURNS"),
        ),
    ),
    SuiteSpec(
        "marts.fct_impulse_by_hour", "cross_sell", ("sold_weekday", "sold_hour"),
        _flat(
            not_null("sold_weekday", "sold_hour", "receipts", "impulse_rate"),
            unique("sold_weekday", "sold_hour"),
            between("sold_weekday", 1, 7),
            between("sold_hour", 0, 23),
            shares("impulse_rate", "impulse_rate_with_anchor", "impulse_rate_without_anchor"),
            at_least("receipts", "impulse_receipts"),
        ),
    ),
    SuiteSpec(
        "marts.fct_promotion_uplift", "cross_sell", ("campaign_target_id",),
        _flat(
            not_null("campaign_target_id", "campaign_id"),
            unique("campaign_target_id"),
            shares("campaign_target_share", "baseline_target_share"),
            # a share can at most drop to zero
            between("uplift", -1),
            at_least("uplift", "uplift_ci_low"),
            at_least("uplift_ci_high", "uplift"),
            at_least("campaign_last_day", "campaign_first_day"),
            at_least("campaign_receipts", "campaign_target_receipts"),
            at_least("baseline_receipts", "baseline_target_receipts"),
        ),
    ),
]

# --- customer marts ------------------------------------------------------------------------

SCORES = ("recency_score", "frequency_score", "monetary_score")

CUSTOMERS = [
    SuiteSpec(
        "marts.fct_customer_rfm", "customers", ("customer_id",),
        _flat(
            not_null("customer_id", "recency_days", "frequency", "monetary", *SCORES,
                     "rfm_cell", "rfm_segment"),
            unique("customer_id"),
            [between(score, 1, 5) for score in SCORES],
            non_negative("recency_days"),
            between("frequency", 1),
            # mid-rank quintile scores average about 3; far off means the scoring broke
            [mean_in_band(score, "rfm_score_mean") for score in SCORES],
        ),
    ),
    SuiteSpec(
        "marts.dim_customers", "customers", ("customer_id",),
        _flat(
            # every loyalty profile is a row (plus anonymous-profile buyers)
            rows_at_least("profile_rows"),
            not_null("customer_id", "has_profile", "has_purchase"),
            unique("customer_id"),
            shares("probability_alive", "anchor_receipt_share"),
            non_negative("lifetime_value", "expected_purchases", "expected_spend",
                         "distance_km"),
            between("purchase_receipts", 1),
            between("household_size", 1),
            [between(score, 1, 5) for score in SCORES],
        ),
    ),
    SuiteSpec(
        "marts.fct_cohort_retention", "customers", ("cohort_month", "months_since_first_purchase"),
        _flat(
            not_null("cohort_month", "months_since_first_purchase", "cohort_customers",
                     "retention_rate"),
            unique("cohort_month", "months_since_first_purchase"),
            shares("retention_rate"),
            non_negative("months_since_first_purchase"),
            at_least("cohort_customers", "active_customers"),
            at_least("activity_month", "cohort_month"),
            # a cohort is defined by its first purchase month: all of it is active then
            between("retention_rate", 1, 1, where=Column("months_since_first_purchase") == 0),
        ),
    ),
    SuiteSpec(
        "marts.fct_revenue_at_risk", "customers", ("rfm_segment",),
        _flat(
            not_null("rfm_segment", "customers", "revenue_at_risk", "opportunity_gap"),
            unique("rfm_segment"),
            shares("customer_share", "revenue_share"),
            non_negative("customers", "revenue_at_risk", "opportunity_gap", "expected_spend"),
        ),
    ),
    SuiteSpec(
        "marts.fct_customer_coverage", "customers", ("store_id",),
        _flat(
            not_null("store_id", "purchase_receipts"),
            unique("store_id"),
            shares("anonymous_receipt_share"),
            non_negative("purchase_receipts", "member_purchase_receipts",
                         "anonymous_purchase_receipts", "members"),
            at_least("purchase_receipts", "member_purchase_receipts"),
        ),
    ),
]

# --- ML outputs (schema ml) ----------------------------------------------------------------

BGNBD = Column("model") == "bgnbd_gamma_gamma"

ML = [
    SuiteSpec(
        "ml.ml_customer_lifetime_value", "ml", ("customer_id",),
        _flat(
            not_null("customer_id", "probability_alive", "expected_purchases",
                     "expected_discounted_value"),
            unique("customer_id"),
            shares("probability_alive"),
            non_negative("repeat_purchase_days", "expected_purchases", "expected_spend",
                         "expected_discounted_value"),
            at_least("tenure_days", "purchase_span_days"),
        ),
    ),
    SuiteSpec(
        "ml.ml_customer_segments", "ml", ("customer_id",),
        _flat(
            not_null("customer_id", "segment_id", "segment_name"),
            unique("customer_id"),
            between("segment_id", 1),
            non_negative("distance_to_centroid"),
        ),
    ),
    SuiteSpec(
        "ml.ml_segment_selection", "ml", ("k",),
        _flat(
            not_null("k", "silhouette", "is_chosen"),
            unique("k"),
            between("k", 2),
            between("silhouette", -1, 1),
            non_negative("davies_bouldin", "inertia"),
        ),
    ),
    SuiteSpec(
        "ml.ml_clv_metrics", "ml", ("model", "target"),
        _flat(
            not_null("model", "target", "customers", "total_ratio"),
            unique("model", "target"),
            in_set("target", ["purchases", "spend"]),
            non_negative("mae", "rmse", "actual_total", "predicted_total"),
            at_least("rmse", "mae"),
            between("correlation", -1, 1),
            # the BG/NBD + Gamma-Gamma totals on the holdout, predicted / actual
            between("total_ratio", param("clv_total_ratio_min"), param("clv_total_ratio_max"),
                    where=BGNBD),
        ),
    ),
    SuiteSpec(
        "ml.ml_clv_parameters", "ml", ("fit_name",),
        _flat(
            not_null("fit_name", "r", "alpha", "a", "b"),
            unique("fit_name"),
            in_set("fit_name", ["as_of", "calibration"]),
            positive("r", "alpha", "a", "b"),
        ),
    ),
]


# Model metrics (ml_model_metrics and each model's own table): every metric's range.
UNIT_METRICS = (
    "base_rate", "brier", "catalogue_coverage", "ece", "f1", "hit_rate_at_10",
    "mean_predicted", "ndcg_at_10", "pr_auc", "precision", "recall", "recall_at_10",
    "roc_auc", "threshold",
)
NON_NEGATIVE_METRICS = ("log_loss", "mae", "mape", "rmse", "smape", "actual_mean")
METRIC_KEY = ("model", "variant", "segment", "split", "metric")


def metrics_suite(table: str) -> SuiteSpec:
    """AUCs, rates, recalls in [0, 1]; errors >= 0; SMAPE <= 2; correlation in [-1, 1];
    evaluation windows after the training data on the test split."""
    metric = Column("metric")
    return SuiteSpec(
        table, "ml", METRIC_KEY,
        _flat(
            not_null(*METRIC_KEY, "run_id", "is_baseline"),
            unique(*METRIC_KEY),
            in_set("split", ["train", "validation", "test", "backtest"]),
            between("value", 0, 1, where=metric.is_in(list(UNIT_METRICS))),
            between("value", 0, where=metric.is_in(list(NON_NEGATIVE_METRICS))),
            between("value", 0, 2, where=metric == "smape"),
            between("value", -1, 1, where=metric == "correlation"),
            between("n", 0),
            at_least("window_end", "window_start"),
            at_least("train_end", "train_start"),
            # a test split is evaluated on days after every training day
            at_least("window_start", "train_end", where=Column("split") == "test",
                     strictly=True),
        ),
    )


RANK_REASONS = ("popular_in_store", "popular_now", "popular", "similar_to_past_purchases",
                "bought_together", "complete_the_room", "buy_again")

ML_MODELS = [
    SuiteSpec(
        "ml.ml_restaurant_propensity", "ml", ("store_id", "receipt_id"),
        _flat(
            not_null("receipt_id", "split", "restaurant_probability", "baseline_probability"),
            unique("store_id", "receipt_id"),
            in_set("split", ["train", "test"]),
            shares("restaurant_probability", "baseline_probability"),
            between("probability_decile", 1, 10),
        ),
    ),
    SuiteSpec(
        "ml.ml_restaurant_calibration", "ml", ("split", "variant", "decile"),
        _flat(
            not_null("split", "variant", "decile", "receipts"),
            unique("split", "variant", "decile"),
            between("decile", 1, 10),
            between("receipts", 1),
            shares("mean_predicted", "observed_rate", "min_predicted", "max_predicted"),
            at_least("mean_predicted", "min_predicted"),
            at_least("max_predicted", "mean_predicted"),
        ),
    ),
    SuiteSpec(
        "ml.ml_addon_propensity", "ml", ("store_id", "receipt_id", "addon_category"),
        _flat(
            not_null("receipt_id", "addon_category", "split", "probability", "is_attached"),
            unique("store_id", "receipt_id", "addon_category"),
            in_set("split", ["train", "test"]),
            shares("probability", "baseline_probability"),
        ),
    ),
    SuiteSpec(
        "ml.ml_addon_recommendations_by_family", "ml", ("anchor_family", "addon_category"),
        _flat(
            not_null("anchor_family", "addon_category", "promote_rank", "expected_attach_rate"),
            unique("anchor_family", "addon_category"),
            unique("anchor_family", "promote_rank"),
            between("promote_rank", 1),
            shares("expected_attach_rate", "base_rate", "observed_attach_rate"),
            non_negative("model_lift", "anchor_receipts"),
        ),
    ),
    SuiteSpec(
        "ml.ml_recommendations", "ml", ("customer_id", "recommendation_rank"),
        _flat(
            not_null("customer_id", "recommendation_rank", "product_id", "reason",
                     "is_repeat_purchase", "is_cold_start"),
            unique("customer_id", "recommendation_rank"),
            unique("customer_id", "product_id"),
            between("recommendation_rank", 1),
            in_set("reason", RANK_REASONS),
        ),
    ),
    SuiteSpec(
        "ml.ml_recommendations_by_anchor", "ml", ("anchor_family", "recommendation_rank"),
        _flat(
            not_null("anchor_family", "recommendation_rank", "product_id", "attach_rate"),
            unique("anchor_family", "recommendation_rank"),
            unique("anchor_family", "product_id"),
            between("recommendation_rank", 1),
            shares("attach_rate", "base_rate"),
            non_negative("lift"),
            at_least("anchor_receipts", "together_receipts"),
        ),
    ),
    SuiteSpec(
        "ml.ml_revenue_forecast", "ml", ("store_id", "forecast_date"),
        _flat(
            not_null("store_id", "forecast_date", "horizon_day", "forecast_revenue"),
            unique("store_id", "forecast_date"),
            between("horizon_day", 1),
            between("weekday", 1, 7),
            non_negative("forecast_revenue", "lower_revenue", "seasonal_naive_revenue"),
            at_least("forecast_revenue", "lower_revenue"),
            at_least("upper_revenue", "forecast_revenue"),
        ),
    ),
    SuiteSpec(
        "ml.ml_revenue_backtest", "ml", ("store_id", "origin_date", "forecast_date"),
        _flat(
            not_null("store_id", "origin_date", "forecast_date", "actual_revenue",
                     "forecast_revenue"),
            unique("store_id", "origin_date", "forecast_date"),
            at_least("forecast_date", "origin_date"),
            between("horizon_day", 1),
            non_negative("actual_revenue", "forecast_revenue", "seasonal_naive_revenue"),
        ),
    ),
    SuiteSpec(
        "ml.ml_feature_importances", "ml", ("model", "variant", "segment", "feature"),
        _flat(
            not_null("model", "variant", "feature", "importance", "method"),
            unique("model", "variant", "segment", "feature"),
        ),
    ),
    SuiteSpec(
        "ml.ml_model_registry", "ml", ("model", "run_id"),
        _flat(
            not_null("model", "run_id", "is_current", "status"),
            unique("model", "run_id"),
            between("artifact_bytes", 1),
            # a store shorter than the holdout has no training days: its window is empty
            at_least("train_end", "train_start", where=Column("train_rows") > 0),
            at_least("test_end", "test_start", where=Column("test_rows") > 0),
        ),
    ),
    *(metrics_suite(f"ml.{name}") for name in (
        "ml_model_metrics", "ml_restaurant_propensity_metrics", "ml_addon_propensity_metrics",
        "ml_recommendations_metrics", "ml_revenue_forecast_metrics",
    )),
]


def reconciliation_suite() -> SuiteSpec:
    from xsell.quality.reconcile import CHECKS

    return SuiteSpec(
        "checks.reconciliation", "checks", ("check", "item", "left_value", "right_value"),
        [
            gxe.ExpectColumnValuesToBeBetween(
                column="excess", min_value=0, max_value=0,
                row_condition=Column("check") == check.name,
                description=f"{check.name}: {check.rule}",
            )
            for check in CHECKS
        ],
    )


def all_suites() -> list[SuiteSpec]:
    return [*STAGING, *CROSS_SELL, *CUSTOMERS, *ML, *ML_MODELS, reconciliation_suite()]
