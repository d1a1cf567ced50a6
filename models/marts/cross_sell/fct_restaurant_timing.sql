{#-
    When converted member shoppers eat, relative to checkout (negative = before), in
    buckets, for anchor shoppers and the rest: {{ doc("restaurant_conversion") }}
-#}
with

matched as (
    select * from {{ ref('int_receipts_restaurant_matched') }}
    where has_restaurant_visit
),

bucketed as (
    select
        case when has_anchor then 'ANY_ANCHOR' else 'NO_ANCHOR' end as shopper_group,
        case
            when minutes_from_checkout < -180 then 1
            when minutes_from_checkout < -120 then 2
            when minutes_from_checkout < -60 then 3
            when minutes_from_checkout < -30 then 4
            when minutes_from_checkout < 0 then 5
            when minutes_from_checkout < 30 then 6
            when minutes_from_checkout < 60 then 7
            when minutes_from_checkout < 120 then 8
            when minutes_from_checkout <= 180 then 9
            else 10
        end as bucket_order,
        restaurant_amount
    from matched
),

buckets as (
    select
        shopper_group,
        bucket_order,
        count(*) as visits,
        sum(restaurant_amount) as restaurant_revenue
    from bucketed
    group by shopper_group, bucket_order
),

final as (
    select
        cast(shopper_group as {{ dbt.type_string() }}) as shopper_group,
        cast(bucket_order as integer) as bucket_order,
        cast(case bucket_order
            when 1 then 'more than 180 min before'
            when 2 then '120-180 min before'
            when 3 then '60-120 min before'
            when 4 then '30-60 min before'
            when 5 then 'under 30 min before'
            when 6 then 'under 30 min after'
            when 7 then '30-60 min after'
            when 8 then '60-120 min after'
            when 9 then '120-180 min after'
            else 'more than 180 min after'
        end as {{ dbt.type_string() }}) as timing_bucket,
        cast(visits as bigint) as visits,
        cast(visits as double) / sum(visits) over (partition by shopper_group) as visit_share,
        cast(restaurant_revenue as double) as restaurant_revenue
    from buckets
)

select * from final
where {{ analysis_is_applicable('restaurant_timing') }}
