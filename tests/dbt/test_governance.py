"""Governance of the dbt project on DuckDB, over the demo world's raw lake:

* lineage: the monthly cash flow is built from the correlated fact only, with exactly the figures the former SQL
  (settled payments converted at the day's rate, straight from slv_payments) gives, after a full build and after
  daily incremental runs; its ancestry reaches every raw source the fact joins;
* PII: the scanner finds the personal columns of the demo's raw data, all of them classified in the dbt sources, and
  fails when one is not; silver's keyed hashes are Python's HMAC-SHA256 under the test key; no raw PII value (exact,
  lower-cased, digits only, or inside a longer value) appears in any silver or gold column.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal

import duckdb
import pytest
from conftest import TEST_PII_KEY
from warehouse import query

from medalflow.governance.pii_scan import UnclassifiedPiiError, check_lake, load_source_classification
from medalflow.settings import dbt_environment, get_settings

pytestmark = pytest.mark.integration

# agg_monthly_cash_flow as it was before it read fct_order_correlated: the reference its figures must equal.
FORMER_CASH_FLOW_SQL = """
with settled_payments as (
    select
        payments.payment_direction,
        payments.paid_at,
        cast(round(case when payments.currency_code = 'BRL' then payments.amount
                        else payments.amount * fx.fx_rate end, 2) as decimal(18, 2)) as amount_brl
    from silver.slv_payments as payments
    left join silver.slv_fx_rates as fx
        on fx.base_currency = payments.currency_code
        and fx.valid_from <= cast(payments.paid_at as date)
        and (fx.valid_until is null or fx.valid_until > cast(payments.paid_at as date))
    where payments.payment_status = 'settled'
)
select
    cast(date_trunc('month', paid_at) as date) as month_start,
    cast(extract(year from paid_at) as integer) as cash_year,
    cast(extract(month from paid_at) as integer) as cash_month,
    cast(coalesce(sum(case when payment_direction = 'inbound' then amount_brl end), 0) as decimal(18, 2)),
    cast(coalesce(sum(case when payment_direction = 'outbound' then amount_brl end), 0) as decimal(18, 2)),
    cast(coalesce(sum(case when payment_direction = 'inbound' then amount_brl end), 0)
         - coalesce(sum(case when payment_direction = 'outbound' then amount_brl end), 0) as decimal(18, 2)),
    cast(sum(case when payment_direction = 'inbound' then 1 else 0 end) as bigint),
    cast(sum(case when payment_direction = 'outbound' then 1 else 0 end) as bigint)
