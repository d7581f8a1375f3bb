{{ config(unique_key='extraction_run_id') }}
{#- One row per extracted entity per extraction DAG run attempt, failed attempts included. -#}

with extraction_runs as (

    select * from {{ ops_source('extraction_runs') }}
    {{ observability_new_landings('started_at') }}

)

select
    cast(dag_id || '.' || run_id || '.' || entity || '.' || cast(try_number as varchar) as varchar)
        as extraction_run_id,
    cast(dag_id as varchar) as dag_id,
    cast(run_id as varchar) as run_id,
    cast(try_number as integer) as try_number,
    -- The contract's name for the source group, a keyword to sqlfluff.
    cast(source as varchar) as source,  -- noqa: RF04
    cast(entity as varchar) as entity,
    cast(interval_start as {{ type_utc_timestamp() }}) as interval_start,
    cast(interval_end as {{ type_utc_timestamp() }}) as interval_end,
    cast(started_at as {{ type_utc_timestamp() }}) as started_at,
    cast(completed_at as {{ type_utc_timestamp() }}) as completed_at,
    cast({{ dbt.datediff('started_at', 'completed_at', 'millisecond') }} as double) / 1000 as duration_seconds,
    cast(rows_landed as bigint) as rows_landed,
    cast(rows_quarantined as bigint) as rows_quarantined,
    cast(status as varchar) as status
from extraction_runs
