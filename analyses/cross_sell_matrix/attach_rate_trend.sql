-- Weekly attach rate per anchor family (numerator and denominator summed, not averaged).
select
    {{ dbt.date_trunc("week", "sold_date") }} as sold_week,
    anchor_family,
    sum(attached_receipts) as attached_receipts,
    sum(anchor_receipts) as anchor_receipts,
    cast(sum(attached_receipts) as double) / sum(anchor_receipts) as attach_rate
from {{ ref('fct_attach_rates_daily') }}
group by 1, 2
order by 1, 2
