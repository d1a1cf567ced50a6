with

checked as (
    select * from {{ ref('base_pos__transactions') }}
),

final as (
    select
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
        customer_id is not null as is_member
    from checked
    where rejection_reason is null
)

select * from final
