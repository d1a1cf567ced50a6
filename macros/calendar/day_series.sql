{#-
    A select of one row per day, `date_day`, from `first_day` to `last_day` (date
    expressions over `relation`, a one-row relation or CTE; both ends included). No rows
    when either end is null (no data).
-#}
{% macro day_series(first_day, last_day, relation) -%}
    {{ return(adapter.dispatch("day_series", "xsell")(first_day, last_day, relation)) }}
{%- endmacro %}

{% macro default__day_series(first_day, last_day, relation) -%}
    select cast(unnest(generate_series(
        cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp), interval 1 day
    )) as date) as date_day
    from {{ relation }}
{%- endmacro %}

{% macro spark__day_series(first_day, last_day, relation) -%}
    select explode(sequence(
        cast({{ first_day }} as date), cast({{ last_day }} as date), interval 1 day
    )) as date_day
    from {{ relation }}
{%- endmacro %}
