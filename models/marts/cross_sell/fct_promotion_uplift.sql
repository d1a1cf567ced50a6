{#-
    Per campaign target: how often purchase receipts contain the target (a category
    or a product) during the campaign against a matched baseline, with units and
    revenue per day. Baseline days: the campaign's weekdays within
    campaign_baseline_weeks before and after it, outside any campaign on the same
    target. uplift = share during / share in baseline - 1, with the 95% log (Katz)
    interval of a ratio of two independent proportions. Campaign days are whole days
    from the start date to the day before the end date (ends_at is exclusive). A
    campaign without receipts on baseline days is left out: nothing to compare with.
-#}
{%- set baseline_days = 7 * var("campaign_baseline_weeks") %}

with

campaign_windows as (
    select * from {{ ref('int_campaign_targets_windowed') }}
),

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
    where is_purchase
),

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
    where quantity > 0
),

daily_receipts as (
    select
        sold_date,
        {{ iso_weekday("sold_date") }} as sold_weekday,
        count(*) as receipts
    from receipts
    group by sold_date
),

classified_days as (
    select
        campaign_windows.campaign_target_id,
        daily_receipts.sold_date,
        daily_receipts.receipts,
        case
            when daily_receipts.sold_date between campaign_windows.first_day
                and campaign_windows.last_day then 'campaign'
            else 'baseline'
        end as period,
        daily_receipts.sold_weekday
    from campaign_windows
    inner join daily_receipts
        on daily_receipts.sold_date between
            {{ dbt.dateadd("day", -baseline_days, "campaign_windows.first_day") }}
            and {{ dbt.dateadd("day", baseline_days, "campaign_windows.last_day") }}
),

campaign_weekdays as (
    select distinct
        campaign_target_id,
        sold_weekday
    from classified_days
    where period = 'campaign'
),

-- Days on which another campaign ran on the same target are neither campaign nor baseline.
other_campaign_days as (
    select distinct
        classified_days.campaign_target_id,
        classified_days.sold_date
    from classified_days
    inner join campaign_windows as this_campaign
        on classified_days.campaign_target_id = this_campaign.campaign_target_id
    inner join campaign_windows as other
        on coalesce(other.target_category, '*') = coalesce(this_campaign.target_category, '*')
        and coalesce(other.target_product_id, '*')
            = coalesce(this_campaign.target_product_id, '*')
        and other.campaign_target_id != this_campaign.campaign_target_id
        and classified_days.sold_date between other.first_day and other.last_day
    where classified_days.period = 'baseline'
),

compared_days as (
    select classified_days.*
    from classified_days
    inner join campaign_weekdays
        on classified_days.campaign_target_id = campaign_weekdays.campaign_target_id
        and classified_days.sold_weekday = campaign_weekdays.sold_weekday
    left join other_campaign_days
        on classified_days.campaign_target_id = other_campaign_days.campaign_target_id
        and classified_days.sold_date = other_campaign_days.sold_date
    where other_campaign_days.sold_date is null
),

target_lines as (
    select
        campaign_windows.campaign_target_id,
        lines.sold_date,
        lines.receipt_key,
        lines.quantity,
        lines.revenue
    from campaign_windows
    inner join lines
        on (
            lines.category = campaign_windows.target_category
            or lines.product_id = campaign_windows.target_product_id
        )
        and lines.sold_date between
            {{ dbt.dateadd("day", -baseline_days, "campaign_windows.first_day") }}
            and {{ dbt.dateadd("day", baseline_days, "campaign_windows.last_day") }}
),

target_days as (
    select
        campaign_target_id,
        sold_date,
        count(distinct receipt_key) as target_receipts,
        sum(quantity) as target_units,
        sum(revenue) as target_revenue
    from target_lines
    group by campaign_target_id, sold_date
),

