{#- The observability layer (models/observability): pipeline facts read from the ops raw datasets. -#}

{#- An incremental run reads only the partitions landed since a few days (var observability_lookback_days) before the
    newest fact already in the model, so a run landed again (a retry added an attempt) is merged again. The first run
    reads everything. -#}
{% macro observability_new_landings(newest_column, partition_column='ingestion_date') -%}
    {%- if is_incremental() -%}
        where {{ partition_column }} >= coalesce(
            (select {{ dbt.dateadd('day', -1 * var('observability_lookback_days'), 'max(cast(' ~ newest_column ~ ' as date))') }}
             from {{ this }}),
            {{ date_literal('1970-01-01') }}
        )
    {%- endif -%}
{%- endmacro %}

{#- What an Athena query cost: Athena bills the bytes it scanned, at least 10 MB per query (var
    athena_min_bytes_per_query), at var athena_price_per_tb_usd per TB (10^12 bytes). Null when the adapter reports no
    bytes (DuckDB, Snowflake: no per-query price). Rounded to 1e-10 USD, so sums do not drift with float
    noise. -#}
{% macro athena_query_cost_usd(bytes_column) -%}
    case
        when {{ bytes_column }} is null then null
        else round(
            cast(greatest({{ bytes_column }}, {{ var('athena_min_bytes_per_query') }}) as double)
            / 1e12 * {{ var('athena_price_per_tb_usd') }},
            10
        )
    end
{%- endmacro %}

{#- An ops raw dataset (models/observability/_ops__sources.yml), read like every raw dataset (raw_source: an empty
    relation on DuckDB before anything landed). A unit test reads its given rows instead. -#}
{% macro ops_source(table_name) -%}
    {%- if model.resource_type == 'unit_test' -%}
        {{ return(source('ops', table_name)) }}
    {%- endif -%}
    {{ return(raw_source('ops', table_name)) }}
{%- endmacro %}

