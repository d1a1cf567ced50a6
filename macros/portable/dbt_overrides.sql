{#-
    Our versions of dbt's own cross-database macros where dbt-spark's do not do what the
    models need. dbt_project.yml's `dispatch` config searches this project before dbt for
    the `dbt` namespace, so only the spark__ variants below replace dbt-spark's; every
    other engine keeps dbt's.
-#}

{#-
    dbt.listagg: dbt-spark drops the order_by_clause (with a warning), so lists like
    "BEDS,SOFAS" would come out in whatever order Spark collected them. Spark 4 has the
    standard ordered aggregate; like DuckDB's it skips nulls and is null for no values.
-#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("listagg with limit_num: not written for Spark") }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }})
    {%- if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}


{#-
    Seeds: dbt-spark's session method pastes each value into the insert between quotes
    without escaping them, so a seed value with an apostrophe ("Can't Lose Them") is a
    syntax error. Same inserts, with every value written as an escaped literal instead.
-#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set column_override = model["config"].get("column_types", {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                    {%- set type = column_override.get(col_name, inferred_type) -%}
                    cast({{ xsell.spark_seed_literal(row[loop.index0]) }} as {{ type }})
                    {{- "," if not loop.last }}
                {%- endfor -%}){{ "," if not loop.last }}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{%- endmacro %}

{#- A seed value as a Spark SQL literal (Spark escapes with a backslash). -#}
{% macro spark_seed_literal(value) -%}
    {%- if value is none -%}
        null
    {%- elif value is sameas true or value is sameas false -%}
        {{ value | string | lower }}
    {%- elif value is number -%}
        {{ value }}
    {%- else -%}
        '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
