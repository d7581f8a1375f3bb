-- The customer history (SCD2) has exactly one current version per customer, and versions do not overlap.
with versions as (

    select
        customer_id,
        dbt_valid_from,
        dbt_valid_to,
        lead(dbt_valid_from) over (partition by customer_id order by dbt_valid_from) as next_valid_from
    from {{ ref('snp_customers') }}

)

select
    customer_id,
    sum(case when dbt_valid_to is null then 1 else 0 end) as current_versions,
    sum(case when next_valid_from is not null and dbt_valid_to != next_valid_from then 1 else 0 end) as gaps_or_overlaps
from versions
group by 1
having
    sum(case when dbt_valid_to is null then 1 else 0 end) != 1
    or sum(case when next_valid_from is not null and dbt_valid_to != next_valid_from then 1 else 0 end) > 0
