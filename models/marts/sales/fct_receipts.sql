{#-
    The receipt fact of the star schema: one row per receipt (purchases and receipts
    that only return goods), keyed by store_id and receipt_id (receipt numbers are a
    store's own) and by receipt_key, the two as one text key. Besides the basket's
    counts and money it carries the flags the cross-sell metrics count: an anchor on
    the receipt, an add-on in its attach set (on the receipt or, for a member, on
    another of their receipts in the same store within the attach window), and, for
    member purchases, a restaurant visit the same day in the same store.

    Nothing is invented: money is null when the data has no prices, and
    has_restaurant_visit is null where it cannot be known (anonymous receipts, receipts
    without a purchase, or restaurant conversion not applicable to the data).

    Incremental like int_receipts_aggregated (DuckDB: delete+insert; Spark: a table). A
    run recomputes the receipts with a line from the last loaded day minus
    incremental_lookback_days, and from the days before it that the attach window
    reaches (var attach_window_minutes), so a receipt whose window partner arrives in
    the new load is recomputed too. A restaurant order that arrives for a day before
    that needs `dbt build --full-refresh` (tests/incremental/star_facts_match_sources.sql
    says so).
-#}
{{
    config(
        materialized=("table" if target.type == "spark" else "incremental"),
        incremental_strategy="delete+insert",
        unique_key="receipt_key",
        on_schema_change="fail",
    )
}}
-- depends_on: {{ ref('int_transaction_lines_enriched') }}

with

all_receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
),

{%- if is_incremental() %}

{%- set window_days = ((var("attach_window_minutes") | int) + 1439) // 1440 %}

reloaded as (
    select distinct receipt_key
    from {{ ref('int_transaction_lines_enriched') }}
    where sold_date >= {{ dbt.dateadd(
        "day", -1 * window_days,
        incremental_reload_from("select max(sold_date) from " ~ this),
    ) }}
),

receipts as (
    select all_receipts.*
    from all_receipts
    inner join reloaded
        on all_receipts.receipt_key = reloaded.receipt_key
),

{%- else %}

receipts as (
    select * from all_receipts
),

{%- endif %}

attached as (
    select * from {{ ref('int_receipt_categories_attached') }}
),

restaurant as (
    select * from {{ ref('int_receipts_restaurant_matched') }}
),

profile as (
    select * from {{ ref('int_data_profiled') }}
),

restaurant_coverage as (
    select count(*) > 0 as is_applicable
    from profile
    where {{ analysis_is_applicable('restaurant_conversion') }}
),

-- The attach set of a purchase receipt: does it hold an add-on (own or window line)?
attach_sets as (
    select
        receipt_key,
        max(case when own_addon_lines + window_addon_lines > 0 then 1 else 0 end) = 1
            as has_addon_attached
    from attached
    group by receipt_key
),

final as (
    select
        {{ receipt_key('receipts.store_id', 'receipts.receipt_id') }} as receipt_key,
        cast(receipts.store_id as {{ dbt.type_string() }}) as store_id,
        cast(receipts.receipt_id as {{ dbt.type_string() }}) as receipt_id,
        cast(receipts.customer_id as {{ dbt.type_string() }}) as customer_id,
        receipts.is_member,
        receipts.sold_at,
        receipts.sold_date,
        cast(receipts.sold_hour as integer) as sold_hour,
        receipts.is_purchase,
        cast(receipts.line_count as bigint) as line_count,
        cast(receipts.item_count as bigint) as item_count,
        cast(receipts.anchor_line_count as bigint) as anchor_line_count,
        cast(receipts.addon_line_count as bigint) as addon_line_count,
        cast(receipts.impulse_line_count as bigint) as impulse_line_count,
        receipts.has_anchor,
        cast(receipts.anchor_families as {{ dbt.type_string() }}) as anchor_families,
        cast(receipts.addon_categories as {{ dbt.type_string() }}) as addon_categories,
        receipts.is_purchase and coalesce(attach_sets.has_addon_attached, false)
            as has_addon_attached,
        case
            when restaurant_coverage.is_applicable then restaurant.has_restaurant_visit
        end as has_restaurant_visit,
        case
            when restaurant_coverage.is_applicable and restaurant.has_restaurant_visit
                then cast(restaurant.restaurant_amount as double)
        end as restaurant_amount,
        case when profile.priced_line_count > 0 then cast(receipts.revenue as double) end
            as revenue,
        case when profile.priced_line_count > 0 then cast(receipts.anchor_revenue as double) end
            as anchor_revenue,
        case when profile.priced_line_count > 0 then cast(receipts.addon_revenue as double) end
            as addon_revenue,
        case when profile.priced_line_count > 0 then cast(receipts.returned_revenue as double) end
            as returned_revenue,
        case when profile.priced_line_count > 0 then cast(receipts.net_revenue as double) end
            as net_revenue,
        case when profile.priced_line_count > 0 then cast(receipts.margin as double) end
            as margin,
        receipts.has_unknown_cost
    from receipts
    cross join profile
    cross join restaurant_coverage
    left join attach_sets
        on receipts.receipt_key = attach_sets.receipt_key
    left join restaurant
        on receipts.receipt_key = restaurant.receipt_key
)

select * from final
