{#-
    Pairs of purchase receipts of the same loyalty member in the same store whose
    checkouts are at most attach_window_minutes apart, in both directions, the
    receipt itself excluded. Anonymous receipts have no partners. The join first pairs
    receipts whose days are at most window_days apart (any window length), then keeps
    the pairs within the window.
-#}
{%- set window_days = ((var("attach_window_minutes") | float) / 1440) | round(0, "ceil") | int -%}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
    where is_purchase and is_member
),

pairs as (
    select
        receipt.receipt_key,
        partner.receipt_key as partner_receipt_key,
        {{ seconds_between("receipt.sold_at", "partner.sold_at") }} as seconds_apart
    from receipts as receipt
    inner join receipts as partner
        on receipt.customer_id = partner.customer_id
        and receipt.store_id = partner.store_id
        and receipt.receipt_key != partner.receipt_key
        and receipt.sold_date between
            {{ dbt.dateadd("day", -window_days, "partner.sold_date") }}
            and {{ dbt.dateadd("day", window_days, "partner.sold_date") }}
),

final as (
    select
        receipt_key,
        partner_receipt_key,
        seconds_apart
    from pairs
    where abs(seconds_apart) <= {{ var("attach_window_minutes") }} * 60
)

select * from final
