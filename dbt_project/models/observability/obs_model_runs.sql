{{ config(unique_key='model_run_id') }}
{#- One row per model, snapshot and seed per dbt invocation: status, timing, rows, and on Athena bytes and cost. -#}

with node_results as (

    select * from {{ ops_source('dbt_node_results') }}
    {{ observability_new_landings('run_started_at') }}

)

select
    cast(invocation_id || '.' || unique_id as varchar) as model_run_id,
    cast(invocation_id as varchar) as invocation_id,
    cast(dag_id as varchar) as dag_id,
    cast(run_id as varchar) as run_id,
    cast(run_started_at as {{ type_utc_timestamp() }}) as run_started_at,
    cast(unique_id as varchar) as unique_id,
    cast(node_name as varchar) as model_name,
    cast(layer as varchar) as layer,
    cast(materialization as varchar) as materialization,
    cast(status as varchar) as status,
    cast(started_at as {{ type_utc_timestamp() }}) as started_at,
    cast(completed_at as {{ type_utc_timestamp() }}) as completed_at,
    cast(duration_seconds as double) as duration_seconds,
    cast(rows_affected as bigint) as rows_affected,
    cast(bytes_scanned as bigint) as bytes_scanned,
    cast({{ athena_query_cost_usd('bytes_scanned') }} as double) as cost_usd
from node_results
where resource_type in ('model', 'snapshot', 'seed')
