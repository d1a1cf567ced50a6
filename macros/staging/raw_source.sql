{#-
    Read one raw-contract table through its dbt source, with raw_row_number: the
    row's position in the file (1 = the first data row), the order "first in the
    file" means when staging keeps one of two rows with the same key.

    The source relation is always named (so lineage shows raw -> staging), but an
    optional table whose file is absent is read as an empty table with the column
    types declared in _staging__sources.yml, so models that need it produce empty
    results instead of errors. A required table whose file is absent stops the
    build with a message that names the file, and so does every structural problem
    found before a row is read: both formats present, an empty (0-byte) file, a
    missing contract column, a required table without rows. A CSV file is read with
    the raw contract's dialect (comma, double quotes, a header line), so a ragged
    line stops the build with DuckDB's message naming the file and the line.
-#}
{% macro raw_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        select * from {{ relation }}
    {%- else -%}
        {%- set node = xsell.raw_source_node(source_name, table_name) -%}
        {%- set path = xsell.raw_file_path(node) -%}
        {{ xsell.refuse_both_formats(node) }}
        {%- if xsell.raw_file_exists(path) -%}
            {{ xsell.raw_rows(relation, node, path) }}
        {%- elif node.meta.get('required', false) -%}
            {{ exceptions.raise_compiler_error(
                "Raw table '" ~ table_name ~ "' is required but " ~ path ~ " does not exist. "
                ~ "Create it with `xsell generate` or `xsell import`, or point XSELL_RAW_DIR "
                ~ "(and XSELL_RAW_FORMAT=csv for CSV files) at the folder that holds it."
            ) }}
        {%- else -%}
            select
            {%- for column in node.columns.values() %}
                cast(null as {{ column.data_type }}) as {{ column.name }},
            {%- endfor %}
                cast(null as bigint) as raw_row_number
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


{#- A table must have one file: <table>.parquet and <table>.csv side by side is ambiguous. -#}
{% macro refuse_both_formats(node) -%}
    {%- set base = node.source_meta.raw_dir ~ "/" ~ node.identifier -%}
    {%- if xsell.raw_file_exists(base ~ ".parquet") and xsell.raw_file_exists(base ~ ".csv") -%}
        {{ exceptions.raise_compiler_error(
            "Raw table '" ~ node.name ~ "' has two files, " ~ base ~ ".parquet and " ~ base
            ~ ".csv; keep one (the build reads " ~ node.source_meta.raw_format ~ ")."
        ) }}
    {%- endif -%}
{%- endmacro %}


{#-
    select * (every column of the file) plus raw_row_number. dbt-duckdb renders the
    Parquet source through its external_location; CSV is read here, with the file's
    own header names, every value as text.
-#}
{% macro raw_rows(relation, node, path) -%}
    {{ return(adapter.dispatch("raw_rows", "xsell")(relation, node, path)) }}
{%- endmacro %}

{% macro default__raw_rows(relation, node, path) -%}
    select *, row_number() over (order by 1) as raw_row_number from {{ relation }}
{%- endmacro %}

{% macro duckdb__raw_rows(relation, node, path) -%}
    {%- set quoted_path = path | replace("'", "''") -%}
    {%- set size = run_query("select size from read_blob('" ~ quoted_path ~ "')").columns[0].values()[0] -%}
    {%- if size == 0 -%}
        {{ exceptions.raise_compiler_error(
            "Raw file " ~ path ~ " is empty (0 bytes). A " ~ node.source_meta.raw_format
            ~ " file of the raw contract holds at least its column names"
            ~ (" (a header line)" if node.source_meta.raw_format == "csv" else "")
            ~ ". Write it again (`xsell import`, `xsell generate`), or remove it if the table "
            ~ "is optional (customers, restaurant_orders, campaigns) and you have none."
        ) }}
    {%- endif -%}
    {%- if node.source_meta.raw_format == "csv" -%}
        {%- set names = xsell.csv_header(path) -%}
        {%- set reader -%}
            read_csv('{{ quoted_path }}', header = true, auto_detect = false, delim = ',',
                quote = '"', escape = '"', columns = {
                {%- for name in names %}'{{ name | replace("'", "''") }}': 'VARCHAR'{{ ", " if not loop.last }}{% endfor -%}
            })
        {%- endset -%}
    {%- else -%}
        {%- set reader = relation | string -%}
        {%- set names = run_query("describe select * from " ~ reader).columns[0].values() | list -%}
    {%- endif -%}
    {{ xsell.require_contract_columns(node, path, names) }}
    {%- if node.meta.get('required', false) and model.resource_type == 'model' -%}
        {%- set rows = run_query("select count(*) from " ~ reader).columns[0].values()[0] -%}
        {%- if rows == 0 -%}
            {{ exceptions.raise_compiler_error(
                "Raw file " ~ path ~ " has no rows (only its "
                ~ ("header line" if node.source_meta.raw_format == "csv" else "schema")
                ~ "): there are no " ~ node.name ~ " to build from. Import or generate the data again."
            ) }}
        {%- endif -%}
    {%- endif -%}
    select * exclude (ordinality), ordinality as raw_row_number from {{ reader }} with ordinality
{%- endmacro %}

{#- Spark numbers the rows of one Parquet file in their order in the file. -#}
{% macro spark__raw_rows(relation, node, path) -%}
    select
        *,
        row_number() over (order by monotonically_increasing_id()) as raw_row_number
    from {{ xsell.raw_relation(relation, node, path) }}
{%- endmacro %}


{#- Stop the build when the file lacks a column of the raw contract, naming both lists. -#}
{% macro require_contract_columns(node, path, names) -%}
    {%- set present = names | map("lower") | list -%}
    {%- set missing = [] -%}
    {%- for column in node.columns.keys() -%}
        {%- if column | lower not in present -%}
            {%- do missing.append(column) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error(
            "Raw file " ~ path ~ " has no column " ~ missing | join(", ")
            ~ ". The raw contract's " ~ node.name ~ " table has the columns "
            ~ node.columns.keys() | list | join(", ") ~ "; the file has "
            ~ (names | join(", ") if names else "none") ~ "."
            ~ (" A CSV of the raw contract is comma-separated with a header line: import other "
               ~ "layouts with `xsell import csv --mapping`." if node.source_meta.raw_format == "csv" else "")
        ) }}
    {%- endif -%}
{%- endmacro %}


{#-
    The column names in the first line of a CSV file (CSV quoting rules; a UTF-8 byte
    order mark and a carriage return are dropped). Read as one text value per line, so
    the rest of the file does not matter here.
-#}
{% macro csv_header(path) -%}
    {%- set result = run_query(
        "select line from read_csv('" ~ path | replace("'", "''") ~ "', header = false, "
        ~ "auto_detect = false, columns = {'line': 'VARCHAR'}, delim = chr(1), quote = '', "
        ~ "escape = '') limit 1"
    ) -%}
    {%- set lines = result.columns[0].values() | list -%}
    {%- set line = (lines[0] or "") if lines else "" -%}
    {%- set line = line.lstrip("\ufeff").rstrip("\r") -%}
    {%- set ns = namespace(names=[], field="", quoted=false, skip=false) -%}
    {%- for i in range(line | length) -%}
        {%- set ch = line[i] -%}
        {%- if ns.skip -%}
            {%- set ns.skip = false -%}
        {%- elif ch == '"' -%}
            {%- if ns.quoted and i + 1 < line | length and line[i + 1] == '"' -%}
                {%- set ns.field = ns.field ~ '"' -%}
                {%- set ns.skip = true -%}
            {%- else -%}
                {%- set ns.quoted = not ns.quoted -%}
            {%- endif -%}
        {%- elif ch == "," and not ns.quoted -%}
            {%- do ns.names.append(ns.field | trim) -%}
            {%- set ns.field = "" -%}
        {%- else -%}
            {%- set ns.field = ns.field ~ ch -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if line | trim != "" -%}
        {%- do ns.names.append(ns.field | trim) -%}
    {%- endif -%}
    {{ return(ns.names) }}
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
    {%- set result = run_query("select count(*) from glob('" ~ path | replace("'", "''") ~ "')") -%}
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
