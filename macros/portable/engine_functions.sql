{#- Functions whose spelling differs between engines, dispatched so every model stays one file. -#}

{#- Exact seconds from `start` to `end` (dbt.datediff counts boundaries crossed instead). -#}
{% macro seconds_between(start, end) -%}
    {{ return(adapter.dispatch("seconds_between", "xsell")(start, end)) }}
{%- endmacro %}

{% macro default__seconds_between(start, end) -%}
    (epoch({{ end }}) - epoch({{ start }}))
{%- endmacro %}

{#- A double, like DuckDB's epoch() difference, with the microseconds unix_timestamp() drops. -#}
{% macro spark__seconds_between(start, end) -%}
    ((unix_micros({{ end }}) - unix_micros({{ start }})) / 1000000)
{%- endmacro %}


{#- ISO day of week: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_weekday(timestamp) -%}
    {{ return(adapter.dispatch("iso_weekday", "xsell")(timestamp)) }}
{%- endmacro %}

{% macro default__iso_weekday(timestamp) -%}
    isodow({{ timestamp }})
{%- endmacro %}

{% macro spark__iso_weekday(timestamp) -%}
    (weekday({{ timestamp }}) + 1)
{%- endmacro %}


{#- Hour of day, 0-23. -#}
{% macro hour_of_day(timestamp) -%}
    extract(hour from {{ timestamp }})
{%- endmacro %}


{#- Exact (interpolated) quantile of `expression`, as an aggregate. -#}
{% macro quantile(expression, fraction) -%}
    {{ return(adapter.dispatch("quantile", "xsell")(expression, fraction)) }}
{%- endmacro %}

{% macro default__quantile(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}

{% macro spark__quantile(expression, fraction) -%}
    percentile({{ expression }}, {{ fraction }})
{%- endmacro %}


{#-
    Money of one line or order as an exact decimal. Sums of doubles differ in their last
    bits from one build to the next (DuckDB adds in parallel, in no fixed order); sums
    of decimals are exact, so the same input gives the same marts, bit for bit, and the
    same run ids in the models that hash their inputs. Six decimals keep any currency's
    cents and a sub-cent unit price times a quantity; up to 10^12 per line. Marts cast
    the sums back to double (their contracts), the Python models read doubles.
-#}
{% macro money(expression) -%}
    cast({{ expression }} as decimal(18, 6))
{%- endmacro %}
