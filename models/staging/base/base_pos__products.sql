{#-
    Every raw product row, cast and checked; see base_pos__transactions.

    Only a missing product_id or a second row for the same product rejects the row.
    A defect in an optional attribute does not: the attribute is set to null (a
    missing category to UNCATEGORIZED) and the defect is named in
    <attribute>_defect, so the product's sales still count and
    stg_pos__product_attribute_defects reports what was dropped.
-#}
{%- set columns = {
    "product_id": "text",
    "product_name": "text",
    "category": "text",
    "size_class": "text",
    "unit_cost": "double",
    "is_merchandise": dbt.type_boolean(),
} -%}

with

source as (
    {{ raw_source('pos', 'products') }}
),

typed as (
    select
        raw_row_number as raw_row_id,
        {{ typed_and_raw_columns(columns) }}
    from source
),

row_checked as (
    select
        typed.*,
        case
            when product_id is null then 'missing_product_id'
        end as row_rejection_reason,
        case
            when category is null then 'missing_category'
        end as category_defect,
        case
            when upper(size_class) not in ('LARGE', 'SMALL') then 'invalid_size_class'
        end as size_class_defect,
        case
            {{ optional_value('unit_cost', columns) }}
            when unit_cost < 0 then 'negative_unit_cost'
        end as unit_cost_defect,
        case
            {{ optional_value('is_merchandise', columns) }}
        end as is_merchandise_defect
    from typed
),

-- The first row of a product in the raw file is the product; later rows with the same
-- product_id are duplicate_product_id, whatever their values.
ranked as (
    select
        row_checked.*,
        row_number() over (
            partition by product_id, row_rejection_reason is null
            order by raw_row_id
        ) as key_rank
    from row_checked
),

final as (
    select
        raw_row_id,
        product_id,
        raw_product_id,
        product_name,
        raw_product_name,
        coalesce(category, 'UNCATEGORIZED') as category,
        raw_category,
        case when size_class_defect is null then size_class end as size_class,
        raw_size_class,
        case when unit_cost_defect is null then unit_cost end as unit_cost,
        raw_unit_cost,
        case when is_merchandise_defect is null then is_merchandise end as is_merchandise,
        raw_is_merchandise,
        category_defect,
        size_class_defect,
        unit_cost_defect,
        is_merchandise_defect,
        case
            when row_rejection_reason is not null then row_rejection_reason
            when key_rank > 1 then 'duplicate_product_id'
        end as rejection_reason
    from ranked
)

select * from final
