{#- Append-only, typed copy of raw partner.payments: every change, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('partner', 'payments') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(payment_id as bigint) as payment_id,
    cast(order_id as bigint) as order_id,
    cast(direction as varchar) as payment_direction,
    cast(amount as decimal(18, 2)) as amount,
    cast(currency as varchar) as currency_code,
    cast(method as varchar) as payment_method,
    cast(status as varchar) as payment_status,
    cast(paid_at as {{ type_utc_timestamp() }}) as paid_at,
    cast(updated_at as {{ type_utc_timestamp() }}) as updated_at,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
