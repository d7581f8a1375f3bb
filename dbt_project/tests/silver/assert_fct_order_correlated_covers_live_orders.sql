-- The correlated fact holds exactly the live orders of slv_orders: none missing, none extra.
with live_orders as (

    select order_id from {{ ref('slv_orders') }}
    where not is_deleted

),

fact_orders as (

    select order_id from {{ ref('fct_order_correlated') }}

)

select
    coalesce(live_orders.order_id, fact_orders.order_id) as order_id,
    case when live_orders.order_id is null then 'extra in the fact' else 'missing from the fact' end as problem
from live_orders
full outer join fact_orders
    on live_orders.order_id = fact_orders.order_id
where live_orders.order_id is null or fact_orders.order_id is null
