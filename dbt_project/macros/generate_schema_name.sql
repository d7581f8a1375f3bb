{#- Layer folders name their schema outright (bronze, silver, gold) instead of dbt's "<target>_<custom>" default,
    so every environment has the same three schemas inside its own database or catalog. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
