{#-
    The first day an incremental run reloads: the last day the model already holds
    (`last_day`, a scalar query on {{ this }}) minus the `incremental_lookback_days` var,
    so lines that arrive late for the last loaded days are still taken in. An empty
    table reloads every day (from `raw_valid_from`, before which staging keeps nothing).
-#}
{% macro incremental_reload_from(last_day) -%}
    coalesce(
        {{ dbt.dateadd("day", -1 * (var("incremental_lookback_days") | int), "(" ~ last_day ~ ")") }},
        cast('{{ var("raw_valid_from") }}' as date)
    )
{%- endmacro %}
