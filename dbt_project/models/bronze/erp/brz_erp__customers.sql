{#- Append-only, typed copy of raw erp.customers: every change, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('erp', 'customers') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(customer_id as bigint) as customer_id,
    cast(name as varchar) as customer_name,
    cast(email as varchar) as email,
    cast(tax_id as varchar) as tax_id,
    cast(phone as varchar) as phone,
    cast(city as varchar) as city,
    cast(state as varchar) as state_code,
    cast(segment as varchar) as customer_segment,
    cast(created_at as {{ type_utc_timestamp() }}) as created_at,
    cast(updated_at as {{ type_utc_timestamp() }}) as updated_at,
    cast(deleted_at as {{ type_utc_timestamp() }}) as deleted_at,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
