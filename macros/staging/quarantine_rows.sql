{#-
    The rejected rows of a base model, with their raw values (as text) under the
    raw contract's column names and the reason for rejection.
-#}
{% macro quarantine_rows(base_model, source_name, table_name) -%}
    {%- set checked = ref(base_model) -%}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- set columns = xsell.raw_source_node(source_name, table_name).columns.keys() | list -%}
    {%- endif %}
with

checked as (
    select * from {{ checked }}
),

final as (
    select
        raw_row_id,
        rejection_reason
        {%- for name in columns %},
        raw_{{ name }} as {{ name }}
        {%- endfor %}
    from checked
    where rejection_reason is not null
)

select * from final
{%- endmacro %}
