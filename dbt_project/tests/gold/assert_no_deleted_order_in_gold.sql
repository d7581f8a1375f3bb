-- An order deleted in the ERP appears in no gold table (nor in the silver fact they are built from).
with deleted_orders as (

    select order_id from {{ ref('slv_orders') }}
    where is_deleted

),

order_level_rows as (

    select
        order_id,
        'fct_order_correlated' as found_in
    from {{ ref('fct_order_correlated') }}
    union all
    select
        order_id,
        'ml_order_features' as found_in
    from {{ ref('ml_order_features') }}

)

select
    order_level_rows.order_id,
    order_level_rows.found_in
from order_level_rows
inner join deleted_orders
    on order_level_rows.order_id = deleted_orders.order_id
