{#- Merge settings for a model that keeps live rows only: rows flagged deleted upstream are removed when matched and
    never inserted. Each warehouse spells this differently, so it is one macro dispatched per adapter, used as
    {{ config(**purge_deleted_merge_config('is_deleted')) }}:
    * Athena (Iceberg merge, aliases src/target): a delete condition and an insert condition;
    * DuckDB: dbt-duckdb's merge clauses (delete when matched and flagged, insert when not matched and not flagged);
    * Snowflake and others: the default merge upserts, then a post-hook deletes the flagged rows in the same run. -#}
{% macro purge_deleted_merge_config(flag) -%}
    {{ return(adapter.dispatch('purge_deleted_merge_config', 'medalflow')(flag)) }}
{%- endmacro %}

{% macro athena__purge_deleted_merge_config(flag) -%}
    {{ return({'delete_condition': 'src.' ~ flag, 'insert_condition': 'not src.' ~ flag}) }}
{%- endmacro %}

{% macro duckdb__purge_deleted_merge_config(flag) -%}
    {{ return({'merge_clauses': {
        'when_matched': [
            {'condition': 'DBT_INTERNAL_SOURCE.' ~ flag, 'action': 'delete'},
            {'action': 'update', 'mode': 'by_name'},
        ],
        'when_not_matched': [
            {'condition': 'not DBT_INTERNAL_SOURCE.' ~ flag, 'action': 'insert', 'mode': 'by_name'},
        ],
    }}) }}
{%- endmacro %}

{% macro default__purge_deleted_merge_config(flag) -%}
    {{ return({'post_hook': ['delete from {{ this }} where ' ~ flag]}) }}
{%- endmacro %}
