-- Restaurant conversion by anchor family against shoppers without an anchor, over all
-- stores (numerators and denominators summed, not averaged).
select
    anchor_family,
    sum(receipts) as receipts,
    sum(converted_receipts) as converted_receipts,
    cast(sum(converted_receipts) as double) / sum(receipts) as conversion_rate,
    sum(restaurant_revenue) as restaurant_revenue
from {{ ref('fct_restaurant_conversion') }}
group by anchor_family
order by conversion_rate desc, anchor_family asc
