{{
    config(
        unique_key='order_id',
        partitioned_by=['month(order_date)'],
        cluster_by=['order_date'],
        **purge_deleted_merge_config('is_deleted')
    )
}}
{#- One row per live order, correlated with everything known about it: the customer (segment and state, no PII),
    the product, the supplier, the FX rate as of the order date (the supplier cost in BRL), the inbound and outbound
    payments (each converted to BRL at the rate as of the day it was paid: the cash flow in gold reads them from here)
    and the shipment.

    Incremental: an interval recomputes the orders whose order, payments or shipment changed since the lookback start,
    and the orders an FX rate published since then converts (placed or paid on or after the first such rate's date:
    a late rate changes the validity ranges from its date on), and merges them by order_id; an order deleted in the ERP is removed by the merge (purge_deleted_merge_config), so
    the table holds live orders only and is_deleted is always false in it. -#}

with
{% if is_incremental() %}
    fx_changes as (

        select
            base_currency,
            min(rate_date) as first_changed_rate_date
        from {{ ref('slv_fx_rates') }}
        where {{ silver_changes_since_lookback('ingestion_date') }}
        group by 1

    ),

    changed_orders as (

        select order_id from {{ ref('slv_orders') }}
        where {{ silver_changes_since_lookback('ingestion_date') }}
        union
        select order_id from {{ ref('slv_payments') }}
        where {{ silver_changes_since_lookback('ingestion_date') }}
        union
        select order_id from {{ ref('slv_shipments') }}
        where {{ silver_changes_since_lookback('ingestion_date') }}
        union
        select reconverted_orders.order_id from {{ ref('slv_orders') }} as reconverted_orders
        inner join fx_changes
            on
                reconverted_orders.currency_code = fx_changes.base_currency
                and reconverted_orders.order_date >= fx_changes.first_changed_rate_date
        union
        select reconverted_payments.order_id from {{ ref('slv_payments') }} as reconverted_payments
        inner join fx_changes
            on
                reconverted_payments.currency_code = fx_changes.base_currency
                and cast(reconverted_payments.paid_at as date) >= fx_changes.first_changed_rate_date

    ),
{% endif %}

orders as (

    select * from {{ ref('slv_orders') }}
    {% if is_incremental() %}
        where order_id in (select changed_orders.order_id from changed_orders)
    {% else %}
        where not is_deleted
    {% endif %}

),

payments_in_brl as (

    {#- Each payment in BRL at the rate as of the day it was paid (what the cash flow counts). An order has at most
        one payment per direction (payment_id is derived from it; slv_payments tests the pair unique). -#}
    select
        payments.order_id,
        payments.payment_direction,
        payments.payment_status,
        payments.amount,
        payments.currency_code,
        payments.paid_at,
        {{ to_brl('payments.amount', 'payments.currency_code', 'fx.fx_rate') }} as amount_brl,
        payments.updated_at
    from {{ ref('slv_payments') }} as payments
    left join {{ ref('slv_fx_rates') }} as fx
        on {{ fx_rate_valid_on('fx', 'payments.currency_code', 'cast(payments.paid_at as date)') }}
    where payments.order_id in (select orders.order_id from orders)

),

payments as (

    select
        order_id,
        max(case when payment_direction = 'inbound' then payment_status end) as inbound_payment_status,
        max(case when payment_direction = 'inbound' then amount end) as inbound_amount,
        max(case when payment_direction = 'inbound' then currency_code end) as inbound_currency_code,
        max(case when payment_direction = 'inbound' then amount_brl end) as inbound_amount_brl,
        max(case when payment_direction = 'inbound' then paid_at end) as inbound_paid_at,
        max(case when payment_direction = 'outbound' then payment_status end) as outbound_payment_status,
        max(case when payment_direction = 'outbound' then amount end) as outbound_amount,
        max(case when payment_direction = 'outbound' then currency_code end) as outbound_currency_code,
        max(case when payment_direction = 'outbound' then amount_brl end) as outbound_amount_brl,
        max(case when payment_direction = 'outbound' then paid_at end) as outbound_paid_at,
        max(updated_at) as updated_at
    from payments_in_brl
    group by 1

),

shipments as (

    select * from {{ ref('slv_shipments') }}
    where order_id in (select orders.order_id from orders)

)

select
    orders.order_id,
    orders.order_date,
    orders.customer_id,
    customers.customer_segment,
    customers.state_code as customer_state_code,
    orders.product_id,
    products.product_category,
    orders.supplier_id,
    suppliers.country_code as supplier_country_code,
    orders.currency_code,
    orders.quantity,
    orders.unit_cost,
    fx.rate_date as fx_rate_date,
    fx.fx_rate,
    {{ to_brl('orders.unit_cost * orders.quantity', 'orders.currency_code', 'fx.fx_rate') }} as cost_brl,
    orders.sale_amount_brl,
    cast(
        orders.sale_amount_brl
        - {{ to_brl('orders.unit_cost * orders.quantity', 'orders.currency_code', 'fx.fx_rate') }}
        as decimal(18, 2)
    ) as gross_margin_brl,
    orders.order_status,
    payments.inbound_payment_status,
    payments.inbound_amount,
    payments.inbound_currency_code,
    payments.inbound_amount_brl,
    payments.inbound_paid_at,
    payments.outbound_payment_status,
    payments.outbound_amount,
    payments.outbound_currency_code,
    payments.outbound_amount_brl,
    payments.outbound_paid_at,
    shipments.shipment_id,
    shipments.shipment_channel,
    shipments.carrier,
    shipments.shipment_status,
    shipments.shipped_at,
    shipments.eta_date,
    shipments.delivered_at,
    case
        when shipments.delivered_at is not null
            then {{ dbt.datediff('shipments.eta_date', 'cast(shipments.delivered_at as date)', 'day') }}
    end as delivery_delay_days,
    orders.created_at,
    greatest(
        orders.updated_at,
        coalesce(payments.updated_at, orders.updated_at),
        coalesce(shipments.updated_at, orders.updated_at)
    ) as last_changed_at,
    orders.is_deleted
from orders
left join {{ ref('slv_customers') }} as customers
    on orders.customer_id = customers.customer_id
left join {{ ref('slv_products') }} as products
    on orders.product_id = products.product_id
left join {{ ref('slv_suppliers') }} as suppliers
    on orders.supplier_id = suppliers.supplier_id
left join {{ ref('slv_fx_rates') }} as fx
    on {{ fx_rate_valid_on('fx', 'orders.currency_code', 'orders.order_date') }}
left join payments
    on orders.order_id = payments.order_id
left join shipments
    on orders.order_id = shipments.order_id
