-- Revenue and margin per month and stream (anchors, add-ons, restaurant, other, returns).
select
    {{ dbt.date_trunc("month", "sold_date") }} as sold_month,
    revenue_stream,
    sum(revenue) as revenue,
    sum(margin) as margin,
    sum(margin) / nullif(sum(case when margin is not null then revenue end), 0) as margin_rate
from {{ ref('fct_revenue_mix') }}
group by 1, 2
order by 1, 2
