-- When converted shoppers eat relative to checkout.
select
    shopper_group,
    timing_bucket,
    visits,
    visit_share
from {{ ref('fct_restaurant_timing') }}
order by shopper_group, bucket_order
