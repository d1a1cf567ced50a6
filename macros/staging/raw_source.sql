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
            select * from {{ xsell.raw_relation(relation, node, path) }}
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


{#-
    What a model selects from to read a raw file. dbt-duckdb renders the source itself
    through its external_location; Spark reads the Parquet file by its path.
-#}
{% macro raw_relation(relation, node, path) -%}
    {{ return(adapter.dispatch("raw_relation", "xsell")(relation, node, path)) }}
{%- endmacro %}

{% macro default__raw_relation(relation, node, path) -%}
    {{ relation }}
{%- endmacro %}

{% macro spark__raw_relation(relation, node, path) -%}
    {%- if node.source_meta.raw_format != "parquet" -%}
        {{ exceptions.raise_compiler_error(
            "On Spark the raw contract is read as Parquet only, but XSELL_RAW_FORMAT is '"
            ~ node.source_meta.raw_format ~ "'. Write Parquet files (`xsell generate` and "
            ~ "`xsell import` do by default) and set XSELL_RAW_FORMAT=parquet."
        ) }}
    {%- endif -%}
    parquet.`{{ path }}`
{%- endmacro %}


{% macro raw_file_exists(path) -%}
    {{ return(adapter.dispatch("raw_file_exists", "xsell")(path)) }}
{%- endmacro %}

{% macro duckdb__raw_file_exists(path) -%}
    {%- set result = run_query("select count(*) from glob('" ~ path ~ "')") -%}
    {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#-
    Spark has no glob(): list the raw folder with the binaryFile source, which reads only
    the files' metadata when their content is not selected (names starting with _ or .
    are skipped, as Spark skips them everywhere).
-#}
{% macro spark__raw_file_exists(path) -%}
    {%- set parts = path.rsplit("/", 1) if "/" in path else [".", path] -%}
    {%- set result = run_query(
        "select count(*) from binaryFile.`" ~ parts[0] ~ "` where path like '%/" ~ parts[1] ~ "'"
    ) -%}
    {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- Engines without a file-listing function treat every declared raw table as present. -#}
{% macro default__raw_file_exists(path) -%}
    {{ return(true) }}
{%- endmacro %}
