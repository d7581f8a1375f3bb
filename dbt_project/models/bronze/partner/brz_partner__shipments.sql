{#- Append-only, typed copy of raw partner.shipments: every change, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('partner', 'shipments') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(shipment_id as bigint) as shipment_id,
    cast(order_id as bigint) as order_id,
    cast(carrier as varchar) as carrier,
    cast(status as varchar) as shipment_status,
    cast(origin_port as varchar) as origin_port,
    cast(destination_port as varchar) as destination_port,
    cast(shipped_at as {{ type_utc_timestamp() }}) as shipped_at,
    cast(eta as date) as eta_date,
    cast(delivered_at as {{ type_utc_timestamp() }}) as delivered_at,
    cast(updated_at as {{ type_utc_timestamp() }}) as updated_at,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
