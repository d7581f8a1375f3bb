-- The rankings distribute every live, not cancelled order: their totals equal the silver fact's (to the cent).
with fact as (

    select
        count(*) as order_count,
        round(sum(sale_amount_brl), 2) as sales_brl
    from {{ ref('fct_order_correlated') }}
    where order_status != 'cancelled'

),

by_supplier as (

    select
        sum(order_count) as order_count,
        round(sum(sales_brl), 2) as sales_brl
    from {{ ref('rank_top_suppliers') }}

),

by_product as (

    select
        sum(order_count) as order_count,
        round(sum(sales_brl), 2) as sales_brl
    from {{ ref('rank_top_products') }}

)

select
    fact.order_count as fact_orders,
    by_supplier.order_count as supplier_ranking_orders,
    by_product.order_count as product_ranking_orders
from fact
cross join by_supplier
cross join by_product
where
    coalesce(fact.order_count, 0) != coalesce(by_supplier.order_count, 0)
    or coalesce(fact.order_count, 0) != coalesce(by_product.order_count, 0)
    or coalesce(fact.sales_brl, 0) != coalesce(by_supplier.sales_brl, 0)
    or coalesce(fact.sales_brl, 0) != coalesce(by_product.sales_brl, 0)