from settled_payments
group by 1, 2, 3
order by 1
"""
RAW_SOURCES_OF_THE_CASH_FLOW = {
    "source.medalflow.erp.orders", "source.medalflow.erp.customers", "source.medalflow.erp.products",
    "source.medalflow.erp.suppliers", "source.medalflow.partner.payments", "source.medalflow.partner.fx_rates",
    "source.medalflow.partner.shipments", "source.medalflow.files.shipments",
}  # fmt: skip


def keyed_hash(value: str) -> str:
    return hmac.new(TEST_PII_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("build", ["full_refresh", "daily"])
def test_cash_flow_from_the_fact_has_exactly_the_former_figures(build, request):
    dbt, _ = request.getfixturevalue(build)
    former = query(dbt.warehouse, FORMER_CASH_FLOW_SQL)
    gold = query(dbt.warehouse, "select * from gold.agg_monthly_cash_flow order by month_start")
    assert len(former) >= 1
    assert sum(row[6] for row in former) > 0
    assert sum(row[7] for row in former) > 0
    assert gold == former
    assert all(isinstance(row[4], Decimal) and row[4] > 0 for row in gold), "supplier payments converted"


def test_cash_flow_lineage_runs_through_the_fact_to_the_raw_sources(full_refresh):
    dbt, _ = full_refresh
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    parents = manifest["parent_map"]
    assert parents["model.medalflow.agg_monthly_cash_flow"] == ["model.medalflow.fct_order_correlated"]

    ancestors, frontier = set(), ["model.medalflow.agg_monthly_cash_flow"]
    while frontier:
        for parent in parents.get(frontier.pop(), []):
            if parent not in ancestors:
                ancestors.add(parent)
                frontier.append(parent)
    assert {node for node in ancestors if node.startswith("source.")} >= RAW_SOURCES_OF_THE_CASH_FLOW
    bronze = {node.rsplit(".", 1)[1] for node in ancestors if ".brz_" in node}
    assert {"brz_erp__orders", "brz_partner__payments", "brz_partner__fx_rates", "brz_files__shipments"} <= bronze


def test_the_scanner_finds_the_demo_pii_classified(full_refresh):
    _, builder = full_refresh
    report = check_lake(builder.lake, get_settings().dbt_project_dir)
    personal = {
        finding.location: finding.detected_type
        for finding in report.findings
        if finding.looks_personal(report.threshold)
    }
    assert personal == {
        "erp.customers.name": "person_name",
        "erp.customers.email": "email",
        "erp.customers.tax_id": "tax_id",
        "erp.customers.phone": "phone",
        "erp.suppliers.contact_email": "email",
        "forecast.projects.owner": "person_name",
    }
    by_location = {finding.location: finding for finding in report.findings}
    tax_ids = by_location["erp.customers.tax_id"]
    assert tax_ids.hits == tax_ids.sampled > 0, "every demo CPF/CNPJ has valid check digits"
    assert all(finding.classification.pii_type == personal[location] for location, finding in by_location.items()
               if location in personal)  # fmt: skip


def test_the_scanner_fails_on_an_unclassified_personal_column(full_refresh, tmp_path):
    _, builder = full_refresh
    project = tmp_path / "dbt_project"
    shutil.copytree(get_settings().dbt_project_dir / "models", project / "models")
    sources = project / "models" / "bronze" / "forecast" / "_forecast__sources.yml"
    sources.write_text(sources.read_text().replace("meta: {pii: true, pii_type: person_name}", "meta: {}"))
    assert ("forecast", "projects") in load_source_classification(project)
    with pytest.raises(UnclassifiedPiiError, match=r"forecast\.projects\.owner looks like person_name") as raised:
        check_lake(builder.lake, project)
    assert "erp.customers" not in str(raised.value)


def test_silver_hashes_are_hmac_sha256_under_the_key(full_refresh):
    dbt, builder = full_refresh
    customers = {row["customer_id"]: row for row in builder.erp_table("customers")}
    silver = query(dbt.warehouse, "select customer_id, email_hash, tax_id_hash, phone_hash from silver.slv_customers")
    assert len(silver) == len(customers) > 0
    for customer_id, email_hash, tax_id_hash, phone_hash in silver:
        customer = customers[customer_id]
        assert email_hash == keyed_hash(customer["email"].strip().lower())
        assert tax_id_hash == keyed_hash("".join(c for c in customer["tax_id"] if c.isdigit()))
        assert phone_hash == keyed_hash("".join(c for c in customer["phone"] if c.isdigit()))
    owners = query(dbt.warehouse, "select project_owner_hash from silver.slv_forecast_projects")
    assert owners
    assert all(len(digest) == 64 for (digest,) in owners)


def raw_pii_values(lake_uri: str) -> set[str]:
    """Every value of every column the dbt sources classify as PII, read from the raw lake, in the forms a leak
    could take: as is, lower-cased, and digits only (documents and phones)."""
    values: set[str] = set()
    classification = load_source_classification(get_settings().dbt_project_dir)
    with duckdb.connect() as connection:
        for (source, table), columns in classification.items():
            for column, classified in columns.items():
                if not classified.pii:
                    continue
                files = f"{lake_uri}/raw/{source}/{table}/*/*.parquet"
                rows = connection.execute(f"select distinct {column} from read_parquet('{files}')").fetchall()
                for (value,) in rows:
                    if value:
                        digits = "".join(c for c in value if c.isdigit())
                        values |= {value, value.lower(), value.strip().lower()}
                        if len(digits) >= 8:
                            values.add(digits)
    return values


def test_no_raw_pii_value_in_silver_or_gold(full_refresh):
    dbt, builder = full_refresh
    pii = raw_pii_values(builder.lake.uri)
    assert len(pii) > 100
    with duckdb.connect(str(dbt.warehouse), read_only=True) as connection:
        connection.execute("create temporary table raw_pii (value varchar)")
        connection.executemany("insert into raw_pii values (?)", [[value] for value in sorted(pii)])
        columns = connection.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema in ('silver', 'gold') order by 1, 2, 3"
        ).fetchall()
        assert len(columns) > 100
        leaked = {}
        for schema, table, column in columns:
            (count,) = connection.execute(
                f'select count(*) from (select distinct cast("{column}" as varchar) as text from {schema}.{table}) '
                "as stored join raw_pii on stored.text = raw_pii.value "
                "or lower(stored.text) = raw_pii.value or contains(lower(stored.text), lower(raw_pii.value))"
            ).fetchone()
            if count:
                leaked[f"{schema}.{table}.{column}"] = count
    assert leaked == {}


def test_dbt_refuses_an_empty_pii_key_outside_the_demo(tmp_path):
    settings = get_settings()
    environment = {
        **os.environ,
        **dbt_environment(settings),
        "MEDALFLOW_LAKE_URI": str(tmp_path / "lake"),
        "MEDALFLOW_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "MEDALFLOW_PII_KEY": "",
        "MEDALFLOW_PII_ALLOW_DEMO_KEY": "false",
    }
    command = [settings.dbt_executable, "run", "--select", "slv_forecast_projects", "--project-dir",
               str(settings.dbt_project_dir), "--profiles-dir", str(settings.dbt_profiles_dir),
               "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]  # fmt: skip
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    assert completed.returncode != 0
    assert "create the Airflow connection 'medalflow_pii_key'" in completed.stdout
    # Rendering only (compile, docs generate: the maintenance DAG's docs on MWAA) needs no key.
    command[1] = "compile"
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:]


# --- business tags and the gold-only consumer --------------------------------------------------------------------

CLASSIFICATION_OF_LAYER = {"bronze": "restricted", "silver": "confidential", "gold": "internal"}
CORE_DOMAIN = {"brz_erp__orders", "slv_orders", "fct_order_correlated", "agg_monthly_orders", "ml_order_features"}


def built_nodes(manifest: dict) -> list[dict]:
    """The medallion's models and snapshots (the observability models describe the platform, not the business)."""
    return [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "snapshot")
        and node["package_name"] == "medalflow"
        and node["schema"] in CLASSIFICATION_OF_LAYER
    ]


