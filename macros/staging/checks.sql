{#-
    Building blocks of the staging checks. A base model keeps every raw value as
    text (raw_<column>) beside its typed value (<column>), so a value that is
    present but does not cast is told apart from one that is missing.
-#}

{#- Text value with surrounding blanks removed; empty text becomes null. -#}
{% macro clean_text(column) -%}
    nullif(trim(cast({{ column }} as {{ dbt.type_string() }})), '')
{%- endmacro %}

{#- Raw value as text, for the quarantine table. -#}
{% macro raw_text(column) -%}
    cast({{ column }} as {{ dbt.type_string() }})
{%- endmacro %}

{#- Typed value, null when the text does not cast. -#}
{% macro typed(column, data_type) -%}
    {{ xsell.try_cast(xsell.clean_text(column), data_type) }}
{%- endmacro %}

{#- Case branches: missing_<column> when absent, unparseable_<column> when present but not castable. -#}
{% macro missing_or_unparseable(column) -%}
    when raw_{{ column }} is null or trim(raw_{{ column }}) = '' then 'missing_{{ column }}'
            when {{ column }} is null then 'unparseable_{{ column }}'
{%- endmacro %}

{#- Case branch: present but not castable (for nullable columns). -#}
{% macro unparseable(column) -%}
    when raw_{{ column }} is not null and trim(raw_{{ column }}) != '' and {{ column }} is null
            then 'unparseable_{{ column }}'
{%- endmacro %}

{#- Case branch: a timestamp outside [raw_valid_from, raw_valid_until). -#}
{% macro out_of_range(column) -%}
    when {{ column }} < cast('{{ var("raw_valid_from") }}' as {{ dbt.type_timestamp() }})
                or {{ column }} >= cast('{{ var("raw_valid_until") }}' as {{ dbt.type_timestamp() }})
            then '{{ column }}_out_of_range'
{%- endmacro %}


{#-
    Select list that casts every raw column: "<column>" typed (text columns cleaned)
    and "raw_<column>" as the original text. `columns` maps column -> data type,
    with "text" for identifiers and names.
-#}
{% macro typed_and_raw_columns(columns) -%}
    {%- for name, data_type in columns.items() %}
        {% if data_type == "text" -%}
            {{ xsell.clean_text(name) }} as {{ name }},
        {%- else -%}
            {{ xsell.typed(name, data_type) }} as {{ name }},
        {%- endif %}
        {{ xsell.raw_text(name) }} as raw_{{ name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{#- The typed and raw columns again, e.g. for the final select of a base model. -#}
{% macro checked_columns(columns) -%}
    {%- for name in columns %}
        {{ name }},
        raw_{{ name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{#- Comma-separated raw_<column> list, to order duplicates deterministically. -#}
{% macro raw_column_list(columns) -%}
    {%- for name in columns -%}
        raw_{{ name }}{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}


{#- Types are written as SQL names ("double", "integer"): dbt.type_float() is a 4-byte float on DuckDB. -#}

{#- Cast that yields null instead of failing. dbt's safe_cast is a plain cast on DuckDB. -#}
{% macro try_cast(expression, data_type) -%}
    {{ return(adapter.dispatch("try_cast", "xsell")(expression, data_type)) }}
{%- endmacro %}

{% macro default__try_cast(expression, data_type) -%}
    {{ dbt.safe_cast(expression, data_type) }}
{%- endmacro %}

{% macro duckdb__try_cast(expression, data_type) -%}
    try_cast({{ expression }} as {{ data_type }})
{%- endmacro %}

{% macro spark__try_cast(expression, data_type) -%}
    try_cast({{ expression }} as {{ data_type }})
{%- endmacro %}
