{{
    config(
        incremental_strategy='delete+insert',
        unique_key='order_id',
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

ranked_changes as (

    select
        *,
        row_number() over (
            partition by order_id order by updated_at desc, ingested_at desc
        ) as change_rank
    from changes

),

latest_change as (

    select * from ranked_changes
    where change_rank = 1

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
    coalesce(latest_change.deleted_at is not null or latest_change.cdc_operation = 'D', false) as is_deleted
from latest_change
{% if is_incremental() %}
    left join {{ this }} as existing
        on latest_change.order_id = existing.order_id
    where existing.order_id is null or existing.updated_at <= latest_change.updated_at
{% endif %}
