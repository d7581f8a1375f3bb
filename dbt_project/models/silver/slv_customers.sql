{{ config(unique_key='customer_id') }}
{#- Current state of every customer, PII protected: e-mail, CPF/CNPJ and phone become keyed hashes (HMAC-SHA256 of
    the normalised value, macros/pii.sql: they still join and count distinct), the phone also keeps its last four
    digits for support, the name is dropped. The e-mail's domain is hashed too: a company's domain spells its name and
    a person's own domain can name them; hashed, customers still group by domain. Deletes stay as soft
    deletes. History of these rows is kept by the snapshot snp_customers (SCD2). -#}

with changes as (

    select * from {{ ref('brz_erp__customers') }}
    {% if is_incremental() %}
        where {{ bronze_changes_since_lookback('ingestion_date') }}
    {% endif %}

),

latest_change as (

    {{ latest_version_per_key('changes', 'customer_id', 'updated_at') }}

)

select
    latest_change.customer_id,
    {{ pii_hash(normalized_email('latest_change.email')) }} as email_hash,
    {{ pii_hash(dbt.split_part(normalized_email('latest_change.email'), "'@'", 2)) }} as email_domain_hash,
    {{ pii_hash(digits_only('latest_change.tax_id')) }} as tax_id_hash,
    case when {{ dbt.length(digits_only('latest_change.tax_id')) }} = 14 then 'CNPJ' else 'CPF' end as tax_id_kind,
    {{ pii_hash(digits_only('latest_change.phone')) }} as phone_hash,
    {{ mask_tail('latest_change.phone') }} as phone_masked,
    latest_change.city,
    latest_change.state_code,
    latest_change.customer_segment,
    latest_change.created_at,
    latest_change.updated_at,
    latest_change.deleted_at,
    latest_change.ingestion_date,
    coalesce(latest_change.deleted_at is not null or latest_change.cdc_operation = 'D', false) as is_deleted
from latest_change
{{ skip_versions_older_than_current('latest_change', 'customer_id', 'updated_at') }}
