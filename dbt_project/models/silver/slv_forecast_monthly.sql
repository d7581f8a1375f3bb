{{ config(materialized='table') }}
{#- Each project's monthly revenue forecast from the latest weekly snapshot: the baseline beside the three scenarios,
    one row per project and month. -#}

with baselines as (

    select * from {{ ref('brz_forecast__baselines') }}
    where ingestion_date = (select max(snapshots.ingestion_date) from {{ ref('brz_forecast__baselines') }} as snapshots)

),

scenarios as (

    select
        project_id,
        forecast_month,
        sum(case when scenario = 'optimistic' then scenario_brl end) as optimistic_brl,
        sum(case when scenario = 'base' then scenario_brl end) as base_brl,
        sum(case when scenario = 'pessimistic' then scenario_brl end) as pessimistic_brl
    from {{ ref('brz_forecast__scenarios') }}
    where ingestion_date = (select max(snapshots.ingestion_date) from {{ ref('brz_forecast__scenarios') }} as snapshots)
    group by 1, 2

)

select
    baselines.project_id,
    baselines.forecast_month,
    baselines.baseline_brl,
    cast(scenarios.optimistic_brl as decimal(18, 2)) as optimistic_brl,
    cast(scenarios.base_brl as decimal(18, 2)) as base_brl,
    cast(scenarios.pessimistic_brl as decimal(18, 2)) as pessimistic_brl,
    baselines.ingestion_date as snapshot_date
from baselines
left join scenarios
    on
        baselines.project_id = scenarios.project_id
        and baselines.forecast_month = scenarios.forecast_month
