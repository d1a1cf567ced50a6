{#-
    Building blocks of the staging checks. A base model keeps every raw value as
    text (raw_<column>) beside its typed value (<column>), so a value that is
    present but does not cast is told apart from one that is missing.

    A base model declares its columns as a dict column -> type ("text" for
    identifiers and names, dbt.type_int(), "double", dbt.type_timestamp(),
    dbt.type_boolean()); the type decides how the text is read and checked:

    - integer: whole numbers in decimal digits only ("2", "-1", and "2.0" as a Parquet
      DOUBLE column prints it). "1.5", "0.4", "0x10", "1e3" are `non_integer_<column>`,
      never rounded; text that is no number at all is `unparseable_<column>`.
    - double: `non_finite_<column>` for inf, -inf and NaN.
    - timestamp: local store time. A value with a UTC offset or zone ("Z", "+05:00", a
      TIMESTAMPTZ Parquet column) is converted to the time zone of var `timezone`
      (else env XSELL_TIMEZONE), never to the build machine's; without either it is
      `<column>_needs_timezone`. Then `<column>_out_of_range` outside
      [raw_valid_from, raw_valid_until).
-#}

{#- Text value with surrounding blanks removed; empty text becomes null. -#}
{% macro clean_text(column) -%}
    nullif(trim(cast({{ column }} as {{ dbt.type_string() }})), '')
{%- endmacro %}

{#- Raw value as text, for the quarantine table. -#}
{% macro raw_text(column) -%}
    cast({{ column }} as {{ dbt.type_string() }})
{%- endmacro %}

{#- How a declared type is read and checked: text, integer, double, timestamp or other. -#}
{% macro column_kind(data_type) -%}
    {%- if data_type == "text" -%} {{ return("text") }}
    {%- elif data_type == dbt.type_int() -%} {{ return("integer") }}
    {%- elif data_type == "double" -%} {{ return("double") }}
    {%- elif data_type == dbt.type_timestamp() -%} {{ return("timestamp") }}
    {%- else -%} {{ return("other") }}
    {%- endif -%}
{%- endmacro %}

{#- Typed value, null when the text does not read as the type (see the header). -#}
{% macro typed(column, data_type) -%}
    {%- set kind = xsell.column_kind(data_type) -%}
    {%- set text = xsell.clean_text(column) -%}
    {%- if kind == "integer" -%}
        case when {{ xsell.is_whole_number_text(text) }}
            then {{ xsell.try_cast("regexp_replace(" ~ text ~ ", '[.]0*$', '')", data_type) }}
        end
    {%- elif kind == "timestamp" -%}
        {{ xsell.local_timestamp(text) }}
    {%- else -%}
        {{ xsell.try_cast(text, data_type) }}
    {%- endif -%}
{%- endmacro %}

{#- The raw text of a column is present (not null, not blank). -#}
{% macro raw_present(column) -%}
    (raw_{{ column }} is not null and trim(raw_{{ column }}) != '')
{%- endmacro %}

{#- Case branches for a required column: missing, then whatever makes its value invalid. -#}
{% macro required_value(column, columns, days_ahead=0) -%}
    when not {{ xsell.raw_present(column) }} then 'missing_{{ column }}'
            {{ xsell.optional_value(column, columns, days_ahead) }}
{%- endmacro %}

{#-
    Case branches for a nullable column: a present value that is not of the column's
    type (non-integer, unparseable, non-finite, needs a time zone, out of range).
-#}
{% macro optional_value(column, columns, days_ahead=0) -%}
    {%- set kind = xsell.column_kind(columns[column]) -%}
    {%- set raw = xsell.clean_text("raw_" ~ column) -%}
    {%- if kind == "integer" %}
            when {{ xsell.raw_present(column) }} and {{ column }} is null
                and ({{ xsell.try_cast(raw, "double") }} is not null
                    or {{ xsell.try_cast(raw, "bigint") }} is not null)
                then 'non_integer_{{ column }}'
    {%- elif kind == "timestamp" %}
            {%- if xsell.store_timezone() is none %}
            when {{ xsell.raw_present(column) }} and {{ xsell.has_utc_offset(raw) }}
                then '{{ column }}_needs_timezone'
            {%- endif %}
    {%- endif %}
            when {{ xsell.raw_present(column) }} and {{ column }} is null
                then 'unparseable_{{ column }}'
    {%- if kind == "double" %}
            when not {{ xsell.is_finite(column) }} then 'non_finite_{{ column }}'
    {%- elif kind == "timestamp" %}
            {{ xsell.out_of_range(column, days_ahead) }}
    {%- endif %}
{%- endmacro %}

{#- Case branch: a timestamp outside [raw_valid_from, raw_valid_until + days_ahead). -#}
{% macro out_of_range(column, days_ahead=0) -%}
    when {{ column }} < cast('{{ xsell.raw_valid_from() }}' as {{ dbt.type_timestamp() }})
                or {{ column }} >= cast('{{ xsell.raw_valid_until(days_ahead) }}' as {{ dbt.type_timestamp() }})
            then '{{ column }}_out_of_range'
{%- endmacro %}

{#- First plausible day of a raw timestamp (var raw_valid_from, "YYYY-MM-DD"). -#}
{% macro raw_valid_from() -%}
    {{ return(var("raw_valid_from") | string) }}
{%- endmacro %}

{#-
    The day after the last plausible day (exclusive), plus days_ahead: var
    raw_valid_until when set, else the day after the build date (UTC, when this dbt
    run started), so a line dated in the future is quarantined.
-#}
{% macro raw_valid_until(days_ahead=0) -%}
    {%- set until = var("raw_valid_until", none) -%}
    {%- if until is none or until | string | trim == "" -%}
        {%- set day = run_started_at.date() + modules.datetime.timedelta(days=1) -%}
    {%- else -%}
        {%- set day = modules.datetime.date.fromisoformat(until | string | trim) -%}
    {%- endif -%}
    {{ return((day + modules.datetime.timedelta(days=days_ahead)).isoformat()) }}
{%- endmacro %}


{#-
    The stores' time zone (an IANA name such as Europe/Berlin): var timezone, else the
    environment variable XSELL_TIMEZONE; none when neither is set.
-#}
{% macro store_timezone() -%}
    {%- set zone = var("timezone", none) -%}
    {%- if zone is none or zone | string | trim == "" -%}
        {%- set zone = env_var("XSELL_TIMEZONE", "") -%}
    {%- endif -%}
    {{ return(none if zone | string | trim == "" else zone | string | trim) }}
{%- endmacro %}


{#-
    Select list that casts every raw column: "<column>" typed (text columns cleaned)
    and "raw_<column>" as the original text. `columns` maps column -> data type,
    with "text" for identifiers and names.
-#}
{% macro typed_and_raw_columns(columns) -%}
    {%- for name, data_type in columns.items() %}
        {% if data_type == "text" -%}
            {{ xsell.clean_text(name) }} as {{ name }},
        {%- else -%}
            {{ xsell.typed(name, data_type) }} as {{ name }},
        {%- endif %}
        {{ xsell.raw_text(name) }} as raw_{{ name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{#- The typed and raw columns again, e.g. for the final select of a base model. -#}
{% macro checked_columns(columns) -%}
    {%- for name in columns %}
        {{ name }},
        raw_{{ name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{#- Types are written as SQL names ("double", "integer"): dbt.type_float() is a 4-byte float on DuckDB. -#}

{#- Cast that yields null instead of failing. dbt's safe_cast is a plain cast on DuckDB. -#}
{% macro try_cast(expression, data_type) -%}
    {{ return(adapter.dispatch("try_cast", "xsell")(expression, data_type)) }}
{%- endmacro %}

{% macro default__try_cast(expression, data_type) -%}
    {{ dbt.safe_cast(expression, data_type) }}
{%- endmacro %}

{% macro duckdb__try_cast(expression, data_type) -%}
    try_cast({{ expression }} as {{ data_type }})
{%- endmacro %}

{% macro spark__try_cast(expression, data_type) -%}
    try_cast({{ expression }} as {{ data_type }})
{%- endmacro %}


{#- Text of a whole number in decimal digits: optional sign, digits, optionally ".0...". -#}
{% macro is_whole_number_text(text) -%}
    {{ return(adapter.dispatch("is_whole_number_text", "xsell")(text)) }}
{%- endmacro %}

{% macro default__is_whole_number_text(text) -%}
    regexp_full_match({{ text }}, '[+-]?[0-9]+([.]0*)?')
{%- endmacro %}

{% macro spark__is_whole_number_text(text) -%}
    ({{ text }} rlike '^[+-]?[0-9]+([.]0*)?$')
{%- endmacro %}


{#- A finite number: not inf, -inf or NaN (null stays null). -#}
{% macro is_finite(expression) -%}
    {{ return(adapter.dispatch("is_finite", "xsell")(expression)) }}
{%- endmacro %}

{% macro default__is_finite(expression) -%}
    isfinite({{ expression }})
{%- endmacro %}

{#- NaN sorts above every number on Spark, as on DuckDB. -#}
{% macro spark__is_finite(expression) -%}
    ({{ expression }} between -1.7976931348623157E308 and 1.7976931348623157E308)
{%- endmacro %}


{#-
    Timestamp text that carries a UTC offset or a zone after its time of day: "Z",
    "UTC", "+05:00", "+0530", "-05", "Europe/Berlin". A TIMESTAMPTZ column read as text
    always carries one.
-#}

{% macro has_utc_offset(text) -%}
    {{ return(adapter.dispatch("has_utc_offset", "xsell")(text)) }}
{%- endmacro %}

{% macro default__has_utc_offset(text) -%}
    regexp_matches({{ text }}, '{{ xsell.utc_offset_regex() }}')
{%- endmacro %}

{% macro spark__has_utc_offset(text) -%}
    ({{ text }} rlike '{{ xsell.utc_offset_regex() }}')
{%- endmacro %}

{% macro utc_offset_regex() -%}
    {{ return("[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?[ ]*([zZ]|UTC|GMT|[+-][0-9]{2}(:?[0-9]{2})?|[A-Za-z]+/[A-Za-z_]+(/[A-Za-z_]+)?)$") }}
{%- endmacro %}


{#-
    Local store time from timestamp text: text without an offset is read as it is;
    text with one is an instant, converted to the store_timezone() (null when none is
    set; the checks then say `<column>_needs_timezone`). The session's time zone (the
    build machine's) never enters: the offset in the text fixes the instant.
-#}
{% macro local_timestamp(text) -%}
    {{ return(adapter.dispatch("local_timestamp", "xsell")(text)) }}
{%- endmacro %}

{% macro default__local_timestamp(text) -%}
    {%- set zone = xsell.store_timezone() -%}
    case
        when {{ xsell.has_utc_offset(text) }} then
            {%- if zone is none %} null
            {%- else %} timezone('{{ zone | replace("'", "''") }}', try_cast({{ text }} as timestamptz))
            {%- endif %}
        else {{ xsell.try_cast(text, dbt.type_timestamp()) }}
    end
{%- endmacro %}

{#- Spark reads an offset in the text as an instant (session time zone UTC, profiles.yml). -#}
{% macro spark__local_timestamp(text) -%}
    {%- set zone = xsell.store_timezone() -%}
    case
        when {{ xsell.has_utc_offset(text) }} then
            {%- if zone is none %} null
            {%- else %} from_utc_timestamp(try_cast({{ text }} as timestamp), '{{ zone | replace("'", "''") }}')
            {%- endif %}
        else try_cast({{ text }} as timestamp)
    end
{%- endmacro %}
