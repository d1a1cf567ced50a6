{#-
    Every tunable number is a dbt var (dbt_project.yml). A value the models cannot honour
    stops the build before any model runs, with the var, its value and the limit, instead
    of being capped or ignored without a word. Called by on-run-start.
-#}
{% macro validate_vars() %}
    {%- set problems = [] -%}
    {#- [var, kind, low, high, the limit in words]; kinds: integer and number (>= low),
        positive (> low); high is inclusive -#}
    {%- set checks = [
        ["attach_window_minutes", "positive", 0, none, "minutes, more than 0"],
        ["incremental_lookback_days", "integer", 0, none, "whole days, 0 or more"],
        ["lift_min_count", "integer", 1, none, "receipts, 1 or more"],
        ["campaign_baseline_weeks", "integer", 1, none, "whole weeks, 1 or more"],
        ["affinity_min_count", "integer", 1, none, "receipts, 1 or more"],
        ["affinity_min_together", "integer", 1, none, "receipts, 1 or more"],
        ["affinity_top_k", "integer", 1, none, "neighbours, 1 or more"],
        ["min_support", "positive", 0, 1, "a share above 0 and at most 1"],
        ["product_min_support", "positive", 0, 1, "a share above 0 and at most 1"],
        ["min_confidence", "number", 0, 1, "a share from 0 to 1"],
        ["max_itemset_length", "integer", 1, none, "items, 1 or more"],
        ["rules_min_lift", "number", 0, none, "a lift, 0 (keep all) or more"],
        ["rules_min_count", "integer", 1, none, "receipts, 1 or more"],
        ["rules_min_confidence_gain", "number", -1, 1, "a gain from -1 (keep all) to 1"],
        ["rules_top_n_per_consequent", "integer", 0, none, "rules, 0 (no limit) or more"],
        ["large_price_quantile", "number", 0, 1, "a quantile from 0 to 1"],
        ["quarantine_share_warn", "number", 0, 1, "a share from 0 to 1"],
        ["quarantine_share_error", "number", 0, 1, "a share from 0 to 1"],
        ["clv_horizon_days", "integer", 1, none, "whole days, 1 or more"],
        ["clv_holdout_days", "integer", 1, none, "whole days, 1 or more"],
        ["clv_discount_rate_annual", "number", 0, none, "a rate, 0 or more"],
        ["clv_penalizer", "number", 0, none, "a penalty, 0 or more"],
        ["segment_k_min", "integer", 2, none, "clusters, 2 or more"],
        ["segment_k_max", "integer", 2, none, "clusters, 2 or more"],
        ["segment_silhouette_sample", "integer", 2, none, "customers, 2 or more"],
        ["segment_fit_sample", "integer", 2, none, "customers, 2 or more"],
        ["ml_holdout_days", "integer", 1, none, "whole days, 1 or more"],
        ["ml_max_train_rows", "integer", 1, none, "receipts, 1 or more"],
        ["ml_exclusive_rows", "integer", 0, none, "rows, 0 (never) or more"],
        ["addon_min_positives", "integer", 1, none, "receipts, 1 or more"],
        ["addon_promote_top_k", "integer", 1, none, "categories, 1 or more"],
        ["rec_top_n", "integer", 1, none, "products, 1 or more"],
        ["rec_validation_days", "integer", 1, none, "whole days, 1 or more"],
        ["rec_half_life_days", "positive", 0, none, "days, more than 0"],
        ["forecast_horizon_days", "integer", 1, none, "whole days, 1 or more"],
        ["forecast_backtest_origins", "integer", 1, none, "origins, 1 or more"],
        ["forecast_backtest_step_days", "integer", 1, none, "whole days, 1 or more"],
        ["forecast_level_half_life_days", "positive", 0, none, "days, more than 0"],
        ["forecast_min_history_days", "integer", 8, none, "whole days, 8 or more"],
        ["forecast_min_active_share", "number", 0, 1, "a share from 0 to 1"],
    ] -%}
    {%- for name, kind, low, high, words in checks -%}
        {%- set value = var(name) -%}
        {%- set text = value | string | trim -%}
        {%- set number = text | float(none) -%}
        {%- if number is none or (kind == "integer" and number != (number | int)) -%}
            {%- do problems.append(name ~ " = " ~ text ~ ": must be a "
                ~ ("whole " if kind == "integer" else "") ~ "number (" ~ words ~ ")") -%}
        {%- elif number < low or (kind == "positive" and number == low)
                or (high is not none and number > high) -%}
            {%- do problems.append(name ~ " = " ~ text ~ ": must be " ~ words) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if var("quarantine_share_warn") | float > var("quarantine_share_error") | float -%}
        {%- do problems.append("quarantine_share_warn = " ~ var("quarantine_share_warn")
            ~ " is above quarantine_share_error = " ~ var("quarantine_share_error")) -%}
    {%- endif -%}
    {%- if var("segment_k_max") | int < var("segment_k_min") | int -%}
        {%- do problems.append("segment_k_max = " ~ var("segment_k_max")
            ~ " is below segment_k_min = " ~ var("segment_k_min")) -%}
    {%- endif -%}
    {%- for name in ["rfm_as_of_date", "ml_cutoff_date"] -%}
        {%- set text = var(name, none) | string | trim -%}
        {%- if text | lower not in ("", "none", "null")
                and not modules.re.match("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", text) -%}
            {%- do problems.append(name ~ " = " ~ text ~ ": must be a date YYYY-MM-DD or null") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if problems -%}
        {{ exceptions.raise_compiler_error(
            "dbt vars the models cannot honour (set them in dbt_project.yml or with --vars):\n  - "
            ~ problems | join("\n  - ")
        ) }}
    {%- endif -%}
    select 1
{% endmacro %}
