-- Gold's monthly order intake adds up to silver's live orders: no order lost or counted twice by the aggregation
-- (sales to the cent: some engines sum decimals as doubles).
with gold as (

    select
        sum(order_count) as order_count,
        round(sum(sales_brl), 2) as sales_brl
    from {{ ref('agg_monthly_orders') }}

),

silver as (

    select
        count(*) as order_count,
        round(sum(sale_amount_brl), 2) as sales_brl
    from {{ ref('slv_orders') }}
    where not is_deleted and order_status != 'cancelled'

)

select
    gold.order_count as gold_orders,
    silver.order_count as silver_orders,
    gold.sales_brl as gold_sales_brl,
    silver.sales_brl as silver_sales_brl
from gold
cross join silver
where
    coalesce(gold.order_count, 0) != coalesce(silver.order_count, 0)
    or coalesce(gold.sales_brl, 0) != coalesce(silver.sales_brl, 0)
