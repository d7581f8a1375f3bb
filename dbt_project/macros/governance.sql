{#- Business tags and access control on the warehouses that have them (README, "Find, trace and protect data").

    The classification comes from the layer (dbt_project.yml: meta.data_classification), the domain from each
    model's yml (meta.domain), personal columns from their meta (pii, pii_type). Athena gets the same tags as Lake Formation tags
    through dbt-athena's lf_tags_config (in the yml); Snowflake through the statements below: object tags on every
    table, a tag and a masking policy on every personal column, so only the pipeline's role
    (MEDALFLOW_SNOWFLAKE_ROLE) reads them in clear. DuckDB has neither: its consumer reads a gold-only file
    (medalflow.governance.consumer).

    MEDALFLOW_DBT_ACCESS_CONTROL=false leaves out what fakesnow cannot run (masking policies; dbt's grants, see
    dbt_project.yml): those statements are logged ("not executed: ...") instead of sent. Tags are always sent. -#}

{#- Snowflake's tags, in the schema <database>.GOVERNANCE, with what each holds. -#}
{% macro governance_tags() -%}
    {{ return({
        'medalflow_layer': 'Medallion layer: bronze, silver or gold',
        'medalflow_classification': 'restricted (personal data in clear), confidential (pseudonymised), internal (aggregates)',
        'medalflow_domain': 'Business domain, e.g. Core Domain (orders and their fact)',
        'medalflow_pii_type': 'Kind of personal data in the column: person_name, email, tax_id, phone',
    }) }}
{%- endmacro %}

{% macro snowflake_governance_schema() -%}
    {{ return(target.database ~ '.governance') }}
{%- endmacro %}

{% macro snowflake_masking_policy() -%}
    {{ return(snowflake_governance_schema() ~ '.mask_pii_string') }}
{%- endmacro %}

{#- The role that reads personal columns in clear: the pipeline's own (profiles.yml's role). -#}
{% macro snowflake_pipeline_role() -%}
    {%- set role = env_var('MEDALFLOW_SNOWFLAKE_ROLE', 'TRANSFORMER') | upper -%}
    {%- if not modules.re.fullmatch('[A-Z_][A-Z0-9_$]*', role) -%}
        {{ exceptions.raise_compiler_error("MEDALFLOW_SNOWFLAKE_ROLE must be a plain Snowflake role name (letters, digits, _ and $), got '" ~ role ~ "'") }}
    {%- endif -%}
    {{ return(role) }}
{%- endmacro %}

{% macro governance_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{% macro access_control_enabled() -%}
    {{ return(env_var('MEDALFLOW_DBT_ACCESS_CONTROL', 'true') | lower != 'false') }}
{%- endmacro %}

{#- Runs a statement, or, for access control the warehouse cannot run (MEDALFLOW_DBT_ACCESS_CONTROL=false), logs it. -#}
{% macro run_governance_statement(sql, access_control=false) -%}
    {%- if access_control and not access_control_enabled() -%}
        {{ log('medalflow governance, not executed (MEDALFLOW_DBT_ACCESS_CONTROL=false): ' ~ sql, info=false) }}
    {%- else -%}
        {%- do run_query(sql) -%}
    {%- endif -%}
{%- endmacro %}

{#- on-run-start: the tags and the masking policy exist before any model uses them (idempotent). -#}
{% macro create_governance_objects() -%}
    {{ return(adapter.dispatch('create_governance_objects', 'medalflow')()) }}
{%- endmacro %}

{% macro default__create_governance_objects() -%}
{%- endmacro %}

{% macro snowflake__create_governance_objects() -%}
    {%- if execute -%}
        {%- set schema = snowflake_governance_schema() -%}
        {%- do run_governance_statement('create schema if not exists ' ~ schema) -%}
        {%- for tag, comment in governance_tags().items() -%}
            {%- do run_governance_statement('create tag if not exists ' ~ schema ~ '.' ~ tag ~ ' comment = ' ~ governance_literal(comment)) -%}
        {%- endfor -%}
        {%- set body = "case when current_role() in ('" ~ snowflake_pipeline_role() ~ "') then val else '***MASKED***' end" -%}
        {#- Created once, then its body kept current (a policy in use cannot be replaced). -#}
        {%- do run_governance_statement('create masking policy if not exists ' ~ snowflake_masking_policy()
            ~ ' as (val string) returns string -> ' ~ body, access_control=true) -%}
        {%- do run_governance_statement('alter masking policy ' ~ snowflake_masking_policy() ~ ' set body -> ' ~ body,
            access_control=true) -%}
    {%- endif -%}
{%- endmacro %}

{#- A node's personal columns by name: their pii_type (column meta, dbt 1.10+ config.meta over the legacy meta). -#}
{% macro governance_pii_columns(node) -%}
    {%- set found = {} -%}
    {%- for name, column in (node.columns or {}).items() -%}
        {%- set meta = {} -%}
        {%- do meta.update(column.meta or {}) -%}
        {%- do meta.update((column.config or {}).meta or {}) -%}
        {%- if meta.get('pii') -%}
            {%- do found.update({name: meta.get('pii_type') or 'personal_data'}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{#- post-hook of every model and snapshot: tags the relation (and, on Snowflake, masks its personal columns). -#}
{% macro apply_governance() -%}
    {{ return(adapter.dispatch('apply_governance', 'medalflow')()) }}
{%- endmacro %}

{#- DuckDB: nothing to tag. Athena: dbt-athena applies lf_tags_config itself after building the table. -#}
{% macro default__apply_governance() -%}
{%- endmacro %}

{% macro snowflake__apply_governance() -%}
    {%- if execute -%}
        {%- set meta = model.config.meta or {} -%}
        {%- set schema = snowflake_governance_schema() -%}
        {%- set kind = 'view' if model.config.materialized == 'view' else 'table' -%}
        {%- set table_tags = [] -%}
        {%- for tag, key in [('medalflow_layer', 'layer'), ('medalflow_classification', 'data_classification'), ('medalflow_domain', 'domain')] -%}
            {%- if meta.get(key) -%}
                {%- do table_tags.append(schema ~ '.' ~ tag ~ ' = ' ~ governance_literal(meta[key])) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if table_tags -%}
            {%- do run_governance_statement('alter ' ~ kind ~ ' ' ~ this ~ ' set tag ' ~ table_tags | join(', ')) -%}
        {%- endif -%}
        {%- for column, pii_type in governance_pii_columns(model).items() -%}
            {%- do run_governance_statement('alter ' ~ kind ~ ' ' ~ this ~ ' modify column ' ~ column ~ ' set tag '
                ~ schema ~ '.medalflow_pii_type = ' ~ governance_literal(pii_type)) -%}
            {#- force: replaces the policy an incremental table already has on the column. -#}
            {%- do run_governance_statement('alter ' ~ kind ~ ' ' ~ this ~ ' modify column ' ~ column
                ~ ' set masking policy ' ~ snowflake_masking_policy() ~ ' force', access_control=true) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
