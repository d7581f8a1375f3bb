{{ config(unique_key='freshness_check_id') }}
{#- One row per source table per `dbt source freshness` check (the maintenance DAG's). -#}

with freshness as (

    select * from {{ ops_source('source_freshness') }}
    {{ observability_new_landings('checked_at') }}

)

select
    cast(invocation_id || '.' || unique_id as varchar) as freshness_check_id,
    cast(invocation_id as varchar) as invocation_id,
    cast(checked_at as {{ type_utc_timestamp() }}) as checked_at,
    cast(source_name as varchar) as source_name,
    cast(table_name as varchar) as table_name,
    cast(max_loaded_at as {{ type_utc_timestamp() }}) as max_loaded_at,
    cast(age_hours as double) as age_hours,
    cast(status as varchar) as status
from freshness
