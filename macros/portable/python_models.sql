{#-
    The switch for dbt Python models: var python_models, true by default on every target
    but spark (dbt-spark runs Python models on Databricks only). dbt_project.yml reads the
    same default to disable the Python models and models/ml.
-#}
{% macro python_models_enabled() -%}
    {{ return(var("python_models", target.type != "spark") | string | lower == "true") }}
{%- endmacro %}


{#-
    A select of a Python model's output, for a SQL model that joins ML columns onto its
    own: the model itself when Python models are on, else no rows with the same columns
    (`columns` maps column -> type), so the SQL model still builds with those columns null.
-#}
{% macro python_model_or_empty(model_name, columns) -%}
    {%- if xsell.python_models_enabled() -%}
        select * from {{ ref(model_name) }}
    {%- else -%}
        select
        {%- for name, data_type in columns.items() %}
            cast(null as {{ data_type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
        where 1 = 0
    {%- endif -%}
{%- endmacro %}
