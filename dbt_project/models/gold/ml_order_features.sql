{{ config(partitioned_by=['month(order_date)']) }}
{#- Features for demand forecasting and FX-risk models, one row per live order: what was bought, by whom, at what
    margin and exchange rate, how the rate moved over the week before, the customer's history before this order, and
    the outcomes (cancelled, paid, delivered late) as labels. -#}

with orders as (

    select * from {{ ref('fct_order_correlated') }}

),

with_history as (

    select
        orders.*,
        count(*) over (
            partition by orders.customer_id
            order by orders.order_date, orders.order_id
            rows between unbounded preceding and 1 preceding
        ) as customer_prior_orders,
        sum(orders.sale_amount_brl) over (
            partition by orders.customer_id
            order by orders.order_date, orders.order_id
            rows between unbounded preceding and 1 preceding
        ) as customer_prior_sales_brl
    from orders

)

select
    with_history.order_id,
    with_history.order_date,
    with_history.customer_id,
    with_history.customer_segment,
    with_history.customer_state_code,
    with_history.product_category,
    with_history.supplier_country_code,
    with_history.currency_code,
    cast(with_history.quantity as integer) as quantity,
    with_history.sale_amount_brl,
    with_history.cost_brl,
    cast(
        case when with_history.sale_amount_brl > 0 then with_history.gross_margin_brl / with_history.sale_amount_brl end
        as decimal(18, 4)
    ) as gross_margin_ratio,
    with_history.fx_rate,
    cast(
        case when week_before.fx_rate > 0 then with_history.fx_rate / week_before.fx_rate - 1 end as decimal(18, 6)
    ) as fx_change_7d_ratio,
    cast(with_history.customer_prior_orders as bigint) as customer_prior_orders,
    cast(coalesce(with_history.customer_prior_sales_brl, 0) as decimal(18, 2)) as customer_prior_sales_brl,
    case
        when with_history.inbound_paid_at is not null
            then cast({{ dbt.datediff('with_history.order_date', 'cast(with_history.inbound_paid_at as date)', 'day') }} as integer)
    end as days_to_customer_payment,
    cast(with_history.delivery_delay_days as integer) as delivery_delay_days,
    with_history.order_status = 'cancelled' as is_cancelled,
    coalesce(with_history.delivery_delay_days > 0, false) as is_delivered_late
from with_history
left join {{ ref('slv_fx_rates') }} as week_before
    on {{ fx_rate_valid_on('week_before', 'with_history.currency_code', dbt.dateadd('day', -7, 'with_history.order_date')) }}
