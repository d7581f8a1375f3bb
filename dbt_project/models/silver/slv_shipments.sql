{{ config(unique_key='shipment_id') }}
{#- Current state of every shipment, conformed across the three channels that report them: the partner's API and
    the file drops of oceanic and skyfreight (each shipment is handled by exactly one channel). -#}

with changes as (

    select
        shipment_id,
        order_id,
        'api' as shipment_channel,
        carrier,
        shipment_status,
        origin_port,
        destination_port,
        shipped_at,
        eta_date,
        delivered_at,
        updated_at,
        ingested_at,
        ingestion_date
    from {{ ref('brz_partner__shipments') }}
    {% if is_incremental() %}
        where {{ bronze_changes_since_lookback('ingestion_date') }}
    {% endif %}

    union all

    select
        shipment_id,
        order_id,
        file_partner as shipment_channel,
        carrier,
        shipment_status,
        origin_port,
        destination_port,
        shipped_at,
        eta_date,
        delivered_at,
        updated_at,
        ingested_at,
        ingestion_date
    from {{ ref('brz_files__shipments') }}
    {% if is_incremental() %}
        where {{ bronze_changes_since_lookback('ingestion_date') }}
    {% endif %}

),

latest_change as (

    {{ latest_version_per_key('changes', 'shipment_id', 'updated_at') }}

)

select
    latest_change.shipment_id,
    latest_change.order_id,
    latest_change.shipment_channel,
    latest_change.carrier,
    latest_change.shipment_status,
    latest_change.origin_port,
    latest_change.destination_port,
    latest_change.shipped_at,
    latest_change.eta_date,
    latest_change.delivered_at,
    latest_change.updated_at,
    latest_change.ingestion_date
from latest_change
{{ skip_versions_older_than_current('latest_change', 'shipment_id', 'updated_at') }}
