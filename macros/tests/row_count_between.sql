{#- The model's row count when it lies outside [min_value, max_value] (either bound optional). -#}
{% test row_count_between(model, min_value=none, max_value=none) %}
    select row_count
    from (select count(*) as row_count from {{ model }}) as counted
    where
        false
        {%- if min_value is not none %} or row_count < {{ min_value }}{% endif %}
        {%- if max_value is not none %} or row_count > {{ max_value }}{% endif %}
{% endtest %}
