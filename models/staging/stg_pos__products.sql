with

checked as (
    select * from {{ ref('base_pos__products') }}
),

final as (
    select
        product_id,
        product_name,
        upper(category) as category,
        upper(size_class) as size_class,
        unit_cost,
        coalesce(is_merchandise, true) as is_merchandise
    from checked
    where rejection_reason is null
)

select * from final
