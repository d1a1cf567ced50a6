{#-
    Which analyses ran on this data and, for the others, why not: one row per analysis
    (and per store for the revenue forecast), with the rows it produced. The rules are
    in macro analysis_rules; int_analyses_assessed evaluates them on the data.
    status: ran (rows produced), no_result (it ran and found nothing to report),
    not_applicable (the data cannot support it) or not_built (a dbt Python model, off
    with var python_models).
-#}
{%- set rules = xsell.analysis_rules() -%}
{%- set python_on = xsell.python_models_enabled() -%}
{#-
    The model each ML analysis publishes, held against its simple baselines on the
    holdout (ml_model_metrics): (analysis, model, variant, segment or none for all
    segments weighted by n, metric prefix, lower is better). Where the model does no
    better than its best baseline, the coverage row says so in its note. The forecast is
    compared per store (segment = the store).
-#}
{%- set comparisons = [
    ("restaurant_propensity", "ml_restaurant_propensity", "hist_gradient_boosting", none,
     "log_loss", true),
    ("addon_propensity", "ml_addon_propensity", "logistic_regression", none, "log_loss", true),
    ("recommendations", "ml_recommendations", "hybrid_ranker", "all", "recall_at_", false),
    ("recommendations_by_anchor", "ml_recommendations", "anchor_attach_rate",
     "anchor_baskets", "recall_at_", false),
    ("customer_lifetime_value", "ml_customer_lifetime_value", "bgnbd_gamma_gamma",
     "purchases", "mae", true),
    ("revenue_forecast", "ml_revenue_forecast", "poisson_weekday_holiday", "store", "mape",
     true),
] -%}

with

assessed as (
    select * from {{ ref('int_analyses_assessed') }}
),

profile as (
    select * from {{ ref('int_data_profiled') }}
),

outputs_itemsets as (
    {%- if python_on %}
    select
        item_level,
        itemset_length
    from {{ ref('fct_frequent_itemsets') }}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as item_level,
        cast(null as integer) as itemset_length
    where 1 = 0
    {%- endif %}
),

outputs_clv_fit as (
    {%- if python_on %}
    select
        bgnbd_converged,
        bgnbd_customers
    from {{ ref('ml_clv_parameters') }}
    where fit_name = 'as_of'
    {%- else %}
    select
        cast(null as boolean) as bgnbd_converged,
        cast(null as bigint) as bgnbd_customers
    where 1 = 0
    {%- endif %}
),

{% if python_on -%}
holdout_metrics as (
    select
        model,
        variant,
        is_baseline,
        segment,
        metric,
        value,
        coalesce(n, 1) as weight
    from {{ ref('ml_model_metrics') }}
    where split in ('test', 'backtest') and value is not null and not isnan(value)
),
{%- endif %}

comparisons as (
    {%- if python_on %}
    {%- for c in comparisons %}
    select
        '{{ c[0] }}' as analysis,
        {{ "segment" if c[3] == "store" else "'ALL'" }} as store_id,
        metric,
        variant,
        is_baseline,
        -- the metric oriented so that lower is better
        {{ "" if c[5] else "-" }}sum(value * weight) / sum(weight) as loss
    from holdout_metrics
    where
        model = '{{ c[1] }}'
        and (variant = '{{ c[2] }}' or is_baseline)
        and metric like '{{ c[4] }}%'
        {%- if c[3] == "store" %}
        and segment != 'all'
        {%- elif c[3] is not none %}
        and segment = '{{ c[3] }}'
        {%- endif %}
    group by {{ "segment, " if c[3] == "store" }}metric, variant, is_baseline
    {{ "union all" if not loop.last }}
    {%- endfor %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as analysis,
        cast(null as {{ dbt.type_string() }}) as store_id,
        cast(null as {{ dbt.type_string() }}) as metric,
        cast(null as {{ dbt.type_string() }}) as variant,
        cast(null as boolean) as is_baseline,
        cast(null as double) as loss
    where 1 = 0
    {%- endif %}
),

best_baselines as (
    select
        analysis,
        store_id,
        metric,
        variant,
        loss,
        row_number() over (
            partition by analysis, store_id, metric order by loss, variant
        ) as baseline_rank
    from comparisons
    where is_baseline
),

model_verdicts as (
    select
        models.analysis,
        models.store_id,
        'on the holdout the model did no better than the simple baseline '
        || replace(baselines.variant, 'baseline_', '') || ' (' || models.metric || ' '
        || cast(round(abs(models.loss), 4) as {{ dbt.type_string() }}) || ' against '
        || cast(round(abs(baselines.loss), 4) as {{ dbt.type_string() }})
        || '): its scores add nothing over that baseline on this data' as verdict
    from comparisons as models
    inner join best_baselines as baselines
        on
            models.analysis = baselines.analysis
            and models.store_id = baselines.store_id
            and models.metric = baselines.metric
            and baselines.baseline_rank = 1
    where not models.is_baseline and models.loss >= baselines.loss
),

analyses as (
    {%- for rule in rules %}
    {%- set built = python_on or not rule.get("python", false) %}
    {%- set main = rule.tables[0].split(".") %}
    select
        {{ loop.index }} as analysis_order,
        '{{ rule.analysis }}' as analysis,
        '{{ rule.title }}' as title,
        '{{ rule.area }}' as area,
        '{{ rule.tables | join(", ") }}' as tables,
        {{ "true" if built else "false" }} as is_built,
        {%- if built %}
        (
            select count(*) from {{ ref(main[1]) }}
            {%- if rule.get("where") %} where {{ rule.where }}{% endif %}
        ) as row_count,
        {%- else %}
        cast(0 as bigint) as row_count,
        {%- endif %}
        {{ rule.get("empty", "'it ran on this data and found nothing to report'") }}
            as empty_reason,
        concat_ws(
            '; ',
            {%- for note in rule.get("notes", []) %}
            case when {{ note[0] }} then {{ note[1] }} end,
            {%- endfor %}
            cast(null as {{ dbt.type_string() }})
        ) as note
    -- the rules' conditions and reasons read the profile as p
    from profile as p  -- noqa: AL05
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

forecast_rows as (
    {%- if python_on %}
    select
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        count(*) as row_count
    from {{ ref('ml_revenue_forecast') }}
    group by store_id
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as store_id, cast(0 as bigint) as row_count
    where 1 = 0
    {%- endif %}
),

whole_store as (
    select
        analyses.analysis_order,
        assessed.analysis,
        assessed.store_id,
        analyses.title,
        analyses.area,
        analyses.tables,
        analyses.is_built,
        assessed.is_applicable,
        analyses.row_count,
        assessed.reason,
        analyses.empty_reason,
        concat_ws('; ', nullif(analyses.note, ''), model_verdicts.verdict) as note
    from assessed
    inner join analyses
        on assessed.analysis = analyses.analysis
    left join model_verdicts
        on
            assessed.analysis = model_verdicts.analysis
            and assessed.store_id = model_verdicts.store_id
    where assessed.store_id = 'ALL'
),

per_store as (
    select
        {{ rules | length + 1 }} as analysis_order,
        assessed.analysis,
        assessed.store_id,
        'Revenue forecast' as title,
        'forecasting' as area,
        'ml.ml_revenue_forecast, ml.ml_revenue_backtest, ml.ml_revenue_forecast_metrics'
            as tables,
        {{ "true" if python_on else "false" }} as is_built,
        assessed.is_applicable,
        coalesce(forecast_rows.row_count, 0) as row_count,
        assessed.reason,
        'the store had no forecastable history at any backtest origin' as empty_reason,
        model_verdicts.verdict as note
    from assessed
    left join forecast_rows
        on assessed.store_id = forecast_rows.store_id
    left join model_verdicts
        on
            assessed.analysis = model_verdicts.analysis
            and assessed.store_id = model_verdicts.store_id
    where assessed.analysis = 'revenue_forecast'
),

combined as (
    select * from whole_store
    union all
    select * from per_store
),

final as (
    select
        cast(analysis_order as integer) as analysis_order,
        analysis,
        store_id,
        title,
        area,
        tables,
        case
            when not is_built then 'not_built'
            when not is_applicable then 'not_applicable'
            when row_count = 0 then 'no_result'
            else 'ran'
        end as status,
        is_applicable,
        cast(row_count as bigint) as row_count,
        case
            when not is_built
                then 'dbt Python models are off on this target (var python_models)'
            when not is_applicable then reason
            when row_count = 0 then empty_reason
        end as reason,
        case when is_built and is_applicable and row_count > 0 then nullif(note, '') end
            as note
    from combined
)

select * from final
