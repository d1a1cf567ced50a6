{#-
    Raw rows = staged rows + quarantined rows: staging neither drops nor invents
    rows. Returns one row (the three counts) when the invariant does not hold.
-#}
{% test reconciles_with_quarantine(model, source_name, table_name, quarantine_model) %}
with

raw_rows as (
    select count(*) as row_count from ({{ xsell.raw_source(source_name, table_name) }}) as raw_table
),

staged_rows as (
    select count(*) as row_count from {{ model }}
),

quarantined_rows as (
    select count(*) as row_count from {{ quarantine_model }}
)

select
    raw_rows.row_count as raw_row_count,
    staged_rows.row_count as staged_row_count,
    quarantined_rows.row_count as quarantined_row_count
from raw_rows
cross join staged_rows
cross join quarantined_rows
where raw_rows.row_count != staged_rows.row_count + quarantined_rows.row_count
{% endtest %}
