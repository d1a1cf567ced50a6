-- Restaurant conversion of anchor shoppers by family against shoppers without an anchor.
select
    anchor_family,
    receipts,
    converted_receipts,
    conversion_rate,
    restaurant_revenue
from {{ ref('fct_restaurant_conversion') }}
where grain in ('family', 'group')
order by conversion_rate desc
