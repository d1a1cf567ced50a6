{#-
    Every raw campaign target row, cast and checked; see base_pos__transactions. A
    campaign may be planned ahead: its dates may run up to a year past the last
    plausible day of the other tables (raw_valid_until).
-#}
{%- set campaign_days_ahead = 366 -%}
{%- set columns = {
    "campaign_id": "text",
    "campaign_name": "text",
    "starts_at": dbt.type_timestamp(),
    "ends_at": dbt.type_timestamp(),
    "target_category": "text",
    "target_product_id": "text",
    "discount_pct": "double",
} -%}

with

source as (
    {{ raw_source('pos', 'campaigns') }}
),

typed as (
    select
        raw_row_number as raw_row_id,
        {{ typed_and_raw_columns(columns) }}
    from source
),

row_checked as (
    select
        typed.*,
        case
            when campaign_id is null then 'missing_campaign_id'
            {{ required_value('starts_at', columns, days_ahead=campaign_days_ahead) }}
            {{ required_value('ends_at', columns, days_ahead=campaign_days_ahead) }}
            when ends_at <= starts_at then 'invalid_campaign_period'
            when target_category is null and target_product_id is null then 'missing_target'
            {{ required_value('discount_pct', columns) }}
            when discount_pct <= 0 or discount_pct >= 100 then 'invalid_discount_pct'
        end as row_rejection_reason
    from typed
),

-- The first row of a campaign target in the raw file is kept; later ones are duplicates.
ranked as (
    select
        row_checked.*,
        row_number() over (
            partition by
                campaign_id, upper(target_category), target_product_id,
                row_rejection_reason is null
            order by raw_row_id
        ) as key_rank
    from row_checked
),

final as (
    select
        raw_row_id,
        {{ checked_columns(columns) }},
        case
            when row_rejection_reason is not null then row_rejection_reason
            when key_rank > 1 then 'duplicate_campaign_target'
        end as rejection_reason
    from ranked
)

select * from final
