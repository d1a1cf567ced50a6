-- Weekday x hour grid of the impulse rate, for a heatmap.
select
    sold_weekday,
    sold_hour,
    receipts,
    impulse_rate,
    impulse_rate_with_anchor,
    impulse_rate_without_anchor
from {{ ref('fct_impulse_by_hour') }}
order by sold_weekday, sold_hour
