-- Gold's monthly cash flow adds up to silver's settled payments: every settled payment counted once, customers'
-- payments to the cent (they are in BRL; sums rounded to the cent, as some engines sum decimals as doubles), and no
-- supplier payment left unconverted.
with gold as (

    select
        sum(inbound_payment_count) as inbound_payments,
        sum(outbound_payment_count) as outbound_payments,
        round(sum(inflow_brl), 2) as inflow_brl,
        count(*) - count(outflow_brl) as months_without_outflow
    from {{ ref('agg_monthly_cash_flow') }}

),

silver as (

    select
        sum(case when payment_direction = 'inbound' then 1 else 0 end) as inbound_payments,
        sum(case when payment_direction = 'outbound' then 1 else 0 end) as outbound_payments,
        round(sum(case when payment_direction = 'inbound' then amount end), 2) as inflow_brl
    from {{ ref('slv_payments') }}
    where payment_status = 'settled'

)

select
    gold.inbound_payments as gold_inbound_payments,
    silver.inbound_payments as silver_inbound_payments,
    gold.outbound_payments as gold_outbound_payments,
    silver.outbound_payments as silver_outbound_payments,
    gold.inflow_brl as gold_inflow_brl,
    silver.inflow_brl as silver_inflow_brl
from gold
cross join silver
where
    coalesce(gold.inbound_payments, 0) != coalesce(silver.inbound_payments, 0)
    or coalesce(gold.outbound_payments, 0) != coalesce(silver.outbound_payments, 0)
    or coalesce(gold.inflow_brl, 0) != coalesce(silver.inflow_brl, 0)
    or gold.months_without_outflow > 0
