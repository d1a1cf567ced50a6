-- Impulse-category attachment by hour of day, all weekdays together.
select
    sold_hour,
    sum(receipts) as receipts,
    sum(impulse_receipts) as impulse_receipts,
    cast(sum(impulse_receipts) as double) / sum(receipts) as impulse_rate
from {{ ref('fct_impulse_by_hour') }}
group by sold_hour
order by sold_hour
