{#-
    One text key per receipt: receipt numbers are the store's own, so two stores may
    both have receipt 1. The key is the store id's length, the store id and the
    receipt number ("3:S01|1042"), so no two (store_id, receipt_id) pairs share a key
    whatever characters the ids hold. Intermediate models join and count receipts on
    it; marts and ML outputs show store_id and receipt_id as the retailer knows them.
-#}
{% macro receipt_key(store_id, receipt_id) -%}
    {{ dbt.concat([
        "cast(" ~ dbt.length(store_id) ~ " as " ~ dbt.type_string() ~ ")", "':'",
        store_id, "'|'", receipt_id,
    ]) }}
{%- endmacro %}
