{#- Timestamps are stored naive in UTC everywhere. Athena's Iceberg tables hold microseconds and refuse Trino's default
    timestamp(3), so the type is spelled per warehouse. -#}
{% macro type_utc_timestamp() -%}
    {{ return(adapter.dispatch('type_utc_timestamp', 'medalflow')()) }}
{%- endmacro %}

{% macro default__type_utc_timestamp() -%}
    timestamp
{%- endmacro %}

{% macro athena__type_utc_timestamp() -%}
    timestamp(6)
{%- endmacro %}
