{#- Monthly order intake for BI: live (not deleted, not cancelled) orders by the month they were placed. -#}

with live_orders as (

    select * from {{ ref('slv_orders') }}
    where not is_deleted and order_status != 'cancelled'

)

select
    cast({{ dbt.date_trunc('month', 'order_date') }} as date) as order_month,
    count(*) as order_count,
    cast(sum(quantity) as bigint) as units_ordered,
    cast(sum(sale_amount_brl) as decimal(18, 2)) as sales_brl
from live_orders
group by 1
