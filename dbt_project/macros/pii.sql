{#- PII in silver: a keyed hash, HMAC-SHA256 (RFC 2104) of the normalised value. Deterministic per key (the same
    input gives the same hash on every warehouse and every run, so hashed columns still join and count distinct), and
    without the key a hash cannot be reversed by hashing guesses (a list of known e-mails or every CPF).

    The key: env var MEDALFLOW_PII_KEY, set by the runtime from the Airflow connection medalflow_pii_key (its
    password; AWS Secrets Manager on MWAA), see medalflow.settings.pii_key_environment. It is read only while
    executing, never at parse time, so it is not recorded in the manifest or dbt's partial parse. (dbt's secret prefix,
    DBT_ENV_SECRET_, cannot carry it: dbt refuses such variables outside profiles.yml.) Only the key's HMAC pads reach
    the SQL: they are as sensitive as the key, and so are compiled files and the warehouse's query history.

    An empty key is refused unless MEDALFLOW_PII_ALLOW_DEMO_KEY=true (the laptop demo), which uses a public demo key:
    its hashes do not protect anything. -#}


{#- Commands that only render SQL (compile, docs generate, ls, parse, freshness) need no key: without one they render
    a placeholder, so the maintenance DAG's docs build on MWAA needs no secret. Anything that writes or queries data
    (run, build, test, snapshot, show, run-operation) needs the real key. -#}
{% macro pii_key() -%}
    {%- set key = env_var('MEDALFLOW_PII_KEY', '') -%}
    {%- if not key -%}
        {%- if env_var('MEDALFLOW_PII_ALLOW_DEMO_KEY', 'false') | lower == 'true' -%}
            {%- set key = 'medalflow-demo-pii-key' -%}
        {%- elif flags.WHICH in ['compile', 'generate', 'list', 'ls', 'parse', 'freshness'] -%}
            {%- set key = 'no-key-rendering-only' -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error(
                "The PII hashing key is empty (MEDALFLOW_PII_KEY): create the Airflow connection 'medalflow_pii_key' "
                ~ "with the key as its password (on MWAA, the secret airflow/connections/medalflow_pii_key), e.g. "
                ~ "`openssl rand -hex 32`; only the laptop demo may use the public demo key "
                ~ "(MEDALFLOW_PII_ALLOW_DEMO_KEY=true)") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(key) }}
{%- endmacro %}

{#- The key's bytes as hex. The key is printable ASCII of at most 64 characters (one SHA-256 block, so RFC 2104 uses
    it as it is): Jinja has no ord(), so each character is looked up in the printable range. -#}
{% macro pii_key_bytes(key) -%}
    {%- set printable = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~" -%}
    {%- if key | length > 64 -%}
        {{ exceptions.raise_compiler_error("The PII hashing key (connection 'medalflow_pii_key') is longer than 64 characters: use a shorter one, e.g. `openssl rand -hex 32`") }}
    {%- endif -%}
    {%- set codes = [] -%}
    {%- for character in key -%}
        {%- if character not in printable -%}
            {{ exceptions.raise_compiler_error("The PII hashing key (connection 'medalflow_pii_key') has a character that is not printable ASCII: use e.g. `openssl rand -hex 32`") }}
        {%- endif -%}
        {%- do codes.append(printable.index(character) + 32) -%}
    {%- endfor -%}
    {{ return(codes) }}
{%- endmacro %}

{#- The key zero-padded to the 64-byte block and XORed with a pad byte (0x36 inner, 0x5c outer), as hex. -#}
{% macro pii_key_pad_hex(codes, pad) -%}
    {%- set pad_hex = [] -%}
    {%- for position in range(64) -%}
        {%- set code = codes[position] if position < codes | length else 0 -%}
        {%- set xor = namespace(value=0) -%}
        {%- for bit in range(8) -%}
            {%- set weight = 2 ** bit -%}
            {%- if (code // weight) % 2 != (pad // weight) % 2 -%}
                {%- set xor.value = xor.value + weight -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do pad_hex.append('%02x' | format(xor.value)) -%}
    {%- endfor -%}
    {{ return(pad_hex | join('')) }}
{%- endmacro %}

{#- HMAC-SHA256 of a text expression as 64 lower-case hex characters; null stays null. At parse time (no key read)
    it renders a placeholder of the same type. -#}
{% macro pii_hmac(expression) -%}
    {%- if not execute -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        {%- set codes = pii_key_bytes(pii_key()) -%}
        {{ return(adapter.dispatch('pii_hmac', 'medalflow')(expression, codes)) }}
    {%- endif -%}
{%- endmacro %}

{#- DuckDB (and anything with sha256 over blobs and unhex): RFC 2104, H((K ^ opad) || H((K ^ ipad) || m)). -#}
{% macro default__pii_hmac(expression, codes) -%}
    sha256(
        unhex('{{ pii_key_pad_hex(codes, 92) }}')
        || unhex(sha256(unhex('{{ pii_key_pad_hex(codes, 54) }}') || encode(cast({{ expression }} as varchar))))
    )
{%- endmacro %}

{#- Athena (Trino) has HMAC built in. -#}
{% macro athena__pii_hmac(expression, codes) -%}
    {%- set key_hex = [] -%}
    {%- for code in codes -%}{%- do key_hex.append('%02x' | format(code)) -%}{%- endfor -%}
    lower(to_hex(hmac_sha256(to_utf8(cast({{ expression }} as varchar)), from_hex('{{ key_hex | join('') }}'))))
{%- endmacro %}

{#- Snowflake has no HMAC function: RFC 2104 from SHA2_BINARY over binary values. -#}
{% macro snowflake__pii_hmac(expression, codes) -%}
    lower(hex_encode(sha2_binary(
        concat(
            hex_decode_binary('{{ pii_key_pad_hex(codes, 92) }}'),
            sha2_binary(concat(
                hex_decode_binary('{{ pii_key_pad_hex(codes, 54) }}'),
                to_binary(cast({{ expression }} as varchar), 'UTF-8')
            ), 256)
        ), 256)))
{%- endmacro %}

{#- The protected form of a classified column: the keyed hash of its normalised value (below). -#}
{% macro pii_hash(expression) -%}
    {{ pii_hmac(expression) }}
{%- endmacro %}

{% macro normalized_email(column) -%}
    lower(trim({{ column }}))
{%- endmacro %}

{#- A person's name compared case- and space-insensitively. -#}
{% macro normalized_name(column) -%}
    lower(trim({{ column }}))
{%- endmacro %}

{#- Keeps digits only: '338.532.030-51' and '33853203051' hash alike. -#}
{% macro digits_only(column) -%}
    {{ dbt.replace(dbt.replace(dbt.replace(dbt.replace(dbt.replace(dbt.replace(dbt.replace(column, "'.'", "''"), "'-'", "''"), "'/'", "''"), "' '", "''"), "'+'", "''"), "'('", "''"), "')'", "''") }}
{%- endmacro %}

{#- Readable but not identifying: the last four characters, the rest starred. -#}
{% macro mask_tail(column, visible=4) -%}
    {{ dbt.concat(["'****'", dbt.right(column, visible)]) }}
{%- endmacro %}

{#- For tests: the keyed hash of a literal, to compare with Python's hmac on each warehouse. -#}
{% macro pii_hmac_of_literal(value) -%}
    {%- set query -%}
        select {{ pii_hmac("'" ~ value ~ "'") }} as digest
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {{ log('pii_hmac_of_literal=' ~ result.columns[0].values()[0], info=true) }}
{%- endmacro %}
