{{ config(unique_key='invocation_id') }}
{#- One row per dbt invocation of any DAG run; Athena's bytes and cost summed over its nodes' queries. -#}

with invocations as (

    select * from {{ ops_source('dbt_invocations') }}
    {{ observability_new_landings('started_at') }}

),

node_results as (

    select * from {{ ops_source('dbt_node_results') }}
    {{ observability_new_landings('started_at') }}

),

scanned as (

    select
        invocation_id,
        sum(bytes_scanned) as bytes_scanned,
        round(sum({{ athena_query_cost_usd('bytes_scanned') }}), 10) as cost_usd
    from node_results
    group by 1

)

select
    cast(invocations.invocation_id as varchar) as invocation_id,
    cast(invocations.dag_id as varchar) as dag_id,
    cast(invocations.run_id as varchar) as run_id,
    cast(invocations.task_id as varchar) as task_id,
    cast(invocations.try_number as integer) as try_number,
    cast(invocations.command as varchar) as command,
    cast(invocations.target_type as varchar) as target_type,
    cast(invocations.started_at as {{ type_utc_timestamp() }}) as started_at,
    cast(invocations.completed_at as {{ type_utc_timestamp() }}) as completed_at,
    cast(invocations.elapsed_seconds as double) as elapsed_seconds,
    cast(invocations.nodes_total as integer) as nodes_total,
    cast(invocations.nodes_failed as integer) as nodes_failed,
    cast(invocations.status as varchar) as status,
    cast(scanned.bytes_scanned as bigint) as bytes_scanned,
    cast(scanned.cost_usd as double) as cost_usd
from invocations
left join scanned on invocations.invocation_id = scanned.invocation_id
