{#-
    The attach set of every purchase receipt, by category: its own positive
    merchandise lines and its window partners' (see int_receipts_linked), counted by
    role (anchor or add-on; one category can hold both when size_class comes from
    price). One row per (receipt_key, category).
-#}
with

receipts as (
    select * from {{ ref('int_receipts_aggregated') }}
    where is_purchase
),

links as (
    select * from {{ ref('int_receipts_linked') }}
),

lines as (
    select * from {{ ref('int_transaction_lines_enriched') }}
    where quantity > 0 and is_merchandise
),

own_lines as (
    select
        receipt_key,
        receipt_key as source_receipt_key,
        category,
        is_anchor,
        is_addon,
        is_impulse,
        revenue
    from lines
),

partner_lines as (
    select
        links.receipt_key,
        lines.receipt_key as source_receipt_key,
        lines.category,
        lines.is_anchor,
        lines.is_addon,
        lines.is_impulse,
        lines.revenue
    from links
    inner join lines
        on links.partner_receipt_key = lines.receipt_key
),

attached_lines as (
    select
        own_lines.*,
        true as is_own
    from own_lines
    union all
    select
        partner_lines.*,
        false as is_own
    from partner_lines
),

final as (
    select
        attached_lines.receipt_key,
        attached_lines.category,
        max(case when attached_lines.is_impulse then 1 else 0 end) = 1 as is_impulse,
        {%- for role in ["anchor", "addon"] %}
        sum(case when attached_lines.is_own and attached_lines.is_{{ role }} then 1 else 0 end)
            as own_{{ role }}_lines,
        sum(case when not attached_lines.is_own and attached_lines.is_{{ role }} then 1 else 0 end)
            as window_{{ role }}_lines,
        sum(
            case
                when attached_lines.is_{{ role }} then attached_lines.revenue
                when attached_lines.revenue is not null then 0
            end
        ) as {{ role }}_revenue
        {{- "," if not loop.last }}
        {%- endfor %}
    from attached_lines
    inner join receipts
        on attached_lines.receipt_key = receipts.receipt_key
    group by attached_lines.receipt_key, attached_lines.category
)

select * from final
