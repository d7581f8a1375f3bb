{{ config(unique_key='product_id') }}
{#- Current state of every product (its latest price); deletes stay as soft deletes. -#}

with changes as (

    select * from {{ ref('brz_erp__products') }}
    {% if is_incremental() %}
        where {{ bronze_changes_since_lookback('ingestion_date') }}
    {% endif %}

),

latest_change as (

    {{ latest_version_per_key('changes', 'product_id', 'updated_at') }}

)

select
    latest_change.product_id,
    latest_change.sku,
    latest_change.product_name,
    latest_change.product_category,
    latest_change.supplier_id,
    latest_change.unit_cost,
    latest_change.list_price_brl,
    latest_change.created_at,
    latest_change.updated_at,
    latest_change.deleted_at,
    latest_change.ingestion_date,
    coalesce(latest_change.deleted_at is not null or latest_change.cdc_operation = 'D', false) as is_deleted
from latest_change
{{ skip_versions_older_than_current('latest_change', 'product_id', 'updated_at') }}
