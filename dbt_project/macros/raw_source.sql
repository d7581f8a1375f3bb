{#- The relation a bronze model reads a raw dataset from; the only macro that calls source().

    Athena and Snowflake read the raw tables registered over the lake (docs/conventions.md), which exist, empty or
    not, from the day they are registered. DuckDB reads the lake's Parquet files in place (the source's
    meta.external_location), and a dataset nothing has landed yet (a weekly source before its first Sunday, a source
    whose extractor is not deployed) has no files to read: it reads as an empty relation with the source's declared
    columns instead, so the rest of the pipeline runs. -#}
{% macro raw_source(source_name, table_name) -%}
    {{ return(adapter.dispatch('raw_source', 'medalflow')(source_name, table_name)) }}
{%- endmacro %}

{% macro default__raw_source(source_name, table_name) -%}
    {{ return(source(source_name, table_name)) }}
{%- endmacro %}

{% macro duckdb__raw_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set node = graph.sources['source.medalflow.' ~ source_name ~ '.' ~ table_name] -%}
    {%- set files = node.meta.get('lake_files', '') | replace('{name}', table_name) -%}
    {%- if not files or run_query("select count(*) from glob('" ~ files ~ "')").columns[0].values()[0] > 0 -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- do log('raw ' ~ source_name ~ '.' ~ table_name ~ ': no files at ' ~ files ~ ' yet, reading it as empty', info=true) -%}
    {%- set columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- do columns.append('cast(null as ' ~ column.data_type ~ ') as ' ~ column.name) -%}
    {%- endfor -%}
    {{ return('(select ' ~ columns | join(', ') ~ ' where 1 = 0)') }}
{%- endmacro %}
