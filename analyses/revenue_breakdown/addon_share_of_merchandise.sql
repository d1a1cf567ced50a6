-- Daily share of merchandise revenue (anchors + add-ons + other) that add-ons bring.
with daily as (
    select
        sold_date,
        sum(case when revenue_stream = 'ADDON' then revenue else 0 end) as addon_revenue,
        sum(case when revenue_stream in ('ANCHOR', 'ADDON', 'OTHER') then revenue else 0 end)
            as merchandise_revenue
    from {{ ref('fct_revenue_mix') }}
    group by sold_date
)

select
    sold_date,
    addon_revenue,
    merchandise_revenue,
    addon_revenue / nullif(merchandise_revenue, 0) as addon_share
from daily
order by sold_date
