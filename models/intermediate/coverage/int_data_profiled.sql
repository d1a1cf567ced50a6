{#-
    One row: what the staged data holds, as counts. Every analysis needs some of it
    (members, repeat buyers, prices, anchors, times of day, restaurant or campaign
    data, enough history); int_analyses_assessed turns these counts into which
    analyses can run and, for the others, why not.
-#}
with

lines as (
    select * from {{ ref('stg_pos__transactions') }}
),

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
),

products as (
    select * from {{ ref('int_products_classified') }}
),

customer_days as (
    select * from {{ ref('int_customer_days_aggregated') }}
),

profiles as (
    select * from {{ ref('stg_pos__customers') }}
),

restaurant_orders as (
    select * from {{ ref('stg_pos__restaurant_orders') }}
),

campaigns as (
    select * from {{ ref('stg_pos__campaigns') }}
),

line_counts as (
    select
        count(*) as line_count,
        count(unit_price) as priced_line_count,
        -- a sale at exactly midnight is a date without a time of day
        sum(
            case when sold_at <> cast(cast(sold_at as date) as {{ dbt.type_timestamp() }})
                then 1 else 0 end
        ) as timed_line_count,
        count(distinct store_id) as store_count,
        min(sold_date) as first_sold_date,
        max(sold_date) as last_sold_date
    from lines
),

receipt_counts as (
    select
        count(*) as receipt_count,
        sum(case when is_purchase then 1 else 0 end) as purchase_receipt_count,
        sum(case when is_purchase and is_member then 1 else 0 end)
            as member_purchase_receipt_count,
        sum(case when is_purchase and has_anchor then 1 else 0 end) as anchor_receipt_count,
        sum(case when is_purchase and impulse_line_count > 0 then 1 else 0 end)
            as impulse_receipt_count,
        count(distinct case when is_purchase then customer_id end) as member_count
    from receipts
),

repeat_members as (
    select count(*) as repeat_member_count
    from (
        select customers.customer_id
        from customer_days as customers
        group by customers.customer_id
        having count(*) >= 2
    ) as repeaters
),

profile_counts as (
    select count(*) as profile_count from profiles
),

restaurant_counts as (
    select
        count(*) as restaurant_order_count,
        count(restaurant_orders.customer_id) as member_restaurant_order_count
    from restaurant_orders
),

campaign_counts as (
    select count(distinct campaigns.campaign_id) as campaign_count from campaigns
),

product_counts as (
    select
        count(*) as product_count,
        sum(case when is_merchandise then 1 else 0 end) as merchandise_product_count,
        sum(case when is_anchor then 1 else 0 end) as anchor_product_count,
        sum(case when is_addon then 1 else 0 end) as addon_product_count,
        sum(case when is_merchandise and is_impulse then 1 else 0 end) as impulse_product_count,
        count(distinct case when is_merchandise then category end) as merchandise_category_count,
        count(unit_cost) as costed_product_count
    from products
),

final as (
    select
        cast(line_counts.line_count as bigint) as line_count,
        cast(line_counts.priced_line_count as bigint) as priced_line_count,
        cast(coalesce(line_counts.timed_line_count, 0) as bigint) as timed_line_count,
        cast(line_counts.store_count as bigint) as store_count,
        line_counts.first_sold_date,
        line_counts.last_sold_date,
        cast(coalesce(
            {{ dbt.datediff("line_counts.first_sold_date", "line_counts.last_sold_date", "day") }}
            + 1,
            0
        ) as bigint) as history_days,
        cast(receipt_counts.receipt_count as bigint) as receipt_count,
        cast(coalesce(receipt_counts.purchase_receipt_count, 0) as bigint)
            as purchase_receipt_count,
        cast(coalesce(receipt_counts.member_purchase_receipt_count, 0) as bigint)
            as member_purchase_receipt_count,
        cast(coalesce(receipt_counts.anchor_receipt_count, 0) as bigint) as anchor_receipt_count,
        cast(coalesce(receipt_counts.impulse_receipt_count, 0) as bigint)
            as impulse_receipt_count,
        cast(receipt_counts.member_count as bigint) as member_count,
        cast(repeat_members.repeat_member_count as bigint) as repeat_member_count,
        cast(profile_counts.profile_count as bigint) as profile_count,
        cast(product_counts.product_count as bigint) as product_count,
        cast(coalesce(product_counts.merchandise_product_count, 0) as bigint)
            as merchandise_product_count,
        cast(coalesce(product_counts.anchor_product_count, 0) as bigint) as anchor_product_count,
        cast(coalesce(product_counts.addon_product_count, 0) as bigint) as addon_product_count,
        cast(coalesce(product_counts.impulse_product_count, 0) as bigint)
            as impulse_product_count,
        cast(coalesce(product_counts.merchandise_category_count, 0) as bigint)
            as merchandise_category_count,
        cast(product_counts.costed_product_count as bigint) as costed_product_count,
        cast(restaurant_counts.restaurant_order_count as bigint) as restaurant_order_count,
        cast(restaurant_counts.member_restaurant_order_count as bigint)
            as member_restaurant_order_count,
        cast(campaign_counts.campaign_count as bigint) as campaign_count
    from line_counts
    cross join receipt_counts
    cross join product_counts
    cross join repeat_members
    cross join profile_counts
    cross join restaurant_counts
    cross join campaign_counts
)

select * from final
