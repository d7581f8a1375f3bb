{#- Registers the lake's raw zone as tables the warehouse can read: `dbt run-operation create_raw_tables`, once per
    environment and again when a source gains a column. Idempotent. Reads the sources' declared columns
    (_<source>__sources.yml), so a new source is registered by declaring it.

    * DuckDB: nothing to do; the models read the Parquet files in place (meta.external_location).
    * Athena: one external Parquet table per dataset in the Glue catalog, partitioned by ingestion_date with partition
      projection (a new day's partition is readable as soon as extraction writes it: no MSCK REPAIR, no crawler), all
      in the environment's raw database as <source>__<entity> (the sources' schema and identifier).
    * Snowflake: one table per dataset; extraction's files are loaded into it from an external stage over the lake
      (COPY INTO ... MATCH_BY_COLUMN_NAME, ingestion_date from the file path; or Snowpipe), see docs/conventions.md.

    Tables are named by the source's relation (schema, identifier), never by its name: the name is the entity, which
    locates its files in the lake ({name} in meta.lake_location). -#}
{% macro create_raw_tables() -%}
    {{ return(adapter.dispatch('create_raw_tables', 'medalflow')()) }}
{%- endmacro %}

{% macro default__create_raw_tables() -%}
    {{ log('create_raw_tables: ' ~ target.type ~ ' reads the raw Parquet files in place; nothing to register', info=true) }}
{%- endmacro %}

{#- The raw datasets, from the sources declared in this project. -#}
{% macro raw_tables() -%}
    {%- set found = [] -%}
    {%- for node in graph.sources.values() | sort(attribute='unique_id') if node.package_name == project_name -%}
        {%- do found.append(node) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{% macro athena__create_raw_tables() -%}
    {%- set lake = env_var('MEDALFLOW_LAKE_URI').rstrip('/') -%}
    {%- set hive_types = {'varchar': 'string', 'integer': 'int', 'timestamptz': 'timestamp'} -%}
    {%- for schema in raw_tables() | map(attribute='schema') | unique -%}
        {%- do run_query('create database if not exists `' ~ schema ~ '`') -%}
    {%- endfor -%}
    {%- for node in raw_tables() -%}
        {%- set location = lake ~ '/' ~ node.meta.lake_location | replace('{name}', node.name) -%}
        {%- set columns = [] -%}
        {%- for column in node.columns.values() if column.name != 'ingestion_date' -%}
            {%- do columns.append('`' ~ column.name ~ '` ' ~ hive_types.get(column.data_type, column.data_type)) -%}
        {%- endfor -%}
        {%- set ddl -%}
            create external table if not exists `{{ node.schema }}`.`{{ node.identifier }}` (
                {{ columns | join(',\n                ') }}
            )
            comment '{{ node.description | replace("'", "") | trim }}'
            partitioned by (`ingestion_date` date)
            stored as parquet
            location '{{ location }}/'
            tblproperties (
                'projection.enabled' = 'true',
                'projection.ingestion_date.type' = 'date',
                'projection.ingestion_date.format' = 'yyyy-MM-dd',
                'projection.ingestion_date.range' = '2020-01-01,NOW',
                'projection.ingestion_date.interval' = '1',
                'projection.ingestion_date.interval.unit' = 'DAYS',
                'storage.location.template' = '{{ location }}/ingestion_date=${ingestion_date}/'
            )
        {%- endset -%}
        {%- do run_query(ddl) -%}
        {{ log('create_raw_tables: ' ~ node.schema ~ '.' ~ node.identifier ~ ' over ' ~ location, info=true) }}
    {%- endfor -%}
{%- endmacro %}

{% macro snowflake__create_raw_tables() -%}
    {%- set snowflake_types = {'timestamp': 'timestamp_ntz', 'timestamptz': 'timestamp_tz'} -%}
    {%- for schema in raw_tables() | map(attribute='schema') | unique -%}
        {%- do run_query('create schema if not exists ' ~ target.database ~ '.' ~ schema) -%}
    {%- endfor -%}
    {%- for node in raw_tables() -%}
        {%- set columns = [] -%}
        {%- for column in node.columns.values() -%}
            {%- do columns.append(column.name ~ ' ' ~ snowflake_types.get(column.data_type, column.data_type)) -%}
        {%- endfor -%}
        {%- do run_query(
            'create table if not exists ' ~ target.database ~ '.' ~ node.schema ~ '.' ~ node.identifier
            ~ ' (' ~ columns | join(', ') ~ ')'
        ) -%}
        {{ log('create_raw_tables: ' ~ target.database ~ '.' ~ node.schema ~ '.' ~ node.identifier, info=true) }}
    {%- endfor -%}
{%- endmacro %}
