"""The data catalog (medalflow.governance.catalog, `make catalog`) over the project's real dbt manifest, source configs
and DAG files: Portuguese and English business words find the models, columns, raw datasets, DAGs and tasks meant."""

from __future__ import annotations

import pytest

from medalflow.governance.catalog import (
    DAG,
    MODEL,
    RAW,
    TASK,
    Asset,
    Catalog,
    Column,
    folded,
    project_catalog,
    render_asset,
)
from medalflow_cli import main as cli_main


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return project_catalog()


def names(hits, kind: str) -> set[str]:
    return {hit.asset.name for hit in hits if hit.asset.kind == kind}


def test_risco_cambial_finds_the_fx_models_in_any_case_and_without_accents(catalog):
    hits = catalog.search("risco cambial")
    assert {"slv_fx_rates", "ml_order_features"} <= names(hits, MODEL)
    assert "agg_monthly_orders" not in names(hits, MODEL)
    assert names(catalog.search("RISCO CAMBIAL"), MODEL) == names(hits, MODEL)
    assert names(catalog.search("FX risk"), MODEL) == names(hits, MODEL)  # the glossary's English term


def test_fluxo_de_caixa_finds_the_cash_flow_its_fact_and_their_tasks(catalog):
    hits = catalog.search("fluxo de caixa")
    assert {"agg_monthly_cash_flow", "fct_order_correlated"} <= names(hits, MODEL)
    assert "medallion: agg_monthly_cash_flow" in names(hits, TASK)
    assert "slv_forecast_monthly" not in names(hits, MODEL)  # "de" alone matches nearly everything; the phrase does not


def test_core_domain_finds_the_orders_models_and_the_fact(catalog):
    hits = catalog.search("core domain")
    assert {"slv_orders", "fct_order_correlated", "agg_monthly_orders", "ml_order_features"} <= names(hits, MODEL)
    domains = {hit.asset.name: hit.asset.domain for hit in hits if hit.asset.kind == MODEL}
    assert domains["fct_order_correlated"] == "Core Domain"
    assert "slv_fx_rates" not in domains
    assert names(catalog.search("dominio central"), MODEL) >= {"slv_orders", "fct_order_correlated"}


def test_cpf_finds_the_tax_id_columns_from_raw_to_silver_with_their_pii_flags(catalog):
    hits = {hit.asset.name: hit for hit in catalog.search("cpf")}
    raw = hits["erp.customers"]
    assert raw.asset.kind == RAW
    raw_tax_id = {column.name: column for column in raw.columns}["tax_id"]
    assert raw_tax_id.pii_type == "tax_id"
    silver_tax_id = {column.name: column for column in hits["slv_customers"].columns}["tax_id_hash"]
    assert (silver_tax_id.pii_type, silver_tax_id.pii_protection) == ("tax_id", "hmac_sha256")
    assert "extract_erp: extract_customers" in hits
    assert "agg_monthly_orders" not in hits


def test_raw_datasets_carry_their_declared_columns_and_the_dbt_sources_descriptions(catalog):
    raw = {asset.name: asset for asset in catalog.assets if asset.kind == RAW}
    assert {"erp.customers", "erp.orders", "partner.fx_rates", "partner.payments", "files.shipments"} <= set(raw)
    customers = raw["erp.customers"]
    assert customers.schema == "raw/erp/customers"
    assert [column.name for column in customers.columns][:3] == ["customer_id", "name", "email"]
    assert all(column.data_type for column in customers.columns)
    assert {column.name for column in customers.pii_columns} >= {"name", "email", "tax_id", "phone"}


def test_every_dag_is_in_the_catalog_with_a_description(catalog):
    dags = {asset.name: asset for asset in catalog.assets if asset.kind == DAG}
    assert {"medallion", "maintenance", "extract_erp", "extract_partner_api"} <= set(dags)
    assert all(asset.description for asset in dags.values())
    assert "bronze -> silver -> gold" in dags["medallion"].description


def test_a_listing_shows_every_asset_with_its_schema(capsys):
    assert cli_main(["catalog"]) == 0
    listing = capsys.readouterr().out
    for expected in (
        "raw dataset | raw | erp.customers",
        "model | silver | fct_order_correlated",
        "model | gold | agg_monthly_cash_flow",
        "- tax_id string  [PII: tax_id]",  # the type the source config declares
        "[PII: tax_id, hmac_sha256]",
        "dag | orchestration | medallion",
    ):
        assert expected in listing


def test_the_cli_prints_kind_layer_name_owner_tags_and_pii(capsys):
    assert cli_main(["catalog", "Risco Cambial"]) == 0
    out = capsys.readouterr().out
    assert "model | gold | ml_order_features" in out
    assert "owner: data-platform; tags: gold, internal, core_domain; domain: Core Domain" in out
    assert "pii: none; readers: pipeline, gold consumer" in out
    assert cli_main(["catalog", "no such thing anywhere"]) == 0
    assert capsys.readouterr().out == 'no asset matches "no such thing anywhere"\n'


def test_a_missing_manifest_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make manifest"):
        project_catalog(manifest_path=tmp_path / "manifest.json")


def test_rendering_names_the_pii_columns_and_how_they_are_protected():
    asset = Asset(
        kind=MODEL,
        layer="silver",
        name="slv_people",
        description="People.",
        tags=("silver",),
        columns=(Column("person_id", "bigint"), Column("email_hash", "varchar", "Hashed e-mail.", "email", "hmac")),
    )
    text = render_asset(asset)
    assert "pii: email_hash (email)" in text
    assert "- email_hash varchar  [PII: email, hmac]  Hashed e-mail." in text
    assert folded("Ação  Cambial") == "acao cambial"
