{#- The run's data interval, from the vars Airflow passes (ISO 8601 timestamps). Dates are what raw partitions
    (ingestion_date) are keyed on. -#}

{#- One bound of the interval: --vars when given (a build by hand), else the environment variable Airflow sets
    (MEDALFLOW_DATA_INTERVAL_START / _END). The environment is read only while executing: read at parse time, a new
    interval would invalidate dbt's partial parse and every task would pay for a full re-parse. -#}
{% macro data_interval_bound(name) -%}
    {%- set value = var(name) -%}
    {%- if not value and execute -%}
        {%- set value = env_var('MEDALFLOW_' ~ (name | upper), '') -%}
    {%- endif -%}
    {{ return(value or none) }}
{%- endmacro %}

{% macro interval_start_date() -%}
    {%- set value = data_interval_bound('data_interval_start') -%}
    {{ return(value[:10] if value else none) }}
{%- endmacro %}

{% macro interval_end_date() -%}
    {%- set value = data_interval_bound('data_interval_end') -%}
    {{ return(value[:10] if value else none) }}
{%- endmacro %}

{#- A date literal every warehouse reads the same way. -#}
{% macro date_literal(iso_date) -%}
    cast('{{ iso_date }}' as date)
{%- endmacro %}

{#- Restricts a bronze read to the raw partitions of the interval. Without an interval (a build by hand) it reads all. -#}
{% macro raw_partitions_in_interval(column='ingestion_date') -%}
    {%- if interval_start_date() and interval_end_date() -%}
        {{ column }} >= {{ date_literal(interval_start_date()) }}
        and {{ column }} < {{ date_literal(interval_end_date()) }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- The first day silver re-reads: the interval's start minus var lookback_days (late-arriving data). -#}
{% macro lookback_start_date() -%}
    {{ dbt.dateadd('day', -1 * var('lookback_days'), date_literal(interval_start_date())) }}
{%- endmacro %}

{#- Silver re-reads bronze from a few days before the interval (var lookback_days) to merge late-arriving data. -#}
{% macro bronze_changes_since_lookback(column='ingestion_date') -%}
    {%- if interval_start_date() -%}
        {{ column }} >= {{ lookback_start_date() }}
        {%- if interval_end_date() %} and {{ column }} < {{ date_literal(interval_end_date()) }}{% endif %}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- Silver facts recompute the keys whose silver rows changed since the lookback start (no upper bound: silver holds
    current state only, so a key changed after the interval is already current and recomputing it is harmless). -#}
{% macro silver_changes_since_lookback(column='ingestion_date') -%}
    {%- if interval_start_date() -%}
        {{ column }} >= {{ lookback_start_date() }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}
