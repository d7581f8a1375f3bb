{#- When a raw source was last landed, for `dbt source freshness` (the sources' loaded_at_query).

    Fresh means the extraction landed the interval, not that the source changed in it: a day without changes
    (suppliers, FX over a holiday weekend) lands a zero-row partition that carries no _ingested_at. On DuckDB the
    landed time is the end of the latest ingestion_date partition, read from the file names; the tables the other
    warehouses register hold rows only, so there it is the last record's _ingested_at. -#}
{% macro raw_source_loaded_at(source_node) -%}
    {%- if target.type == 'duckdb' -%}
        select max(cast(regexp_extract(file, 'ingestion_date=([0-9-]+)', 1) as date)) + interval 1 day
        from glob('{{ source_node.meta.lake_files | replace('{name}', source_node.name) }}')
    {%- else -%}
        select max(_ingested_at) from {{ source(source_node.source_name, source_node.name) }}
    {%- endif -%}
{%- endmacro %}
