{#- Append-only, typed copy of raw erp.orders: every change, renamed and cast, with its ingestion metadata.
    An interval's run replaces the same partitions here (pre-hook), so a rerun of a day is idempotent. -#}

with source as (

    select * from {{ raw_source('erp', 'orders') }}
    where {{ raw_partitions_in_interval('ingestion_date') }}

)

select
    cast(order_id as bigint) as order_id,
    cast(customer_id as bigint) as customer_id,
    cast(product_id as bigint) as product_id,
    cast(supplier_id as bigint) as supplier_id,
    cast(quantity as integer) as quantity,
    cast(unit_cost as decimal(18, 4)) as unit_cost,
    cast(currency as varchar) as currency_code,
    cast(sale_amount_brl as decimal(18, 2)) as sale_amount_brl,
    cast(order_date as date) as order_date,
    cast(status as varchar) as order_status,
    cast(created_at as {{ type_utc_timestamp() }}) as created_at,
    cast(updated_at as {{ type_utc_timestamp() }}) as updated_at,
    cast(deleted_at as {{ type_utc_timestamp() }}) as deleted_at,
    cast(_ingested_at as {{ type_utc_timestamp() }}) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(_op as varchar) as cdc_operation,
    cast(ingestion_date as date) as ingestion_date
from source
