{#- PII in silver: a deterministic hash (the same input gives the same hash on every warehouse and every run, so
    hashed columns still join), salted with env var MEDALFLOW_PII_SALT so a hash cannot be looked up in a rainbow
    table of known e-mails or CPFs. Inputs are normalised first (trimmed, lower case; digits only for documents). -#}
{% macro pii_hash(expression) -%}
    {{ dbt.hash(dbt.concat(["'" ~ env_var('MEDALFLOW_PII_SALT', '') ~ "'", expression])) }}
{%- endmacro %}

{% macro normalized_email(column) -%}
    lower(trim({{ column }}))
{%- endmacro %}

{#- Keeps digits only: '338.532.030-51' and '33853203051' hash alike. -#}
{% macro digits_only(column) -%}
    {{ dbt.replace(dbt.replace(dbt.replace(dbt.replace(dbt.replace(column, "'.'", "''"), "'-'", "''"), "'/'", "''"), "' '", "''"), "'+'", "''") }}
{%- endmacro %}

{#- Readable but not identifying: the last four characters, the rest starred. -#}
{% macro mask_tail(column, visible=4) -%}
    {{ dbt.concat(["'****'", dbt.right(column, visible)]) }}
{%- endmacro %}
