{#- Products ranked by sales in BRL, overall and within their category, with units and margin; live orders that were
    not cancelled. -#}

with product_orders as (

    select
        product_id,
        count(*) as order_count,
        sum(quantity) as units,
        sum(sale_amount_brl) as sales_brl,
        sum(gross_margin_brl) as gross_margin_brl
    from {{ ref('fct_order_correlated') }}
    where order_status != 'cancelled'
    group by 1

)

select
    cast(row_number() over (order by product_orders.sales_brl desc, product_orders.product_id asc) as bigint)
        as product_rank,
    cast(
        row_number() over (
            partition by products.product_category
            order by product_orders.sales_brl desc, product_orders.product_id asc
        ) as bigint
    ) as category_rank,
    product_orders.product_id,
    products.sku,
    products.product_name,
    products.product_category,
    cast(product_orders.order_count as bigint) as order_count,
    cast(product_orders.units as bigint) as units,
    cast(product_orders.sales_brl as decimal(18, 2)) as sales_brl,
    cast(product_orders.gross_margin_brl as decimal(18, 2)) as gross_margin_brl
from product_orders
inner join {{ ref('slv_products') }} as products
    on product_orders.product_id = products.product_id
