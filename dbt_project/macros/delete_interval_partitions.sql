{#- Bronze pre-hook: an incremental run deletes the partitions of its interval before appending them again, with the
    same predicate the model reads raw with. A rerun therefore replaces its interval exactly (an interval that became
    empty included) on DuckDB, Snowflake and Athena's Iceberg tables alike (Iceberg has no delete+insert strategy). -#}
{% macro delete_interval_partitions(column='ingestion_date') -%}
    {%- if execute and is_incremental() -%}
        delete from {{ this }} where {{ raw_partitions_in_interval(column) }}
    {%- endif -%}
{%- endmacro %}
