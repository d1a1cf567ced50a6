"""The Great Expectations suites, declared once here and written to gx/ by `write_gx`.

gx/ (a GE file context) is what `validate` runs: one suite, data asset and validation
definition per table, named `<schema>.<table>`, plus `checks.reconciliation` over the
cross-table figures of `xsell.quality.reconcile`. This module is their source: edit it,
then run `python -m xsell.quality write-gx` and commit gx/. A test keeps gx/ and this
module in step.

Tunable numbers are `$PARAMETER`s whose values live in gx/xsell_thresholds.yml (bands)
or are computed from the build when it is validated (row counts relative to the input):
see `xsell.quality.gate.parameters`.

One kind of check, one layer: a rule dbt tests on a column (not_null, unique,
accepted_values, accepted_range, the quarantine share) is not repeated here (a test keeps
it so). These suites keep what dbt does not say: relations between columns, conditional
ranges, cross-table reconciliations and, opt-in, the bands of the synthetic store. They
fail the gate before anything is published.
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
            not_null("sold_date"),
            positive("unit_price"),
            gxe.ExpectColumnValuesToNotBeInSet(column="quantity", value_set=[0]),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__products", "staging", ("product_id",),
        _flat(
            non_negative("unit_cost"),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__customers", "staging", ("customer_id",),
        _flat(
            between("household_size", 1),
            non_negative("distance_km"),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__restaurant_orders", "staging", ("restaurant_order_id",),
        _flat(
            positive("amount"),
        ),
    ),
    SuiteSpec(
        "staging.stg_pos__campaigns", "staging", ("campaign_target_id",),
        _flat(
            between("discount_pct", 0, 100),
            at_least("ends_at", "starts_at"),
        ),
    ),
]

# --- cross-sell marts ----------------------------------------------------------------------

def attach_suite(table: str, key: tuple[str, ...]) -> SuiteSpec:
    return SuiteSpec(
        table, "cross_sell", key,
        _flat(
            not_null("anchor_receipts", "attached_receipts", "attach_rate"),
            non_negative("addon_lines", "addon_revenue"),
            at_least("anchor_receipts", "attached_receipts"),
            at_least("attached_receipts", "two_plus_addon_receipts"),
        ),
    )


def restaurant_suite(table: str, key: tuple[str, ...]) -> SuiteSpec:
    return SuiteSpec(
        table, "cross_sell", key,
        [at_least("receipts", "converted_receipts")],
    )


CROSS_SELL = [
    attach_suite("marts.fct_attach_rates_daily", ("anchor_family", "store_id", "sold_date")),
    attach_suite("marts.fct_attach_rates", ("anchor_family", "store_id")),
    attach_suite("marts.fct_attach_rates_overall", ("store_id",)),
    SuiteSpec(
        "marts.fct_addon_lift", "cross_sell", ("store_id", "anchor_family", "addon_category"),
        _flat(
            not_null("all_receipts", "anchor_receipts", "addon_receipts", "joint_receipts", "lift"),
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
            not_null("support", "confidence", "lift"),
            in_set("item_level", ["product", "category"]),
            shares("antecedent_support", "consequent_support"),
            non_negative("conviction"),
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
            not_null("itemset_length", "basket_count", "support"),
            in_set("item_level", ["product", "category"]),
            between("itemset_length", 1),
            at_least("n_baskets", "basket_count"),
        ),
    ),
    SuiteSpec(
        "marts.fct_product_affinity", "cross_sell", ("relation", "product_id", "affinity_rank"),
        _flat(
            not_null("related_product_id"),
            in_set("relation", ["co_purchase", "upsell"]),
            between("affinity_rank", 1),
            at_least("basket_count", "together_count"),
            at_least("related_basket_count", "together_count"),
        ),
    ),
    restaurant_suite("marts.fct_restaurant_conversion_daily",
                     ("anchor_family", "store_id", "sold_date")),
    restaurant_suite("marts.fct_restaurant_conversion", ("anchor_family", "store_id")),
    restaurant_suite("marts.fct_restaurant_conversion_by_group", ("shopper_group", "store_id")),
    SuiteSpec(
        "marts.fct_restaurant_timing", "cross_sell", ("shopper_group", "bucket_order"),
        _flat(
            not_null("timing_bucket", "visits"),
            in_set("shopper_group", ["ANY_ANCHOR", "NO_ANCHOR"]),
            non_negative("visits"),
        ),
    ),
    SuiteSpec(
        "marts.fct_revenue_mix", "cross_sell", ("store_id", "sold_date", "revenue_stream"),
        _flat(
            not_null("sold_date", "revenue"),
            in_set("revenue_stream", ["ANCHOR", "ADDON", "OTHER", "RESTAURANT", "RETURNS"]),
            at_least("lines", "receipts"),
            between("revenue", None, 0, where=Column("revenue_stream") == "RETURNS"),
            between("revenue", 0, where=Column("revenue_stream") != "RETURNS"),
        ),
    ),
    SuiteSpec(
        "marts.fct_impulse_by_hour", "cross_sell", ("sold_weekday", "sold_hour"),
        _flat(
            not_null("receipts", "impulse_rate"),
            between("sold_weekday", 1, 7),
            between("sold_hour", 0, 23),
            at_least("receipts", "impulse_receipts"),
        ),
    ),
    SuiteSpec(
        "marts.fct_promotion_uplift", "cross_sell", ("campaign_target_id",),
        _flat(
            not_null("campaign_id"),
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

# --- star schema ---------------------------------------------------------------------------

SALES = [
    SuiteSpec(
        "marts.fct_receipts", "sales", ("store_id", "receipt_id"),
        _flat(
            # a receipt's lines by role never exceed its lines; units never fewer than lines
            at_least("line_count", "anchor_line_count"),
            at_least("line_count", "addon_line_count"),
            at_least("item_count", "line_count"),
            at_least("revenue", "anchor_revenue"),
            at_least("revenue", "addon_revenue"),
        ),
    ),
]

# --- customer marts ------------------------------------------------------------------------

SCORES = ("recency_score", "frequency_score", "monetary_score")

CUSTOMERS = [
    SuiteSpec(
        "marts.fct_customer_rfm", "customers", ("customer_id",),
        _flat(
            not_null("rfm_cell"),
        ),
    ),
    SuiteSpec(
        "marts.dim_customers", "customers", ("customer_id",),
        _flat(
            # every loyalty profile is a row (plus anonymous-profile buyers)
            rows_at_least("profile_rows"),
            not_null("has_profile", "has_purchase"),
            shares("anchor_receipt_share"),
            non_negative("expected_purchases", "expected_spend", "distance_km"),
            between("purchase_receipts", 1),
            between("household_size", 1),
            [between(score, 1, 5) for score in SCORES],
        ),
    ),
    SuiteSpec(
        "marts.fct_cohort_retention", "customers", ("cohort_month", "months_since_first_purchase"),
        _flat(
            not_null("cohort_customers"),
            at_least("cohort_customers", "active_customers"),
            at_least("activity_month", "cohort_month"),
            # a cohort is defined by its first purchase month: all of it is active then
            between("retention_rate", 1, 1, where=Column("months_since_first_purchase") == 0),
        ),
    ),
    SuiteSpec(
        "marts.fct_revenue_at_risk", "customers", ("rfm_segment",),
        _flat(
            not_null("customers"),
            shares("customer_share", "revenue_share"),
            non_negative("customers", "expected_spend"),
        ),
    ),
    SuiteSpec(
        "marts.fct_customer_coverage", "customers", ("store_id",),
        _flat(
            not_null("purchase_receipts"),
            shares("anonymous_receipt_share"),
            non_negative("purchase_receipts", "member_purchase_receipts",
                         "anonymous_purchase_receipts", "members"),
            at_least("purchase_receipts", "member_purchase_receipts"),
        ),
    ),
]

# --- coverage -------------------------------------------------------------------------------

COVERAGE = [
    SuiteSpec(
        "marts.fct_analysis_coverage", "coverage", ("analysis", "store_id"),
        # an analysis that ran produced rows (dbt tests the other statuses leave none)
        [between("row_count", 1, where=Column("status") == "ran")],
    ),
]

# --- ML outputs (schema ml) ----------------------------------------------------------------

BGNBD = Column("model") == "bgnbd_gamma_gamma"

ML = [
    SuiteSpec(
        "ml.ml_customer_lifetime_value", "ml", ("customer_id",),
        _flat(
            # the value columns stay empty when the spend model cannot be fitted (no prices)
            not_null("probability_alive", "expected_purchases"),
            non_negative("repeat_purchase_days", "expected_spend", "expected_discounted_value"),
            at_least("tenure_days", "purchase_span_days"),
        ),
    ),
    SuiteSpec(
        "ml.ml_customer_segments", "ml", ("customer_id",),
        _flat(
            between("segment_id", 1),
            non_negative("distance_to_centroid"),
        ),
    ),
    SuiteSpec(
        "ml.ml_segment_selection", "ml", ("k",),
        _flat(
            not_null("silhouette", "is_chosen"),
            between("k", 2),
            non_negative("davies_bouldin", "inertia"),
        ),
    ),
    SuiteSpec(
        "ml.ml_clv_metrics", "ml", ("model", "target"),
        _flat(
            not_null("customers", "total_ratio"),
            non_negative("mae", "rmse", "actual_total", "predicted_total"),
            at_least("rmse", "mae"),
            between("correlation", -1, 1),
        ),
    ),
    SuiteSpec(
        "ml.ml_clv_parameters", "ml", ("fit_name",),
        _flat(
            not_null("r", "alpha", "a", "b"),
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
    evaluation windows after the training data on the test split. The key (unique, and
    run_id not null) is dbt's test; ml_model_metrics also has dbt's not_null on the key."""
    metric = Column("metric")
    keys_tested = table == "ml.ml_model_metrics"
    return SuiteSpec(
        table, "ml", METRIC_KEY,
        _flat(
            [] if keys_tested else not_null(*METRIC_KEY, "is_baseline"),
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
            not_null("split", "baseline_probability"),
            in_set("split", ["train", "test"]),
            between("probability_decile", 1, 10),
        ),
    ),
    SuiteSpec(
        "ml.ml_restaurant_calibration", "ml", ("split", "variant", "decile"),
        _flat(
            not_null("split", "variant", "decile", "receipts"),
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
            not_null("split", "is_attached"),
            in_set("split", ["train", "test"]),
            shares("baseline_probability"),
        ),
    ),
    SuiteSpec(
        "ml.ml_addon_recommendations_by_family", "ml", ("anchor_family", "addon_category"),
        _flat(
            not_null("promote_rank", "expected_attach_rate"),
            unique("anchor_family", "promote_rank"),
            between("promote_rank", 1),
            shares("expected_attach_rate", "base_rate", "observed_attach_rate"),
            non_negative("model_lift", "anchor_receipts"),
        ),
    ),
    SuiteSpec(
        "ml.ml_recommendations", "ml", ("customer_id", "recommendation_rank"),
        _flat(
            not_null("reason", "is_repeat_purchase", "is_cold_start"),
            between("recommendation_rank", 1),
        ),
    ),
    SuiteSpec(
        "ml.ml_recommendations_by_anchor", "ml", ("anchor_family", "recommendation_rank"),
        _flat(
            not_null("recommendation_rank", "attach_rate"),
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
            not_null("horizon_day"),
            between("horizon_day", 1),
            between("weekday", 1, 7),
            non_negative("lower_revenue", "seasonal_naive_revenue"),
            at_least("forecast_revenue", "lower_revenue"),
            at_least("upper_revenue", "forecast_revenue"),
        ),
    ),
    SuiteSpec(
        "ml.ml_revenue_backtest", "ml", ("store_id", "origin_date", "forecast_date"),
        _flat(
            not_null("origin_date", "forecast_date", "actual_revenue", "forecast_revenue"),
            at_least("forecast_date", "origin_date"),
            between("horizon_day", 1),
            non_negative("actual_revenue", "forecast_revenue", "seasonal_naive_revenue"),
        ),
    ),
    SuiteSpec(
        "ml.ml_feature_importances", "ml", ("model", "variant", "segment", "feature"),
        _flat(
            not_null("variant", "importance", "method"),
            unique("model", "variant", "segment", "feature"),
        ),
    ),
    SuiteSpec(
        "ml.ml_model_registry", "ml", ("model", "run_id"),
        _flat(
            not_null("is_current", "status"),
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


# --- bands of the synthetic store (opt-in) ---------------------------------------------------
# Figures that describe the store xsell generates, not every store: a real store may attach
# nothing to its anchors or have ties in every RFM score. validate(bands=True) (`xsell
# validate --bands`, and the synthetic store's tests) checks them; the production gate
# does not.

BANDS = [
    SuiteSpec(
        "bands.fct_attach_rates_overall", "bands", ("store_id",),
        # the share of anchor receipts that pull an add-on along, over all days, per store
        [between("attach_rate", param("attach_rate_all_min"), param("attach_rate_all_max"))],
        table="marts.fct_attach_rates_overall",
    ),
    SuiteSpec(
        "bands.fct_customer_rfm", "bands", ("customer_id",),
        # mid-rank quintile scores average about 3; far off means the scoring broke
        [mean_in_band(score, "rfm_score_mean") for score in SCORES],
        table="marts.fct_customer_rfm",
    ),
    SuiteSpec(
        "bands.ml_clv_metrics", "bands", ("model", "target"),
        # the BG/NBD + Gamma-Gamma totals on the holdout, predicted / actual
        [between("total_ratio", param("clv_total_ratio_min"), param("clv_total_ratio_max"),
                 where=BGNBD)],
        table="ml.ml_clv_metrics",
    ),
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
    return [*STAGING, *CROSS_SELL, *SALES, *CUSTOMERS, *COVERAGE, *ML, *ML_MODELS, *BANDS,
            reconciliation_suite()]
