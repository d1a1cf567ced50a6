{#-
    Every ML model's evaluation in one long table: the per-model metric frames (model
    and baselines, per split and segment) unioned, plus the lifetime-value holdout of
    ml_clv_metrics unpivoted into the same columns when ml_metrics_include_clv is true.
    {{ doc("ml_model_metrics") }}
-#}
{%- set metric_models = [
    "ml_restaurant_propensity_metrics",
    "ml_addon_propensity_metrics",
    "ml_recommendations_metrics",
    "ml_revenue_forecast_metrics",
] -%}
{%- set clv_metrics = ["mae", "rmse", "correlation", "total_ratio", "actual_mean"] -%}
{%- set columns = [
    "run_id", "model", "variant", "is_baseline", "segment", "split", "metric", "value", "n",
    "window_start", "window_end", "train_start", "train_end",
] -%}

with

{% for name in metric_models %}
{{ name }} as (
    select * from {{ ref(name) }}
),
{% endfor %}
{% if var("ml_metrics_include_clv") %}
{#- The customer-value holdout (ml_clv_metrics), unpivoted: one row per metric. -#}
clv as (
    select * from {{ ref('ml_clv_metrics') }}
),

clv_metrics as (
    {%- for metric in clv_metrics %}
    select
        clv.run_id,
        'ml_customer_lifetime_value' as model,
        clv.model as variant,
        clv.model = 'naive_rate' as is_baseline,
        clv.target as segment,
        'test' as split,
        '{{ metric }}' as metric,
        cast(clv.{{ metric }} as double) as value,
        cast(clv.customers as bigint) as n,
        cast(clv.holdout_start as date) as window_start,
        cast(clv.holdout_end as date) as window_end,
        cast(clv.observation_start as date) as train_start,
        cast(clv.calibration_end as date) as train_end
    from clv
    {{ "union all" if not loop.last }}
    {%- endfor %}
),
{%- endif %}

unioned as (
    {%- for name in metric_models %}
    select {{ columns | join(", ") }} from {{ name }}
    union all
    {%- endfor %}
    {%- if var("ml_metrics_include_clv") %}
    select {{ columns | join(", ") }} from clv_metrics
    {%- else %}
    select {{ columns | join(", ") }} from ml_revenue_forecast_metrics where false
    {%- endif %}
),

final as (
    select
        cast(run_id as varchar) as run_id,
        cast(model as varchar) as model,
        cast(variant as varchar) as variant,
        cast(is_baseline as boolean) as is_baseline,
        cast(segment as varchar) as segment,
        cast(split as varchar) as split,
        cast(metric as varchar) as metric,
        cast(value as double) as value,
        cast(n as bigint) as n,
        cast(window_start as date) as window_start,
        cast(window_end as date) as window_end,
        cast(train_start as date) as train_start,
        cast(train_end as date) as train_end
    from unioned
)

select * from final
