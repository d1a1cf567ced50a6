{#-
    What every analysis needs from the data, defined once. int_analyses_assessed
    evaluates the rules on int_data_profiled (one row of counts, alias `p`); the
    models of an analysis return no rows when it is not applicable
    (`analysis_is_applicable`), and fct_analysis_coverage publishes the result.

    Each analysis:
      analysis    key, also used by the models and the quality gate
      title       a heading a retailer reads
      area        cross_sell | customers | ml | forecasting
      tables      the tables it fills (schema.table); the first one's rows are its row
                  count (`where` restricts them for analyses sharing a table)
      python      true when its tables are dbt Python models (off with var python_models)
      needs       [condition, reason] pairs, in order: the first condition that is false
                  makes the analysis not applicable, and its reason is published.
                  Conditions are SQL on `p`; reasons are SQL text expressions.
      notes       [condition, note] pairs: what limits an analysis that ran
      empty       the reason when it ran and produced no rows (SQL text expression;
                  default: it found nothing to report)
-#}
{% macro analysis_rules() %}
    {%- set holdout = var("ml_holdout_days") | int -%}
    {%- set validation = var("rec_validation_days") | int -%}
    {%- set clv_holdout = var("clv_holdout_days") | int -%}
    {%- set k_min = var("segment_k_min") | int -%}

    {%- set sales = ["p.purchase_receipt_count > 0", "'there are no purchases in the data'"] -%}
    {%- set anchors = [
        "p.anchor_product_count > 0",
        "'no product is an anchor: no product is LARGE (give products a size_class, a "
        ~ "category the seed category_attributes knows, or prices to derive it from)'",
    ] -%}
    {%- set addons = [
        "p.addon_product_count > 0",
        "'every product is an anchor (LARGE): there are no add-ons (SMALL products) to attach'",
    ] -%}
    {%- set anchor_sales = ["p.anchor_receipt_count > 0", "'no purchase holds an anchor product'"] -%}
    {%- set members = [
        "p.member_purchase_receipt_count > 0",
        "'no purchase belongs to a loyalty member: every receipt is anonymous'",
    ] -%}
    {%- set repeat = [
        "p.repeat_member_count > 0",
        "'no loyalty member bought on two different days, so there is no repeat buying to "
        ~ "learn from'",
    ] -%}
    {%- set prices = [
        "p.priced_line_count > 0",
        "'the data has no prices (unit_price is empty on every line)'",
    ] -%}
    {%- set times = [
        "p.timed_line_count > 0",
        "'the data has dates but no times of day (every sale is at 00:00)'",
    ] -%}
    {%- set restaurant = [
        "p.restaurant_order_count > 0",
        "'there is no restaurant data (restaurant_orders is absent or empty)'",
    ] -%}
    {%- set restaurant_members = [
        "p.member_restaurant_order_count > 0",
        "'no restaurant order carries a loyalty id, so restaurant visits cannot be linked "
        ~ "to shopping trips'",
    ] -%}
    {%- set campaigns = [
        "p.campaign_count > 0", "'there is no campaign data (campaigns is absent or empty)'",
    ] -%}
    {%- set impulse = [
        "p.impulse_product_count > 0",
        "'no product is in an impulse category: impulse buying is measured on the categories "
        ~ "marked is_impulse in seeds/category_attributes.csv; add your impulse categories "
        ~ "there, named as your products'' categories are'",
    ] -%}
    {%- set ml_history = [
        "p.history_days > " ~ holdout,
        xsell.coverage_text([
            "'the data covers '", xsell.coverage_count("p.history_days", "day", "days"),
            "', not more than the " ~ holdout ~ "-day holdout the models are evaluated "
            ~ "on (var ml_holdout_days)'",
        ]),
    ] -%}
    {#- the recommender lists popular and bought-again products on any history; it learns
        its ranker's weights and is evaluated only on a longer one -#}
    {%- set rec_short_history = [
        "p.history_days <= " ~ (holdout + validation),
        xsell.coverage_text([
            "'the data covers '", xsell.coverage_count("p.history_days", "day", "days"),
            "case when p.history_days <= " ~ holdout ~ " then ': the lists are ranked by "
            ~ "popularity and are not evaluated on a holdout (var ml_holdout_days)' else ': "
            ~ "the lists are ranked by popularity, no ranker is learnt (vars ml_holdout_days, "
            ~ "rec_validation_days)' end",
        ]),
    ] -%}
    {%- set clv_history = [
        "p.history_days > " ~ clv_holdout,
        xsell.coverage_text([
            "'the data covers '", xsell.coverage_count("p.history_days", "day", "days"),
            "', not more than the " ~ clv_holdout ~ "-day holdout of the lifetime-value "
            ~ "evaluation (var clv_holdout_days)'",
        ]),
    ] -%}
    {%- set no_times_note = [
        "p.timed_line_count = 0",
        "'no times of day: receipts of one member on one day count as 0 minutes apart'",
    ] -%}
    {%- set no_prices_note = [
        "p.priced_line_count = 0",
        "'no prices: counts only, revenue columns are empty'",
    ] -%}

    {{ return([
        {"analysis": "attach_rates", "title": "Attach rates", "area": "cross_sell",
         "tables": ["marts.fct_attach_rates_daily", "marts.fct_attach_rates",
                    "marts.fct_attach_rates_overall"],
         "needs": [sales, anchors, addons, anchor_sales], "notes": [no_times_note, no_prices_note]},
        {"analysis": "addon_lift", "title": "Anchor x add-on lift", "area": "cross_sell",
         "tables": ["marts.fct_addon_lift"],
         "needs": [sales, anchors, addons, anchor_sales], "notes": [no_times_note]},
        {"analysis": "restaurant_conversion", "title": "Restaurant conversion",
         "area": "cross_sell",
         "tables": ["marts.fct_restaurant_conversion_daily", "marts.fct_restaurant_conversion",
                    "marts.fct_restaurant_conversion_by_group"],
         "needs": [sales, restaurant, members, restaurant_members]},
        {"analysis": "restaurant_timing", "title": "Restaurant visit timing",
         "area": "cross_sell", "tables": ["marts.fct_restaurant_timing"],
         "needs": [sales, restaurant, members, restaurant_members, times],
         "empty": "'no member purchase was matched to a restaurant visit of the same member "
                  ~ "in the same store on the same day'"},
        {"analysis": "promotion_uplift", "title": "Promotion uplift", "area": "cross_sell",
         "tables": ["marts.fct_promotion_uplift"], "needs": [sales, campaigns],
         "empty": "'no campaign had receipts both during the campaign and on the baseline days'"},
        {"analysis": "association_rules_product", "title": "Association rules (products)",
         "area": "cross_sell", "python": true,
         "tables": ["marts.fct_association_rules", "marts.fct_frequent_itemsets"],
         "where": "item_level = 'product'", "needs": [sales],
         "notes": [xsell.itemset_length_note("product")],
         "empty": xsell.rules_empty_note("product", "product_min_support")},
        {"analysis": "association_rules_category", "title": "Association rules (categories)",
         "area": "cross_sell", "python": true,
         "tables": ["marts.fct_association_rules", "marts.fct_frequent_itemsets"],
         "where": "item_level = 'category'", "needs": [sales],
         "notes": [xsell.itemset_length_note("category")],
         "empty": xsell.rules_empty_note("category", "min_support")},
        {"analysis": "product_affinity", "title": "Product affinity", "area": "cross_sell",
         "tables": ["marts.fct_product_affinity"], "needs": [sales],
         "empty": "'no two products were bought together often enough (vars affinity_min_count, "
                  ~ "affinity_min_together)'"},
        {"analysis": "impulse_by_hour", "title": "Impulse buying by hour", "area": "cross_sell",
         "tables": ["marts.fct_impulse_by_hour"], "needs": [sales, times, impulse]},
        {"analysis": "revenue_mix", "title": "Revenue mix", "area": "cross_sell",
         "tables": ["marts.fct_revenue_mix"], "needs": [sales, prices]},
        {"analysis": "customer_coverage", "title": "Members and anonymous shoppers",
         "area": "customers", "tables": ["marts.fct_customer_coverage"], "needs": [sales],
         "notes": [no_prices_note]},
        {"analysis": "customer_profiles", "title": "Customer profiles", "area": "customers",
         "tables": ["marts.dim_customers"],
         "needs": [["p.member_count > 0 or p.profile_count > 0",
                    "'there are no loyalty members: no purchase carries a customer id and "
                    ~ "there is no customers table'"]]},
        {"analysis": "rfm", "title": "RFM segments", "area": "customers",
         "tables": ["marts.fct_customer_rfm"], "needs": [sales, members],
         "notes": [["p.priced_line_count = 0",
                    "'no prices: no monetary score; segments use recency and frequency'"]]},
        {"analysis": "cohort_retention", "title": "Cohort retention", "area": "customers",
         "tables": ["marts.fct_cohort_retention"], "needs": [sales, members],
         "notes": [no_prices_note]},
        {"analysis": "revenue_at_risk", "title": "Revenue at risk", "area": "customers",
         "tables": ["marts.fct_revenue_at_risk"], "needs": [sales, members, prices]},
        {"analysis": "customer_lifetime_value", "title": "Customer lifetime value (BG/NBD)",
         "area": "customers", "python": true,
         "tables": ["ml.ml_customer_lifetime_value", "ml.ml_clv_parameters"],
         "needs": [sales, members, repeat],
         "notes": [["p.priced_line_count = 0",
                    "'no prices: expected purchases only, no spend or value'"]],
         "empty": xsell.clv_fit_failure()},
        {"analysis": "clv_holdout", "title": "Lifetime value holdout evaluation",
         "area": "customers", "python": true, "tables": ["ml.ml_clv_metrics"],
         "needs": [sales, members, repeat, clv_history],
         "empty": "'the holdout evaluation found no customer to evaluate (no member bought "
                  ~ "both before and during the holdout)'"},
        {"analysis": "customer_segments", "title": "Customer segments (KMeans)",
         "area": "customers", "python": true,
         "tables": ["ml.ml_customer_segments", "ml.ml_segment_selection"],
         "needs": [sales, members,
                   ["p.member_count > " ~ k_min,
                    xsell.coverage_text([
                        "'the data has '",
                        xsell.coverage_count("p.member_count", "member", "members"),
                        "' with a purchase; segmentation needs more than " ~ k_min
                        ~ " (var segment_k_min)'"])]],
         "empty": "'no number of segments separated the members (every k tried gave one "
                  ~ "cluster)'"},
        {"analysis": "restaurant_propensity", "title": "Restaurant propensity model",
         "area": "ml", "python": true,
         "tables": ["ml.ml_restaurant_propensity", "ml.ml_restaurant_calibration",
                    "ml.ml_restaurant_propensity_metrics"],
         "needs": [sales, restaurant, members, restaurant_members, ml_history],
         "empty": "'the training days hold no restaurant visit, or only visits, so there is "
                  ~ "nothing to learn'"},
        {"analysis": "addon_propensity", "title": "Add-on propensity model", "area": "ml",
         "python": true,
         "tables": ["ml.ml_addon_propensity", "ml.ml_addon_recommendations_by_family",
                    "ml.ml_addon_propensity_metrics"],
         "needs": [sales, anchors, addons, anchor_sales, ml_history],
         "empty": "'no add-on category had enough anchor receipts with and without it in the "
                  ~ "training days (var addon_min_positives)'"},
        {"analysis": "recommendations", "title": "Product recommendations", "area": "ml",
         "python": true,
         "tables": ["ml.ml_recommendations", "ml.ml_recommendations_metrics"],
         "needs": [sales, members],
         "notes": [rec_short_history]},
        {"analysis": "recommendations_by_anchor", "title": "Complete-the-room add-ons",
         "area": "ml", "python": true, "tables": ["ml.ml_recommendations_by_anchor"],
         "needs": [sales, anchors, addons, anchor_sales]},
    ]) }}
{% endmacro %}


{#- "1 day" / "14 days": a count with its noun, as SQL text. -#}
{% macro coverage_count(expression, singular, plural) -%}
    {{ return("(case when " ~ expression ~ " = 1 then '1 " ~ singular ~ "' else cast("
              ~ expression ~ " as " ~ dbt.type_string() ~ ") || ' " ~ plural ~ "' end)") }}
{%- endmacro %}


{#- A SQL text expression joining text literals and values (numbers cast to text). -#}
{% macro coverage_text(parts) -%}
    {%- set casted = [] -%}
    {%- for part in parts -%}
        {%- do casted.append(part if part.startswith("'") else
                             "cast(" ~ part ~ " as " ~ dbt.type_string() ~ ")") -%}
    {%- endfor -%}
    {{ return("(" ~ casted | join(" || ") ~ ")") }}
{%- endmacro %}


{#-
    Note of the rule mining at one item level when its longest frequent itemset has
    max_itemset_length items: the miner stopped there, and longer frequent itemsets may
    exist. Evaluated in fct_analysis_coverage, where `outputs` holds the mined lengths.
-#}
{% macro itemset_length_note(level) -%}
    {%- set max_length = var("max_itemset_length") | int -%}
    {{ return([
        "coalesce((select max(itemset_length) from outputs_itemsets where item_level = '"
        ~ level ~ "'), 0) >= " ~ max_length,
        "'itemsets reached the maximum length of " ~ max_length ~ " items (var "
        ~ "max_itemset_length): longer frequent itemsets were not mined'",
    ]) }}
{%- endmacro %}


{#-
    Why an item level has no association rule: every product in one category (the
    category level has no pairs), no two items reached the minimum support
    together (no itemset of two), or the rules there all fell below min_confidence or
    were pruned (fct_association_rules keeps only what the rules_* vars allow).
-#}
{% macro rules_empty_note(level, support_var) -%}
    {%- set items = "products" if level == "product" else "categories" -%}
    {{ return(
        "case when " ~ ("p.merchandise_category_count < 2 then "
        ~ "'every product is in one category, so there are no category pairs (map a category "
        ~ "column to mine rules between categories)' when " if level == "category" else "")
        ~ "coalesce((select max(itemset_length) from outputs_itemsets where "
        ~ "item_level = '" ~ level ~ "'), 0) < 2 then 'no two " ~ items ~ " were bought "
        ~ "together on enough receipts (var " ~ support_var ~ ")' else 'no rule had the "
        ~ "confidence (var min_confidence), lift and receipts (vars rules_min_lift, "
        ~ "rules_min_count) to be kept' end"
    ) }}
{%- endmacro %}


{#- Why the lifetime-value model has no rows although members bought twice: its fit. -#}
{% macro clv_fit_failure() -%}
    {{ return(
        "coalesce((select case when not bgnbd_converged then "
        ~ "'the BG/NBD model did not converge on the purchase days of ' || cast("
        ~ "bgnbd_customers as " ~ dbt.type_string() ~ ") || ' members: too little repeat "
        ~ "buying to estimate it' "
        ~ "else 'the BG/NBD model gave parameters (r, alpha, a, b) for which the expected "
        ~ "purchases cannot be computed: too little repeat buying to estimate it' end "
        ~ "from outputs_clv_fit), 'the lifetime-value model produced no rows')"
    ) }}
{%- endmacro %}


{#-
    A SQL condition, true when the analysis can run on the data (int_analyses_assessed):
    models add it to their final where clause so that an analysis the data cannot
    support gives an empty table rather than noise.
-#}
{% macro analysis_is_applicable(analysis) -%}
    exists (
        select 1 from {{ ref('int_analyses_assessed') }} as assessed
        where assessed.analysis = '{{ analysis }}' and assessed.is_applicable
    )
{%- endmacro %}
