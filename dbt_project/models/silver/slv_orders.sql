{{
    config(
        unique_key='order_id',
        partitioned_by=['month(order_date)'],
        cluster_by=['order_date'],
    )
}}
{#- Current state of every order: the ERP's changes applied in order. A late-arriving older version never
    overwrites a newer one already here; deletes are kept as soft deletes (is_deleted). -#}

with changes as (

    select * from {{ ref('brz_erp__orders') }}
    {% if is_incremental() %}
        where {{ bronze_changes_since_lookback('ingestion_date') }}
    {% endif %}

),

latest_change as (

    {{ latest_version_per_key('changes', 'order_id', 'updated_at') }}

)

select
    latest_change.order_id,
    latest_change.customer_id,
    latest_change.product_id,
    latest_change.supplier_id,
    latest_change.quantity,
    latest_change.unit_cost,
    latest_change.currency_code,
    latest_change.sale_amount_brl,
    latest_change.order_date,
    latest_change.order_status,
    latest_change.created_at,
    latest_change.updated_at,
    latest_change.deleted_at,
    latest_change.ingestion_date,
    coalesce(latest_change.deleted_at is not null or latest_change.cdc_operation = 'D', false) as is_deleted
from latest_change
{{ skip_versions_older_than_current('latest_change', 'order_id', 'updated_at') }}
