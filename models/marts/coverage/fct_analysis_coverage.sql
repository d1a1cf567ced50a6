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
        analyses.note
    from assessed
    inner join analyses
        on assessed.analysis = analyses.analysis
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
        cast(null as {{ dbt.type_string() }}) as note
    from assessed
    left join forecast_rows
        on assessed.store_id = forecast_rows.store_id
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
