{#- Append-only, typed copy of raw erp.products: every change, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('erp', 'products') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(product_id as bigint) as product_id,
    cast(sku as varchar) as sku,
    cast(name as varchar) as product_name,
    cast(category as varchar) as product_category,
    cast(supplier_id as bigint) as supplier_id,
    cast(unit_cost as decimal(18, 4)) as unit_cost,
    cast(list_price_brl as decimal(18, 2)) as list_price_brl,
    cast(created_at as {{ type_utc_timestamp() }}) as created_at,
    cast(updated_at as {{ type_utc_timestamp() }}) as updated_at,
    cast(deleted_at as {{ type_utc_timestamp() }}) as deleted_at,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
