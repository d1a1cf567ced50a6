{#-
    A one-row select of the customer-value as-of date: the var rfm_as_of_date when it
    is set, else the last receipt date in `receipts` (a relation or CTE with sold_date).
-#}
{% macro customer_value_as_of_date(receipts) -%}
    {%- set as_of = var('rfm_as_of_date', none) -%}
    {%- set as_of_text = (as_of | string | trim) if as_of is not none else '' -%}
    {%- if as_of_text | lower in ('', 'none', 'null') -%}
        select max(sold_date) as as_of_date from {{ receipts }}
    {%- else -%}
        select cast('{{ as_of_text }}' as date) as as_of_date
    {%- endif -%}
{%- endmacro %}
