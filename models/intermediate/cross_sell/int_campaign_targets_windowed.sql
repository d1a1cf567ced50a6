{#-
    Campaign targets with their campaign days: whole days from the start date to the
    day before the end date (ends_at is exclusive).
-#}
with

campaigns as (
    select * from {{ ref('stg_pos__campaigns') }}
),

final as (
    select
        campaign_target_id,
        campaign_id,
        campaign_name,
        target_category,
        target_product_id,
        discount_pct,
        cast(starts_at as date) as first_day,
        cast({{ dbt.dateadd("day", -1, "cast(ends_at as date)") }} as date) as last_day
    from campaigns
)

select * from final
