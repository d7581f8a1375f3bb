{#- The planning team's latest forecast beside actual sales, by month: every forecast month, with actual sales once
    the month has orders. -#}

with forecast as (

    select
        forecast_month,
        count(*) as project_count,
        sum(baseline_brl) as baseline_brl,
        sum(optimistic_brl) as optimistic_brl,
        sum(base_brl) as base_brl,
        sum(pessimistic_brl) as pessimistic_brl,
        max(snapshot_date) as snapshot_date
    from {{ ref('slv_forecast_monthly') }}
    group by 1

)

select
    forecast.forecast_month,
    cast(forecast.project_count as bigint) as project_count,
    cast(forecast.baseline_brl as decimal(18, 2)) as baseline_brl,
    cast(forecast.optimistic_brl as decimal(18, 2)) as optimistic_brl,
    cast(forecast.base_brl as decimal(18, 2)) as base_brl,
    cast(forecast.pessimistic_brl as decimal(18, 2)) as pessimistic_brl,
    actuals.sales_brl as actual_sales_brl,
    forecast.snapshot_date
from forecast
left join {{ ref('agg_monthly_orders') }} as actuals
    on forecast.forecast_month = actuals.order_month
