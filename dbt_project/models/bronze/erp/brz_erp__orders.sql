{{
    config(
        incremental_strategy='delete+insert',
        unique_key='ingestion_date',
        on_schema_change='append_new_columns',
    )
}}
{#- Append-only history of every order change. An interval's partitions replace the same partitions here, so a
    rerun of a day is idempotent. -#}

with source as (

    select * from {{ source('erp', 'orders') }}
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
    cast(created_at as timestamp) as created_at,
    cast(updated_at as timestamp) as updated_at,
    cast(deleted_at as timestamp) as deleted_at,
    cast(_op as varchar) as cdc_operation,
    cast(_ingested_at as timestamp) as ingested_at,
    cast(_run_id as varchar) as ingestion_run_id,
    cast(ingestion_date as date) as ingestion_date
from source