def pii_columns(node: dict) -> dict[str, list[str]]:
    """The node's personal columns grouped by pii_type, as its column meta says."""
    found: dict[str, list[str]] = {}
    for name, column in node["columns"].items():
        meta = {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}
        if meta.get("pii"):
            found.setdefault(meta["pii_type"], []).append(name)
    return found


def test_every_model_has_a_domain_and_its_layers_classification_as_meta_and_tags(full_refresh):
    dbt, _ = full_refresh
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    nodes = built_nodes(manifest)
    assert len(nodes) >= 28
    every_model = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert [node["name"] for node in every_model if not node["config"]["meta"].get("data_classification")] == []
    for node in nodes:
        meta, tags = node["config"]["meta"], node["config"]["tags"]
        layer = meta["layer"]
        assert node["schema"] == layer, node["name"]
        assert meta["data_classification"] == CLASSIFICATION_OF_LAYER[layer], node["name"]
        assert meta["domain"], node["name"]
        assert {layer, meta["data_classification"], meta["domain"].lower().replace(" ", "_")} <= set(tags), node["name"]
    domains = {node["name"]: node["config"]["meta"]["domain"] for node in nodes}
    assert {name for name in CORE_DOMAIN if domains[name] == "Core Domain"} == CORE_DOMAIN
    assert domains["slv_customers"] != "Core Domain"


def test_lake_formation_tags_are_the_meta_with_personal_columns_tagged(full_refresh):
    """dbt-athena's lf_tags_config on every model: the layer, classification and domain on the table, each personal
    column's pii_type on the column; off unless MEDALFLOW_LAKE_FORMATION=true (on AWS)."""
    dbt, _ = full_refresh
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    tagged_columns = 0
    for node in built_nodes(manifest):
        meta, lf_tags = node["config"]["meta"], node["config"]["lf_tags_config"]
        assert lf_tags["enabled"] is False, "Lake Formation only when MEDALFLOW_LAKE_FORMATION=true"
        assert lf_tags["tags"] == {
            "medalflow_layer": meta["layer"],
            "medalflow_classification": meta["data_classification"],
            "medalflow_domain": meta["domain"],
        }, node["name"]
        expected = pii_columns(node)
        assert (lf_tags.get("tags_columns") or {}).get("medalflow_pii_type", {}) == expected, node["name"]
        tagged_columns += sum(len(columns) for columns in expected.values())
    assert tagged_columns >= 17, "bronze's clear PII, silver's and the snapshot's hashes"


