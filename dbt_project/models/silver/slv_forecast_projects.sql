{{ config(materialized='table') }}
{#- The planning projects of the latest weekly forecast snapshot (a snapshot replaces the previous one whole). The
    owner is an employee's name (PII): kept as a keyed hash, so projects still group by owner. -#}

with snapshots as (

    select
        projects.*,
        max(projects.ingestion_date) over () as latest_snapshot_date
    from {{ ref('brz_forecast__projects') }} as projects

)

select
    project_id,
    project_name,
    {{ pii_hash(normalized_name('project_owner')) }} as project_owner_hash,
    created_at,
    ingestion_date as snapshot_date
from snapshots
where ingestion_date = latest_snapshot_date