periods as (
    select
        compared_days.campaign_target_id,
        compared_days.period,
        count(*) as days,
        sum(compared_days.receipts) as receipts,
        sum(coalesce(target_days.target_receipts, 0)) as target_receipts,
        sum(coalesce(target_days.target_units, 0)) as target_units,
        sum(coalesce(target_days.target_revenue, 0)) as target_revenue
    from compared_days
    left join target_days
        on compared_days.campaign_target_id = target_days.campaign_target_id
        and compared_days.sold_date = target_days.sold_date
    group by compared_days.campaign_target_id, compared_days.period
),

pivoted as (
    select
        campaign_target_id,
        {%- for period in ["campaign", "baseline"] %}
        sum(case when period = '{{ period }}' then days end) as {{ period }}_days,
        sum(case when period = '{{ period }}' then receipts end) as {{ period }}_receipts,
        sum(case when period = '{{ period }}' then target_receipts end)
            as {{ period }}_target_receipts,
        sum(case when period = '{{ period }}' then target_units end) as {{ period }}_target_units,
        sum(case when period = '{{ period }}' then target_revenue end)
            as {{ period }}_target_revenue{{ "," if not loop.last }}
        {%- endfor %}
    from periods
    group by campaign_target_id
),

rates as (
    select
        pivoted.*,
        cast(campaign_target_receipts as double) / campaign_receipts as campaign_target_share,
        cast(baseline_target_receipts as double) / baseline_receipts as baseline_target_share,
        case
            when campaign_target_receipts > 0 and baseline_target_receipts > 0 then sqrt(
                1 / cast(campaign_target_receipts as double)
                - 1 / cast(campaign_receipts as double)
                + 1 / cast(baseline_target_receipts as double)
                - 1 / cast(baseline_receipts as double)
            )
        end as log_ratio_se
    from pivoted
),

final as (
    select
        cast(campaign_windows.campaign_target_id as {{ dbt.type_string() }}) as campaign_target_id,
        cast(campaign_windows.campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(campaign_windows.campaign_name as {{ dbt.type_string() }}) as campaign_name,
        cast(campaign_windows.target_category as {{ dbt.type_string() }}) as target_category,
        cast(campaign_windows.target_product_id as {{ dbt.type_string() }}) as target_product_id,
        campaign_windows.discount_pct,
        campaign_windows.first_day as campaign_first_day,
        campaign_windows.last_day as campaign_last_day,
        cast(rates.campaign_days as bigint) as campaign_days,
        cast(rates.baseline_days as bigint) as baseline_days,
        cast(rates.campaign_receipts as bigint) as campaign_receipts,
        cast(rates.baseline_receipts as bigint) as baseline_receipts,
        cast(rates.campaign_target_receipts as bigint) as campaign_target_receipts,
        cast(rates.baseline_target_receipts as bigint) as baseline_target_receipts,
        rates.campaign_target_share,
        rates.baseline_target_share,
        rates.campaign_target_share / nullif(rates.baseline_target_share, 0) - 1 as uplift,
        exp(ln(rates.campaign_target_share / rates.baseline_target_share)
            - 1.96 * rates.log_ratio_se) - 1 as uplift_ci_low,
        exp(ln(rates.campaign_target_share / rates.baseline_target_share)
            + 1.96 * rates.log_ratio_se) - 1 as uplift_ci_high,
        cast(rates.campaign_target_units as double) / rates.campaign_days
            as campaign_units_per_day,
        cast(rates.baseline_target_units as double) / nullif(rates.baseline_days, 0)
            as baseline_units_per_day,
        cast(rates.campaign_target_revenue as double) / rates.campaign_days
            as campaign_revenue_per_day,
        cast(rates.baseline_target_revenue as double) / nullif(rates.baseline_days, 0)
            as baseline_revenue_per_day
    from campaign_windows
    inner join rates
        on campaign_windows.campaign_target_id = rates.campaign_target_id
    -- a campaign without receipts on baseline days has nothing to be compared with
    where rates.campaign_receipts > 0
        and rates.baseline_receipts > 0
)

select * from final
where {{ analysis_is_applicable('promotion_uplift') }}
