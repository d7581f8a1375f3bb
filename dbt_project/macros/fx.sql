{#- FX conversion to BRL. Rates are published on Brazilian business days only, so an amount is converted at the latest
    rate on or before its date: slv_fx_rates gives every rate the days it is valid for [valid_from, valid_until). -#}
{% macro fx_rate_valid_on(fx_alias, currency, on_date) -%}
    {{ fx_alias }}.base_currency = {{ currency }}
    and {{ fx_alias }}.valid_from <= {{ on_date }}
    and ({{ fx_alias }}.valid_until is null or {{ fx_alias }}.valid_until > {{ on_date }})
{%- endmacro %}

{#- An amount in BRL: BRL amounts as they are, foreign ones at the rate (null when no rate is known yet). -#}
{% macro to_brl(amount, currency, rate) -%}
    cast(round(case when {{ currency }} = 'BRL' then {{ amount }} else {{ amount }} * {{ rate }} end, 2) as decimal(18, 2))
{%- endmacro %}
