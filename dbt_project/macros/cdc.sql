{#- Applying changes in silver: each key's latest version within the changes read, and (incremental runs) only where it
    is not older than the version already in {{ this }}. Together: newer wins, whatever order days arrive in, and a
    rerun of an interval writes the same rows again (idempotent). -#}

{#- The latest version of each key among `relation`'s rows; ties (a rerun's copy of the same version) break on the
    later ingestion. -#}
{% macro latest_version_per_key(relation, key, version_column) -%}
    select * from (
        select
            {{ relation }}.*,
            row_number() over (
                partition by {{ key }}
                order by {{ version_column }} desc, ingestion_date desc, ingested_at desc
            ) as version_rank
        from {{ relation }}
    ) as versions
    where version_rank = 1
{%- endmacro %}

{#- Joins the current rows and keeps a change only if it is at least as new (empty on a full build). -#}
{% macro skip_versions_older_than_current(change_alias, key, version_column) -%}
    {%- if is_incremental() %}
    left join {{ this }} as current_version
        on {{ change_alias }}.{{ key }} = current_version.{{ key }}
    where
        current_version.{{ key }} is null
        or current_version.{{ version_column }} <= {{ change_alias }}.{{ version_column }}
    {%- endif -%}
{%- endmacro %}
