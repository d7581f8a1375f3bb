{{ config(unique_key='payment_id') }}
{#- Current state of every payment, inbound (customer, BRL) and outbound (supplier, foreign currency). The partner
    sends current state, so the latest record wins; payments are never deleted. -#}

with changes as (

    select * from {{ ref('brz_partner__payments') }}
    {% if is_incremental() %}
        where {{ bronze_changes_since_lookback('ingestion_date') }}
    {% endif %}

),

latest_change as (

    {{ latest_version_per_key('changes', 'payment_id', 'updated_at') }}

)

select
    latest_change.payment_id,
    latest_change.order_id,
    latest_change.payment_direction,
    latest_change.amount,
    latest_change.currency_code,
    latest_change.payment_method,
    latest_change.payment_status,
    latest_change.paid_at,
    latest_change.updated_at,
    latest_change.ingestion_date
from latest_change
{{ skip_versions_older_than_current('latest_change', 'payment_id', 'updated_at') }}
