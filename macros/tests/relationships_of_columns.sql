{#-
    A foreign key of several columns: the rows of `model` whose `columns` (all not null)
    match no row of `to` on `fields` (in the same order). dbt's `relationships` test
    takes one column; receipts are keyed by store_id and receipt_id together.
-#}
{% test relationships_of_columns(model, columns, to, fields) %}
    {%- if columns | length != fields | length -%}
        {{ exceptions.raise_compiler_error(
            "relationships_of_columns: columns " ~ columns ~ " and fields " ~ fields
            ~ " must pair up one to one") }}
    {%- endif %}
    select
        {%- for column in columns %}
        child.{{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ model }} as child
    left join (
        select distinct
            {%- for field in fields %}
            {{ field }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ to }}
    ) as parent
        on
        {%- for column in columns %}
        child.{{ column }} = parent.{{ fields[loop.index0] }}
        {{- " and" if not loop.last }}
        {%- endfor %}
    where
        {%- for column in columns %}
        child.{{ column }} is not null and
        {%- endfor %}
        parent.{{ fields[0] }} is null
{% endtest %}
