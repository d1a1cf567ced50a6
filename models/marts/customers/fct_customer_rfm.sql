{#-
    RFM scores and segment of every member with a purchase up to the as-of date.
    Scores are mid-rank quintiles (see the rfm_scores doc block).
-#}
with

summary as (
    select * from {{ ref('int_customers_summarised') }}
),

segment_map as (
    select * from {{ ref('rfm_segment_map') }}
),

positions as (
    -- Each value's middle position among all customers (1-based): rank of its first
    -- holder plus half the extra holders, so ties share one position. Positions are
    -- doubles on every engine (Spark would keep `/ 2.0` as a rounded decimal).
    select
        customer_id,
        as_of_date,
        first_purchase_date,
        last_purchase_date,
        recency_days,
        purchase_receipts,
        revenue,
        count(*) over () as customer_count,
        rank() over (order by recency_days desc)
        + cast(count(*) over (partition by recency_days) - 1 as double) / 2
            as recency_position,
        rank() over (order by purchase_receipts)
        + cast(count(*) over (partition by purchase_receipts) - 1 as double) / 2
            as frequency_position,
        -- Money is ranked in whole cents: sums of prices carry floating-point noise that
        -- would otherwise split equal spenders (and vary with summation order). Rounded
        -- to an integer, as round(x, 2) differs between engines on halves (Spark rounds
        -- the decimal text of a double, DuckDB its binary value).
        rank() over (order by round(revenue * 100))
        + cast(count(*) over (partition by round(revenue * 100)) - 1 as double) / 2
            as monetary_position
    from summary
),

scored as (
    select
        customer_id,
        as_of_date,
        first_purchase_date,
        last_purchase_date,
        recency_days,
        purchase_receipts,
        revenue,
        cast(1 + floor(5 * (recency_position - 1) / customer_count) as integer)
            as recency_score,
        cast(1 + floor(5 * (frequency_position - 1) / customer_count) as integer)
            as frequency_score,
        -- no prices, no monetary score (never a made-up middle score)
        case
            when revenue is not null
                then cast(1 + floor(5 * (monetary_position - 1) / customer_count) as integer)
        end as monetary_score
    from positions
),

matches as (
    select
        scored.customer_id,
        segment_map.rfm_segment,
        segment_map.is_lapsing,
        row_number() over (
            partition by scored.customer_id order by segment_map.priority
        ) as match_order
    from scored
    inner join segment_map
        on scored.recency_score between segment_map.r_min and segment_map.r_max
        and scored.frequency_score between segment_map.f_min and segment_map.f_max
        -- without a monetary score, only the segments open to every score (1-5) match
        and (
            scored.monetary_score between segment_map.m_min and segment_map.m_max
            or (scored.monetary_score is null and segment_map.m_min = 1 and segment_map.m_max = 5)
        )
),

final as (
    select
        cast(scored.customer_id as {{ dbt.type_string() }}) as customer_id,
        scored.as_of_date,
        scored.first_purchase_date,
        scored.last_purchase_date,
        scored.recency_days,
        scored.purchase_receipts as frequency,
        scored.revenue as monetary,
        scored.recency_score,
        scored.frequency_score,
        scored.monetary_score,
        {{ dbt.concat([
            "cast(scored.recency_score as " ~ dbt.type_string() ~ ")",
            "cast(scored.frequency_score as " ~ dbt.type_string() ~ ")",
            "coalesce(cast(scored.monetary_score as " ~ dbt.type_string() ~ "), '-')",
        ]) }} as rfm_cell,
        cast(coalesce(matches.rfm_segment, 'Others') as {{ dbt.type_string() }}) as rfm_segment,
        coalesce(matches.is_lapsing, false) as is_lapsing
    from scored
    left join matches
        on scored.customer_id = matches.customer_id
        and matches.match_order = 1
)

select * from final
where {{ analysis_is_applicable('rfm') }}
