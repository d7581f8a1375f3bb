{#- Publication for readers outside the warehouse (the Airflow UI's medalflow page): each model tagged observability
    plus var published_models (the gold monthly tables) written as Parquet to <lake>/_published/<model>/, replacing
    what an earlier publication wrote. `dbt run-operation publish_models` after the observability build (the
    observability DAG, make demo); `--args '{dry_run: true}'` logs the statements instead of running them.

    * DuckDB: COPY ... TO <lake>/_published/<model>/<model>.parquet, through the lake's filesystem (a local folder, or
      s3:// through the profile's fsspec filesystem). DuckDB writes a temporary file and renames it over the old one,
      so a reader sees the old table or the new one. A local folder must exist (medalflow.observability.publication
      creates them; DuckDB's COPY does not create parent folders).
    * Athena: the prefix is emptied (UNLOAD refuses a non-empty location), then UNLOAD (select ...) TO the prefix as
      Parquet: Athena's own files, named by the query.
    * Snowflake: REMOVE then COPY INTO the external stage over <lake>/_published (MEDALFLOW_SNOWFLAKE_PUBLISH_STAGE, a
      stage whose URL is the lake's _published folder, created with the storage integration), as Parquet with
      column names. -#}
{% macro publish_models(dry_run=false) -%}
    {%- set published = [] -%}
    {%- for node in graph.nodes.values() | sort(attribute='name')
        if node.resource_type == 'model' and node.package_name == project_name
           and ('observability' in node.tags or node.name in var('published_models')) -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if relation is none and not dry_run -%}
            {{ log('publish_models: ' ~ node.name ~ ' is not built yet; not published', info=true) }}
        {%- else -%}
            {%- set relation = relation or api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
            {%- set statements = adapter.dispatch('publication_statements', 'medalflow')(relation, node.name, dry_run) -%}
            {%- for statement in statements -%}
                {%- if dry_run -%}
                    {{ log('publish_models statement: ' ~ statement, info=true) }}
                {%- else -%}
                    {%- do run_query(statement) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- do published.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ log('publish_models: published ' ~ published | join(', ') ~ ' to ' ~ publication_location(), info=true) }}
{%- endmacro %}

{#- <lake>/_published: where every published model's folder is. -#}
{% macro publication_location() -%}
    {{ return(env_var('MEDALFLOW_LAKE_URI').rstrip('/') ~ '/_published') }}
{%- endmacro %}

{% macro default__publication_statements(relation, name, dry_run=false) -%}
    {{ exceptions.raise_compiler_error('publish_models: no publication for the ' ~ target.type ~ ' target') }}
{%- endmacro %}

{% macro duckdb__publication_statements(relation, name, dry_run=false) -%}
    {%- set path = publication_location() ~ '/' ~ name ~ '/' ~ name ~ '.parquet' -%}
    {{ return(["copy (select * from " ~ relation ~ ") to '" ~ path ~ "' (format parquet, compression zstd)"]) }}
{%- endmacro %}

{% macro athena__publication_statements(relation, name, dry_run=false) -%}
    {%- set location = publication_location() ~ '/' ~ name ~ '/' -%}
    {%- if not dry_run -%}
        {%- do adapter.delete_from_s3(location) -%}
    {%- endif -%}
    {{ return(["unload (select * from " ~ relation ~ ") to '" ~ location ~ "' with (format = 'PARQUET', compression = 'SNAPPY')"]) }}
{%- endmacro %}

{% macro snowflake__publication_statements(relation, name, dry_run=false) -%}
    {%- set stage = env_var('MEDALFLOW_SNOWFLAKE_PUBLISH_STAGE', '') -%}
    {%- if not stage -%}
        {{ exceptions.raise_compiler_error(
            'publish_models: set MEDALFLOW_SNOWFLAKE_PUBLISH_STAGE to the external stage over the lake\'s _published '
            ~ 'folder (e.g. MEDALFLOW.OPS.PUBLISHED); see docs/operations.md, "Observability"') }}
    {%- endif -%}
    {%- set location = '@' ~ stage ~ '/' ~ name ~ '/' -%}
    {{ return([
        "remove " ~ location,
        "copy into " ~ location ~ " from (select * from " ~ relation ~ ") file_format = (type = parquet) "
        ~ "header = true overwrite = true",
    ]) }}
{%- endmacro %}
