{#- The run's data interval, from the vars Airflow passes (ISO 8601 timestamps). Dates are what raw partitions
    (ingestion_date) are keyed on. -#}

{% macro interval_start_date() -%}
    {{ return(var('data_interval_start')[:10] if var('data_interval_start') else none) }}
{%- endmacro %}

{% macro interval_end_date() -%}
    {{ return(var('data_interval_end')[:10] if var('data_interval_end') else none) }}
{%- endmacro %}

{#- Restricts a bronze read to the raw partitions of the interval. Without an interval (a build by hand) it reads all. -#}
{% macro raw_partitions_in_interval(column='ingestion_date') -%}
    {%- if interval_start_date() and interval_end_date() -%}
        {{ column }} >= cast('{{ interval_start_date() }}' as date)
        and {{ column }} < cast('{{ interval_end_date() }}' as date)
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- Silver re-reads bronze from a few days before the interval (var lookback_days) to merge late-arriving data. -#}
{% macro bronze_changes_since_lookback(column='ingestion_date') -%}
    {%- if interval_start_date() -%}
        {{ column }} >= {{ dbt.dateadd('day', -1 * var('lookback_days'), "cast('" ~ interval_start_date() ~ "' as date)") }}
        {%- if interval_end_date() %} and {{ column }} < cast('{{ interval_end_date() }}' as date){% endif %}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}
