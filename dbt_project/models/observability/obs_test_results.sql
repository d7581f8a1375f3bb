{{ config(unique_key='test_result_id') }}
{#- One row per data test and unit test per dbt invocation, with the model (and column) it tests. -#}

with node_results as (

    select * from {{ ops_source('dbt_node_results') }}
    {{ observability_new_landings('run_started_at') }}

)

select
    cast(invocation_id || '.' || unique_id as varchar) as test_result_id,
    cast(invocation_id as varchar) as invocation_id,
    cast(dag_id as varchar) as dag_id,
    cast(run_id as varchar) as run_id,
    cast(run_started_at as {{ type_utc_timestamp() }}) as run_started_at,
    cast(unique_id as varchar) as unique_id,
    cast(node_name as varchar) as test_name,
    cast(tested_model as varchar) as model_name,
    cast(column_name as varchar) as column_name,
    cast(status as varchar) as status,
    cast(failures as bigint) as failures,
    cast(message as varchar) as message
from node_results
where resource_type in ('test', 'unit_test')
