{#-
    Read one raw-contract table through its dbt source.

    The source relation is always named (so lineage shows raw -> staging), but an
    optional table whose file is absent is read as an empty table with the column
    types declared in _staging__sources.yml, so models that need it produce empty
    results instead of errors. A required table whose file is absent stops the
    build with a message that names the file.
-#}
{% macro raw_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        select * from {{ relation }}
    {%- else -%}
        {%- set node = xsell.raw_source_node(source_name, table_name) -%}
        {%- set path = xsell.raw_file_path(node) -%}
        {%- if xsell.raw_file_exists(path) -%}
            select * from {{ relation }}
        {%- elif node.meta.get('required', false) -%}
            {{ exceptions.raise_compiler_error(
                "Raw table '" ~ table_name ~ "' is required but " ~ path ~ " does not exist. "
                ~ "Create it with `xsell generate` or `xsell import`, or point XSELL_RAW_DIR "
                ~ "(and XSELL_RAW_FORMAT=csv for CSV files) at the folder that holds it."
            ) }}
        {%- else -%}
            select
            {%- for column in node.columns.values() %}
                cast(null as {{ column.data_type }}) as {{ column.name }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{% macro raw_source_node(source_name, table_name) -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.source_name == source_name and node.name == table_name -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("No source " ~ source_name ~ "." ~ table_name) }}
{%- endmacro %}


{#- The file behind a source, from the raw_dir and raw_format declared on the source. -#}
{% macro raw_file_path(node) -%}
    {{ return(node.source_meta.raw_dir ~ "/" ~ node.identifier ~ "." ~ node.source_meta.raw_format) }}
{%- endmacro %}


{% macro raw_file_exists(path) -%}
    {{ return(adapter.dispatch("raw_file_exists", "xsell")(path)) }}
{%- endmacro %}

{% macro duckdb__raw_file_exists(path) -%}
    {%- set result = run_query("select count(*) from glob('" ~ path ~ "')") -%}
    {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- Engines without a file-listing function treat every declared raw table as present. -#}
{% macro default__raw_file_exists(path) -%}
    {{ return(true) }}
{%- endmacro %}
