{#-
    The raw file is the one `xsell generate` or `xsell import` wrote: same size and
    sha256 as in `_raw_files.json` beside it (xsell.rawfiles). Returns one row naming
    the file and what differs; none when the folder has no record (files made by hand
    are not checked) or the table's file is absent (staging handles that). A file
    larger than var raw_hash_max_bytes is compared by size only here, and so is every
    file when `xsell run` starts the build (env XSELL_RAW_CHECKED=1): it hashed them
    just before. Accept files changed on purpose with `xsell run --accept-raw-changes`.
-#}
{% test raw_file_matches_record(model, source_name, table_name) %}
    {{ return(adapter.dispatch("test_raw_file_matches_record", "xsell")(model, source_name, table_name)) }}
{% endtest %}

{% macro default__test_raw_file_matches_record(model, source_name, table_name) %}
    {%- set state = namespace(entry=none, recorded=false) -%}
    {%- if execute -%}
        {%- set node = xsell.raw_source_node(source_name, table_name) -%}
        {%- set folder = node.source_meta.raw_dir -%}
        {%- set name = node.identifier ~ "." ~ node.source_meta.raw_format -%}
    {%- endif -%}
    {%- if execute and xsell.raw_file_exists(folder ~ "/_raw_files.json")
        and xsell.raw_file_exists(folder ~ "/" ~ name) -%}
        {%- set state.recorded = true -%}
        {%- set rows = run_query(
            "select name, size_bytes, sha256 from (select unnest(files, recursive := true) "
            ~ "from read_json('" ~ (folder ~ "/_raw_files.json") | replace("'", "''")
            ~ "', maximum_object_size = 104857600)) where name = '" ~ name | replace("'", "''") ~ "'"
        ) -%}
        {%- for row in rows.rows -%}
            {%- set state.entry = row -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if not state.recorded %}
select
    cast(null as {{ dbt.type_string() }}) as file_name,
    cast(null as {{ dbt.type_string() }}) as problem
where 1 = 0
    {%- elif state.entry is none %}
select
    '{{ folder }}/{{ name }}' as file_name,
    'not in _raw_files.json: added since xsell wrote the folder' as problem
    {%- else %}
        {%- set path = (folder ~ "/" ~ name) | replace("'", "''") %}
with

actual as (
    {%- if env_var("XSELL_RAW_CHECKED", "") == "1" %}
    select
        size,
        '{{ state.entry[2] }}' as sha256
    from read_blob('{{ path }}')
    {%- else %}
    select
        size,
        case
            when size <= {{ var("raw_hash_max_bytes") }} then sha256(content)
            else '{{ state.entry[2] }}'
        end as sha256
    from read_blob('{{ path }}')
    {%- endif %}
)

select
    '{{ folder }}/{{ name }}' as file_name,
    case
        when size != {{ state.entry[1] }}
            then 'size ' || cast(size as varchar) || ' bytes, recorded {{ state.entry[1] }}'
        else 'same size, other content (sha256 differs from _raw_files.json)'
    end as problem
from actual
where size != {{ state.entry[1] }} or sha256 != '{{ state.entry[2] }}'
    {%- endif %}
{% endmacro %}

{#- Spark: the record is checked by `xsell run`, not in the build. -#}
{% macro spark__test_raw_file_matches_record(model, source_name, table_name) %}
select
    cast(null as string) as file_name,
    cast(null as string) as problem
where 1 = 0
{% endmacro %}
