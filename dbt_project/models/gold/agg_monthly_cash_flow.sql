{{ config(partitioned_by=['cash_year', 'cash_month']) }}
{#- Monthly cash flow for BI, in BRL: money in (customers' settled payments) and out (settled payments to suppliers,
    converted at the FX rate as of the day they were paid), by the month the money moved. -#}

with settled_payments as (

    select
        payments.payment_direction,
        payments.paid_at,
        {{ to_brl('payments.amount', 'payments.currency_code', 'fx.fx_rate') }} as amount_brl
    from {{ ref('slv_payments') }} as payments
    left join {{ ref('slv_fx_rates') }} as fx
        on {{ fx_rate_valid_on('fx', 'payments.currency_code', 'cast(payments.paid_at as date)') }}
    where payments.payment_status = 'settled'

)

select
    cast({{ dbt.date_trunc('month', 'paid_at') }} as date) as month_start,
    cast(extract(year from paid_at) as integer) as cash_year,
    cast(extract(month from paid_at) as integer) as cash_month,
    cast(coalesce(sum(case when payment_direction = 'inbound' then amount_brl end), 0) as decimal(18, 2)) as inflow_brl,
    cast(coalesce(sum(case when payment_direction = 'outbound' then amount_brl end), 0) as decimal(18, 2)) as outflow_brl,
    cast(
        coalesce(sum(case when payment_direction = 'inbound' then amount_brl end), 0)
        - coalesce(sum(case when payment_direction = 'outbound' then amount_brl end), 0)
        as decimal(18, 2)
    ) as net_cash_flow_brl,
    cast(sum(case when payment_direction = 'inbound' then 1 else 0 end) as bigint) as inbound_payment_count,
    cast(sum(case when payment_direction = 'outbound' then 1 else 0 end) as bigint) as outbound_payment_count
from settled_payments
group by 1, 2, 3
