{#-
    The counts behind an attach rate, over anchor receipts (int_anchor_receipts_attached
    rows): additive, so a BI tool can sum them over days, stores or families and divide.
-#}
{% macro attach_counts() -%}
        count(*) as anchor_receipts,
        sum(case when has_addon then 1 else 0 end) as attached_receipts,
        sum(case when addon_line_count >= 2 then 1 else 0 end) as two_plus_addon_receipts,
        sum(addon_line_count) as addon_lines,
        sum(addon_lines_in_window) as addon_lines_in_window,
        sum(addon_revenue) as addon_revenue
{%- endmacro %}


{#- The counts as the marts publish them, with the rates they make. -#}
{% macro attach_rate_columns() -%}
        cast(anchor_receipts as bigint) as anchor_receipts,
        cast(attached_receipts as bigint) as attached_receipts,
        cast(attached_receipts as double) / anchor_receipts as attach_rate,
        cast(two_plus_addon_receipts as bigint) as two_plus_addon_receipts,
        cast(two_plus_addon_receipts as double) / anchor_receipts as two_plus_addon_rate,
        cast(addon_lines as bigint) as addon_lines,
        cast(addon_lines as double) / anchor_receipts as addon_lines_per_anchor_receipt,
        cast(addon_lines_in_window as bigint) as addon_lines_in_window,
        cast(addon_revenue as double) as addon_revenue,
        cast(addon_revenue as double) / anchor_receipts as addon_revenue_per_anchor_receipt
{%- endmacro %}


{#- The counts behind a restaurant conversion rate, over member purchase receipts. -#}
{% macro restaurant_counts() -%}
        count(*) as receipts,
        sum(case when has_restaurant_visit then 1 else 0 end) as converted_receipts,
        sum(restaurant_amount) as restaurant_revenue,
        -- exact: a sum of doubles differs in its last bits from build to build
        sum(cast(minutes_from_checkout as decimal(18, 6))) as total_minutes_from_checkout
{%- endmacro %}


{% macro restaurant_rate_columns() -%}
        cast(receipts as bigint) as receipts,
        cast(converted_receipts as bigint) as converted_receipts,
        cast(converted_receipts as double) / receipts as conversion_rate,
        cast(coalesce(restaurant_revenue, 0) as double) as restaurant_revenue,
        cast(total_minutes_from_checkout as double) as total_minutes_from_checkout,
        cast(total_minutes_from_checkout as double) / nullif(converted_receipts, 0)
            as avg_minutes_from_checkout
{%- endmacro %}
