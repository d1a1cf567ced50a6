{#-
    The optional product attributes staging set aside: one row per staged product and
    attribute whose raw value was not usable. The product and its sales are kept; the
    attribute is null in stg_pos__products (a missing category is UNCATEGORIZED).
-#}
with

checked as (
    select * from {{ ref('base_pos__products') }}
    where rejection_reason is null
),

defects as (
    {%- for attribute in ["category", "size_class", "unit_cost", "is_merchandise"] %}
    select
        raw_row_id,
        product_id,
        '{{ attribute }}' as attribute,
        raw_{{ attribute }} as raw_value,
        {{ attribute }}_defect as defect_reason
    from checked
    where {{ attribute }}_defect is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select * from defects
)

select * from final
