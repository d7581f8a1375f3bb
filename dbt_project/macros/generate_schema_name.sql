{#- Where each layer folder's models (and the snapshots, in silver) are built, per warehouse (adapter.dispatch). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ return(adapter.dispatch('generate_schema_name', 'medalflow')(custom_schema_name, node)) }}
{%- endmacro %}

{#- DuckDB, Snowflake: the layer names its schema outright (bronze, silver, gold) instead of dbt's "<target>_<custom>"
    default, so every environment has the same three schemas inside its own database or catalog. -#}
{% macro default__generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ return(target.schema) }}
    {%- endif -%}
    {{ return(custom_schema_name | trim) }}
{%- endmacro %}

{#- Athena: one Glue catalog per account and region holds every environment, so the environment is in the database's
    name: <target.schema>_<layer>, with target.schema = MEDALFLOW_ATHENA_SCHEMA = <project>_<env> (deploy/<env>.env),
    i.e. the medalflow_<env>_bronze/silver/gold databases infra/catalog.yaml creates, the only ones the MWAA execution
    role may use (Glue names allow no hyphen). The raw sources live in <target.schema>_raw (_<source>__sources.yml). -#}
{% macro athena__generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ return(target.schema) }}
    {%- endif -%}
    {{ return(target.schema ~ '_' ~ custom_schema_name | trim) }}
{%- endmacro %}
