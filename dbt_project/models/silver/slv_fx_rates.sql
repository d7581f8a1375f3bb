{{ config(materialized='table') }}
{#- One rate per currency and business day (the latest publication wins), with the days it applies to: from its
    date until the next published rate. Rates exist on business days only, so an amount of a weekend or holiday is
    converted at the latest rate before it (macro fx_rate_valid_on). Small (three rows a business day): rebuilt whole
    each run, which keeps valid_until right when a late rate arrives. -#}

with latest_publication as (

    select * from (
        select
            rates.*,
            row_number() over (
                partition by rates.base_currency, rates.rate_date
                order by rates.published_at desc, rates.ingestion_date desc, rates.ingested_at desc
            ) as publication_rank
        from {{ ref('brz_partner__fx_rates') }} as rates
    ) as publications
    where publication_rank = 1

)

select
    base_currency,
    quote_currency,
    rate_date,
    fx_rate,
    rate_date as valid_from,
    published_at,
    ingestion_date,
    lead(rate_date) over (partition by base_currency order by rate_date) as valid_until
from latest_publication
