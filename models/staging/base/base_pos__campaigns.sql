{#- Every raw campaign target row, cast and checked; see base_pos__transactions. -#}
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
    select {{ typed_and_raw_columns(columns) }}
    from source
),

row_checked as (
    select
        typed.*,
        case
            when campaign_id is null then 'missing_campaign_id'
            {{ missing_or_unparseable('starts_at') }}
            {{ out_of_range('starts_at') }}
            {{ missing_or_unparseable('ends_at') }}
            {{ out_of_range('ends_at') }}
            when ends_at <= starts_at then 'invalid_campaign_period'
            when target_category is null and target_product_id is null then 'missing_target'
            {{ missing_or_unparseable('discount_pct') }}
            when discount_pct <= 0 or discount_pct >= 100 then 'invalid_discount_pct'
        end as row_rejection_reason
    from typed
),

ranked as (
    select
        row_checked.*,
        row_number() over (
            partition by
                campaign_id, upper(target_category), target_product_id,
                row_rejection_reason is null
            order by {{ raw_column_list(columns) }}
        ) as key_rank,
        -- Identifies the raw row: identical rows are interchangeable, so ordering by
        -- every raw value numbers them deterministically.
        row_number() over (order by {{ raw_column_list(columns) }}) as raw_row_id
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
