{{ config(partitioned_by=['cash_year', 'cash_month']) }}
{#- Monthly cash flow for BI, in BRL: money in (customers' settled payments) and out (settled payments to suppliers,
    converted at the FX rate as of the day they were paid), by the month the money moved. Read from the correlated
    fact, which carries each order's inbound and outbound payment already in BRL: one settled payment per order and
    direction becomes one row here (lineage: this mart -> fct_order_correlated -> silver -> bronze -> raw). -#}

with settled_payments as (

    select
        'inbound' as payment_direction,
        inbound_paid_at as paid_at,
        inbound_amount_brl as amount_brl
    from {{ ref('fct_order_correlated') }}
    where inbound_payment_status = 'settled'

    union all

    select
        'outbound' as payment_direction,
        outbound_paid_at as paid_at,
        outbound_amount_brl as amount_brl
    from {{ ref('fct_order_correlated') }}
    where outbound_payment_status = 'settled'

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
