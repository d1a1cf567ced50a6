with

checked as (
    select * from {{ ref('base_pos__transactions') }}
),

final as (
    select
        {{ receipt_key('store_id', 'receipt_id') }} as receipt_key,
        receipt_id,
        line_number,
        store_id,
        customer_id,
        product_id,
        quantity,
        unit_price,
        sold_at,
        campaign_id,
        cast(sold_at as date) as sold_date,
        quantity < 0 as is_return,
        customer_id is not null as is_member,
        -- A later line of the same receipt identical in every value but its number.
        -- Kept and counted (the source cannot tell a double scan from two identical
        -- purchases); flagged so an analysis can leave such lines out.
        row_number() over (
            partition by
                receipt_id, store_id, customer_id, product_id, quantity, unit_price, sold_at,
                campaign_id
            order by line_number
        ) > 1 as is_repeated_line
    from checked
    where rejection_reason is null
)

select * from final
