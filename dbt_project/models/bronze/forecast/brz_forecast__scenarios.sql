{#- Append-only, typed copy of raw forecast.scenarios: every weekly snapshot, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('forecast', 'scenarios') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(project_id as bigint) as project_id,
    cast(scenario as varchar) as scenario,
    cast(month as date) as forecast_month,
    cast(amount_brl as decimal(18, 2)) as scenario_brl,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
