{#-
    The column is null on every row or on none: e.g. unit_price, absent for a store
    without prices, but never missing on some lines only (staging quarantines those).
    Returns one row (the counts) when both nulls and values are present.
-#}
{% test null_on_all_rows_or_none(model, column_name) %}
select
    sum(case when {{ column_name }} is null then 1 else 0 end) as null_rows,
    sum(case when {{ column_name }} is not null then 1 else 0 end) as value_rows
from {{ model }}
having
    sum(case when {{ column_name }} is null then 1 else 0 end) > 0
    and sum(case when {{ column_name }} is not null then 1 else 0 end) > 0
{% endtest %}
