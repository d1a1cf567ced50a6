{#-
    Comments persisted for BI tools (persist_docs) are plain text, a sentence or three:
    a tool shows them in a tooltip, where Markdown stays raw and a page of explanation
    is noise. The dbt docs keep the full description; the comment stored in the file is
    its first paragraph without Markdown, cut after three sentences (at most 400
    characters).
-#}
{% macro bi_comment(text) -%}
    {%- set re = modules.re -%}
    {%- set text = (text or "") | string -%}
    {%- set paragraph = re.split("\n\s*\n", text.strip())[0] -%}
    {#- [label](link) -> label; `code`, **bold**, __bold__, *emphasis* -> their text -#}
    {%- set plain = re.sub("\[([^\]]*)\]\([^)]*\)", "\\1", paragraph) -%}
    {%- set plain = plain | replace("`", "") | replace("**", "") | replace("__", " ") -%}
    {%- set plain = re.sub("(^|\s)\*(\S[^*]*\S|\S)\*", "\\1\\2", plain) -%}
    {%- set plain = re.sub("^\s*#+\s*", "", plain) -%}
    {%- set plain = re.sub("\s+", " ", plain).strip() -%}
    {%- set sentences = re.split("(?<=[.!?])\s+(?=[A-Z0-9])", plain) -%}
    {%- set short = sentences[:3] | join(" ") -%}
    {%- if short | length > 400 -%}
        {%- set short = short[:397].rsplit(" ", 1)[0] ~ "..." -%}
    {%- endif -%}
    {{ return(short) }}
{%- endmacro %}


{% macro duckdb__alter_relation_comment(relation, comment) %}
    comment on {{ relation.type }} {{ relation }} is {{ duckdb_escape_comment(xsell.bi_comment(comment)) }};
{% endmacro %}


{% macro duckdb__alter_column_comment(relation, column_dict) %}
    {% set existing_columns = adapter.get_columns_in_relation(relation) | map(attribute="name") | list %}
    {% for column_name in column_dict if (column_name in existing_columns) %}
        {% set comment = xsell.bi_comment(column_dict[column_name]['description']) %}
        comment on column {{ relation }}.{{ adapter.quote(column_name) if column_dict[column_name]['quote'] else column_name }} is {{ duckdb_escape_comment(comment) }};
    {% endfor %}
{% endmacro %}
