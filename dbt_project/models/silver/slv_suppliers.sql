{{ config(unique_key='supplier_id') }}
{#- Current state of every supplier; deletes stay as soft deletes. The contact e-mail is a keyed hash (PII: a
    contact address may name a person). -#}

with changes as (

    select * from {{ ref('brz_erp__suppliers') }}
    {% if is_incremental() %}
        where {{ bronze_changes_since_lookback('ingestion_date') }}
    {% endif %}

),

latest_change as (

    {{ latest_version_per_key('changes', 'supplier_id', 'updated_at') }}

)

select
    latest_change.supplier_id,
    latest_change.supplier_name,
    latest_change.country_code,
    latest_change.currency_code,
    {{ pii_hash(normalized_email('latest_change.contact_email')) }} as contact_email_hash,
    latest_change.created_at,
    latest_change.updated_at,
    latest_change.deleted_at,
    latest_change.ingestion_date,
    coalesce(latest_change.deleted_at is not null or latest_change.cdc_operation = 'D', false) as is_deleted
from latest_change
{{ skip_versions_older_than_current('latest_change', 'supplier_id', 'updated_at') }}