def test_gold_grants_go_to_the_consumer_only_where_the_warehouse_has_roles(full_refresh):
    dbt, _ = full_refresh
    manifest = json.loads((dbt.work / "target" / "manifest.json").read_text())
    for node in built_nodes(manifest):
        assert node["config"]["grants"] == {}, "DuckDB has no roles: its consumer reads a gold-only file"
        grants = node["config"].get("lf_grants")
        if node["schema"] == "gold":
            filters = grants["data_cell_filters"]
            assert filters["enabled"] is False
            assert filters["filters"]["gold_consumer_all_rows"]["row_filter"] == "true"
        else:
            assert grants is None, f"{node['name']} is not gold: no consumer grant"


def test_the_consumer_file_holds_gold_only_and_opens_read_only(full_refresh, tmp_path, monkeypatch):
    from medalflow.governance.consumer import (
        consumer_database_path,
        open_consumer_database,
        publish_after_dbt,
        publish_gold_for_consumers,
    )

    dbt, _ = full_refresh
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(dbt.warehouse, warehouse)
    assert consumer_database_path(warehouse) == tmp_path / "consumer" / "medalflow_gold.duckdb"
    counts = publish_gold_for_consumers(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        gold = dict(
            connection.execute(
                "select table_name, estimated_size from duckdb_tables() where schema_name = 'gold'"
            ).fetchall()
        )
        layers = {row[0] for row in connection.execute("select distinct schema_name from duckdb_tables()").fetchall()}
    assert {"bronze", "silver", "gold"} <= layers
    assert set(counts) == set(gold)
    assert len(gold) >= 6
    with open_consumer_database(consumer_database_path(warehouse)) as consumer:
        tables = consumer.execute("select schema_name, table_name from duckdb_tables() order by 1, 2").fetchall()
        assert {schema for schema, _ in tables} == {"gold"}
        assert {table for _, table in tables} == set(gold)
        for table, rows in counts.items():
            assert consumer.execute(f'select count(*) from gold."{table}"').fetchone() == (rows,)
        assert consumer.execute("select count(*) from gold.agg_monthly_cash_flow").fetchone()[0] > 0
        assert consumer.execute("select count(*) from duckdb_views() where not internal").fetchone() == (0,)
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            consumer.execute("create table gold.written (x integer)")
    # Rewritten after each build that built gold (the medallion's dbt callback), the file replaced whole.
    consumer_database_path(warehouse).unlink()
    monkeypatch.setenv("MEDALFLOW_DBT_TARGET", "duckdb")
    monkeypatch.setenv("MEDALFLOW_DUCKDB_PATH", str(warehouse))
    # As in Airflow's environment (MWAA's requirements, the compose image): no DuckDB there; dbt's virtualenv copies.
    monkeypatch.setitem(sys.modules, "duckdb", None)
    assert publish_after_dbt(dbt.work, context={}) == counts
    assert consumer_database_path(warehouse).is_file()
    assert not list((tmp_path / "consumer").glob(".*building"))
    silver_only = tmp_path / "silver_only"
    (silver_only / "target").mkdir(parents=True)
    results = json.loads((dbt.work / "target" / "run_results.json").read_text())
    results["results"] = [r for r in results["results"] if "slv_" in r["unique_id"]]
    (silver_only / "target" / "run_results.json").write_text(json.dumps(results))
    shutil.copy(dbt.work / "target" / "manifest.json", silver_only / "target" / "manifest.json")
    assert publish_after_dbt(silver_only, context={}) is None, "no gold built, nothing to publish"
    monkeypatch.setenv("MEDALFLOW_DBT_TARGET", "athena")
    assert publish_after_dbt(dbt.work, context={}) is None, "roles and grants there"


def test_the_catalog_says_who_may_read_each_asset():
    from medalflow.governance.catalog import DAG, TASK, project_catalog

    assets = project_catalog().assets
    readers = {(asset.layer, asset.readers) for asset in assets if asset.kind not in (DAG, TASK)}
    assert {("raw", "pipeline only"), ("bronze", "pipeline only"), ("silver", "pipeline only")} <= readers
    assert {reader for layer, reader in readers if layer == "gold"} == {"pipeline, gold consumer"}
    assert {reader for layer, reader in readers if layer != "gold"} == {"pipeline only"}
    assert {asset.readers for asset in assets if asset.kind in (DAG, TASK)} == {""}
