{#- Append-only, typed copy of raw partner.fx_rates: every change, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('partner', 'fx_rates') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(rate_date as date) as rate_date,
    cast(base_currency as varchar) as base_currency,
    cast(quote_currency as varchar) as quote_currency,
    cast(rate as decimal(18, 6)) as fx_rate,
    cast(published_at as {{ type_utc_timestamp() }}) as published_at,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
