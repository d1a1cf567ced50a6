with

checked as (
    select * from {{ ref('base_pos__campaigns') }}
),

final as (
    select
        {{ dbt.concat([
            "campaign_id", "'|'",
            "coalesce(upper(target_category), '*')", "'|'",
            "coalesce(target_product_id, '*')",
        ]) }} as campaign_target_id,
        campaign_id,
        campaign_name,
        starts_at,
        ends_at,
        upper(target_category) as target_category,
        target_product_id,
        discount_pct
    from checked
    where rejection_reason is null
)

select * from final
