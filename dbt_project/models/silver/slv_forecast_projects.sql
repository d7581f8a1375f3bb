{{ config(materialized='table') }}
{#- The planning projects of the latest weekly forecast snapshot (a snapshot replaces the previous one whole). -#}

with snapshots as (

    select
        projects.*,
        max(projects.ingestion_date) over () as latest_snapshot_date
    from {{ ref('brz_forecast__projects') }} as projects

)

select
    project_id,
    project_name,
    project_owner,
    created_at,
    ingestion_date as snapshot_date
from snapshots
where ingestion_date = latest_snapshot_date
