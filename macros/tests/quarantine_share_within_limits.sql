{#-
    The share of a raw table's rows sent to quarantine, in basis points
    (1 bp = 0.01 %), reported as the test's failure count: the test warns above
    var quarantine_share_warn and fails above var quarantine_share_error
    (both given as fractions, e.g. 0.01 = 1 %). warn_share / error_share override
    the vars for one table, e.g. a small hand-kept table where one bad row is a
    large share.

    The test returns one row per rejection reason (table, reason, rows, share in
    percent), so `dbt test --store-failures` keeps them; `xsell run` prints the same
    breakdown when the test fails.
-#}
{% test quarantine_share_within_limits(
    model, source_name, table_name, warn_share=none, error_share=none
) %}
    {%- set warn_share = var("quarantine_share_warn") if warn_share is none else warn_share -%}
    {%- set error_share = var("quarantine_share_error") if error_share is none else error_share -%}
    {%- set warn_bp = (warn_share | float * 10000) | round(0) | int -%}
    {%- set error_bp = (error_share | float * 10000) | round(0) | int -%}
    {{ config(
        fail_calc="coalesce(max(quarantine_share_bp), 0)",
        warn_if=">" ~ warn_bp,
        error_if=">" ~ error_bp,
    ) }}
with

raw_rows as (
    select count(*) as row_count from ({{ xsell.raw_source(source_name, table_name) }}) as raw_table
),

quarantined_rows as (
    select
        rejection_reason,
        count(*) as row_count
    from {{ model }}
    group by rejection_reason
),

shares as (
    select
        '{{ table_name }}' as table_name,
        quarantined_rows.rejection_reason,
        quarantined_rows.row_count as reason_row_count,
        raw_rows.row_count as raw_row_count,
        sum(quarantined_rows.row_count) over () as quarantined_row_count
    from quarantined_rows
    cross join raw_rows
    where raw_rows.row_count > 0
)

select
    table_name,
    rejection_reason,
    reason_row_count,
    quarantined_row_count,
    raw_row_count,
    round(100.0 * quarantined_row_count / raw_row_count, 2) as quarantine_share_pct,
    cast(ceil(10000.0 * quarantined_row_count / raw_row_count) as {{ dbt.type_int() }})
        as quarantine_share_bp
from shares
{% endtest %}
