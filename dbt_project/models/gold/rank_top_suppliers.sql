{#- Suppliers ranked by what the importer bought from them (in BRL at the FX rate of each order date), with the sales
    and margin those purchases made; live orders that were not cancelled. -#}

with supplier_orders as (

    select
        supplier_id,
        count(*) as order_count,
        sum(quantity) as units,
        sum(cost_brl) as purchases_brl,
        sum(sale_amount_brl) as sales_brl,
        sum(gross_margin_brl) as gross_margin_brl
    from {{ ref('fct_order_correlated') }}
    where order_status != 'cancelled'
    group by 1

)

select
    cast(row_number() over (order by supplier_orders.purchases_brl desc, supplier_orders.supplier_id asc) as bigint)
        as supplier_rank,
    supplier_orders.supplier_id,
    suppliers.supplier_name,
    suppliers.country_code,
    suppliers.currency_code,
    cast(supplier_orders.order_count as bigint) as order_count,
    cast(supplier_orders.units as bigint) as units,
    cast(supplier_orders.purchases_brl as decimal(18, 2)) as purchases_brl,
    cast(supplier_orders.sales_brl as decimal(18, 2)) as sales_brl,
    cast(supplier_orders.gross_margin_brl as decimal(18, 2)) as gross_margin_brl
from supplier_orders
inner join {{ ref('slv_suppliers') }} as suppliers
    on supplier_orders.supplier_id = suppliers.supplier_id
