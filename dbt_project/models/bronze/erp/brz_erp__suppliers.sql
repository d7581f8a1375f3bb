{#- Append-only, typed copy of raw erp.suppliers: every change, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('erp', 'suppliers') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(supplier_id as bigint) as supplier_id,
    cast(name as varchar) as supplier_name,
    cast(country as varchar) as country_code,
    cast(currency as varchar) as currency_code,
    cast(contact_email as varchar) as contact_email,
    cast(created_at as {{ type_utc_timestamp() }}) as created_at,
    cast(updated_at as {{ type_utc_timestamp() }}) as updated_at,
    cast(deleted_at as {{ type_utc_timestamp() }}) as deleted_at,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
