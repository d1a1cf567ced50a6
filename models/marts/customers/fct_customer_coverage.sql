{#-
    How much of the business the customer marts see: purchase receipts and revenue
    of loyalty members against anonymous ones (no customer id, so excluded from every
    customer mart), per store and overall (store_id = 'ALL'), up to the as-of date.
-#}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
),

as_of as (
    {{ customer_value_as_of_date('receipts') }}
),

purchases as (
    select
        receipts.store_id,
        receipts.customer_id,
        receipts.is_member,
        receipts.revenue,
        as_of.as_of_date
    from receipts
    cross join as_of
    where receipts.is_purchase
        and receipts.sold_date <= as_of.as_of_date
),

by_store as (
    select
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        max(as_of_date) as as_of_date,
        count(*) as purchase_receipts,
        sum(case when is_member then 1 else 0 end) as member_purchase_receipts,
        sum(case when is_member then 0 else 1 end) as anonymous_purchase_receipts,
        sum(revenue) as revenue,
        sum(case when is_member then revenue when revenue is not null then 0 end)
            as member_revenue,
        sum(case when not is_member then revenue when revenue is not null then 0 end)
            as anonymous_revenue,
        count(distinct customer_id) as members
    from purchases
    group by store_id
),

overall as (
    select
        'ALL' as store_id,
        max(as_of_date) as as_of_date,
        count(*) as purchase_receipts,
        sum(case when is_member then 1 else 0 end) as member_purchase_receipts,
        sum(case when is_member then 0 else 1 end) as anonymous_purchase_receipts,
        sum(revenue) as revenue,
        sum(case when is_member then revenue when revenue is not null then 0 end)
            as member_revenue,
        sum(case when not is_member then revenue when revenue is not null then 0 end)
            as anonymous_revenue,
        count(distinct customer_id) as members
    from purchases
),

unioned as (
    select * from by_store
    union all
    select * from overall
),

final as (
    select
        cast(store_id as {{ dbt.type_string() }}) as store_id,
        as_of_date,
        cast(purchase_receipts as bigint) as purchase_receipts,
        cast(member_purchase_receipts as bigint) as member_purchase_receipts,
        cast(anonymous_purchase_receipts as bigint) as anonymous_purchase_receipts,
        cast(anonymous_purchase_receipts as double) / nullif(purchase_receipts, 0)
            as anonymous_receipt_share,
        cast(revenue as double) as revenue,
        cast(member_revenue as double) as member_revenue,
        cast(anonymous_revenue as double) as anonymous_revenue,
        cast(anonymous_revenue as double) / nullif(revenue, 0) as anonymous_revenue_share,
        cast(members as bigint) as members
    from unioned
)

select * from final
where {{ analysis_is_applicable('customer_coverage') }}
