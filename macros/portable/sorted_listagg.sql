{#-
    The non-null values of `expression` in a group, sorted and joined by `delimiter`
    (a SQL string literal); null when there are none. dbt.listagg with an order by,
    except on DuckDB, where an ordered aggregate buffers and sorts every group (4x
    slower on 3.8M receipts) and sorting the collected list gives the same text.
-#}
{% macro sorted_listagg(expression, delimiter) -%}
    {{ return(adapter.dispatch("sorted_listagg", "xsell")(expression, delimiter)) }}
{%- endmacro %}

{% macro default__sorted_listagg(expression, delimiter) -%}
    {{ dbt.listagg(expression, delimiter, "order by " ~ expression) }}
{%- endmacro %}

{% macro duckdb__sorted_listagg(expression, delimiter) -%}
    array_to_string(
        list_sort(list({{ expression }}) filter (where {{ expression }} is not null)),
        {{ delimiter }}
    )
{%- endmacro %}
