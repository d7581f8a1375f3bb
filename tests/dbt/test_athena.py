"""The athena target, without AWS: dbt-athena against moto's server (Glue, Athena, S3, STS emulated).

dbt-athena needs AWS even to compile (it reads the Glue catalog), so moto serves it. moto accepts Athena queries
without executing them, which is exactly enough to see what dbt would send:

1. ``dbt compile`` on an empty catalog: every model, data test and unit test compiles, and every compiled statement
   parses as Trino SQL (sqlglot);
2. with the warehouse's tables registered in Glue (as after a first build), ``dbt run`` for one interval runs each
   model's incremental path; every statement dbt sends (from its JSON log) parses as Trino SQL, and the DDL and DML
   carry the settings: Iceberg tables, merge with the src/target aliases and the delete/insert conditions, partition
   transforms, bronze's interval delete, locations under the environment's s3_data_dir;
3. ``dbt run-operation create_raw_tables`` registers the raw zone as partition-projected Parquet tables.

Every database is one of the environment's four that infra/catalog.yaml creates and the MWAA role may use:
``<MEDALFLOW_ATHENA_SCHEMA>_raw|bronze|silver|gold``, the raw tables named ``<source>__<entity>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest
import sqlglot
from conftest import DAYS
from sqlglot.errors import ParseError

from medalflow.intervals import day_interval
from medalflow.settings import dbt_environment, get_settings

pytestmark = pytest.mark.integration

BUCKET = "medalflow-athena-test"
# MEDALFLOW_ATHENA_SCHEMA, as deploy/<env>.env sets it: <project>_<env>.
ENVIRONMENT_SCHEMA = "medalflow_test"
LAYER_DATABASES = {f"{ENVIRONMENT_SCHEMA}_{layer}" for layer in ("bronze", "silver", "gold", "observability")}
RAW_DATABASE = f"{ENVIRONMENT_SCHEMA}_raw"
RAW_TABLES = {
    "erp__customers", "erp__suppliers", "erp__products", "erp__orders",
    "partner__payments", "partner__fx_rates", "partner__shipments",
    "files__shipments",
    "forecast__projects", "forecast__baselines", "forecast__scenarios",
    "ops__dbt_invocations", "ops__dbt_node_results", "ops__extraction_runs", "ops__source_freshness",
}  # fmt: skip
S3_DATA_DIR = f"s3://{BUCKET}/test-env/warehouse/"
EXECUTE = "Execute: "
FULL_REFRESH_SAMPLE = (
    "brz_erp__orders",
    "slv_orders",
    "fct_order_correlated",
    "agg_monthly_cash_flow",
    "rank_top_products",
    "obs_model_runs",
)


@pytest.fixture(scope="module")
def moto(moto_endpoint):
    """The environment that points dbt-athena (boto3) at the session's moto server, with the bucket it writes to."""
    environment = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MEDALFLOW_DBT_TARGET": "athena",
        "MEDALFLOW_LAKE_URI": f"s3://{BUCKET}/test-env/lake",
        "MEDALFLOW_ATHENA_S3_STAGING_DIR": f"s3://{BUCKET}/test-env/athena-results/",
        "MEDALFLOW_ATHENA_S3_DATA_DIR": S3_DATA_DIR,
        "MEDALFLOW_ATHENA_SCHEMA": ENVIRONMENT_SCHEMA,
        "MEDALFLOW_ATHENA_POLL_INTERVAL": "0.02",
    }
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    return environment


class AthenaDbt:
    """dbt (its own virtualenv) with the athena target, against moto."""

    def __init__(self, environment: dict[str, str], work: Path) -> None:
        settings = get_settings()
        self.environment = {**os.environ, **dbt_environment(settings), **environment}
        self.work = work
        self.command = [
            settings.dbt_executable, "--project-dir", str(settings.dbt_project_dir),
            "--profiles-dir", str(settings.dbt_profiles_dir), "--target", "athena",
        ]  # fmt: skip

    def __call__(self, *arguments: str, name: str) -> Path:
        """Run dbt; returns its target folder (shared by the runs, so dbt can parse partially). Each run has its own
        log folder: the JSON file log holds every statement sent."""
        target, logs = self.work / "target", self.work / name / "logs"
        command = [*self.command[:1], *arguments, *self.command[1:]]
        command += ["--target-path", str(target), "--log-path", str(logs), "--log-format-file", "json"]
        completed = subprocess.run(command, env=self.environment, capture_output=True, text=True, check=False)
        assert completed.returncode == 0, f"dbt {' '.join(arguments)} failed:\n{completed.stdout[-6000:]}"
        return target

    def statements(self, name: str) -> list[tuple[str, str]]:
        """(node id, SQL) of every statement the Athena cursor executed in the run called ``name`` (dbt-athena logs
        each as "Execute: <sql>", the statements it builds in Python included, such as CTAS and MERGE)."""
        found = []
        for line in (self.work / name / "logs" / "dbt.log").read_text().splitlines():
            event = json.loads(line)
            message = event["data"].get("base_msg")
            if event["info"]["name"] == "AdapterEventDebug" and str(message).startswith(EXECUTE):
                node = event["data"].get("node_info", {}).get("unique_id", "")
                found.append((node, message[len(EXECUTE) :]))
        return found


def parse_errors(statements: list[tuple[str, str]], dialect: str) -> list[str]:
    errors = []
    for origin, sql in statements:
        try:
            sqlglot.parse(sql, read=dialect)
        except ParseError as error:
            errors.append(f"{origin}: {str(error)[:300]}")
    return errors


def register_warehouse_tables(manifest: dict, environment: dict[str, str]) -> int:
    """Register every model and snapshot as an Iceberg table in moto's Glue, as a first build would have."""
    glue = boto3.client("glue", endpoint_url=environment["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    count = 0
    for node in manifest["nodes"].values():
        if node["resource_type"] not in ("model", "snapshot") or node["package_name"] != "medalflow":
            continue
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(DatabaseInput={"Name": node["schema"]})
        columns = [
            {"Name": name, "Type": column.get("data_type") or "string"} for name, column in node["columns"].items()
        ]
        if node["resource_type"] == "snapshot":
            columns += [
                {"Name": name, "Type": "timestamp"} for name in ("dbt_valid_from", "dbt_valid_to", "dbt_updated_at")
            ]
            columns += [{"Name": "dbt_scd_id", "Type": "string"}]
        location = f"{S3_DATA_DIR}{node['schema']}/{node['alias']}/first-build"
        glue.create_table(
            DatabaseName=node["schema"],
            TableInput={
                "Name": node["alias"],
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"table_type": "ICEBERG"},
                "StorageDescriptor": {"Columns": columns, "Location": location},
            },
        )
        count += 1
    return count


@pytest.fixture(scope="module")
def athena_runs(moto, tmp_path_factory):
    work = tmp_path_factory.mktemp("athena")
    dbt = AthenaDbt(moto, work)
    target = dbt("compile", name="compile")
    compiled = shutil.copytree(target / "compiled", work / "compiled")
    manifest = json.loads((target / "manifest.json").read_text())
    dbt("run-operation", "create_raw_tables", name="raw_tables")
    assert register_warehouse_tables(manifest, moto) == 33
    # A first build of one model per kind (the DDL), then an incremental run of every model (the DML).
    dbt("run", "--full-refresh", "--select", *FULL_REFRESH_SAMPLE, name="full_refresh")
    dbt("run", "--vars", json.dumps(day_interval(DAYS[1]).as_extra()), name="incremental")
    # The observability layer's publication (macros/publish_models.sql): UNLOAD of each published table.
    dbt("run-operation", "publish_models", name="publish")
    return dbt, compiled, manifest


def test_every_compiled_statement_parses_as_trino(athena_runs):
    _dbt, compiled, manifest = athena_runs
    files = sorted((compiled / "medalflow").rglob("*.sql"))
    kinds = {node["resource_type"] for node in manifest["nodes"].values()}
    assert {"model", "test", "snapshot", "unit_test"} <= kinds | set(manifest.get("unit_tests", {}) and ["unit_test"])
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert len(files) >= len(models) + 150, "models and data tests all compiled"
    assert parse_errors([(str(path), path.read_text()) for path in files], "trino") == []


def test_every_statement_of_a_full_and_an_incremental_run_parses_as_trino(athena_runs):
    dbt, _compiled, _manifest = athena_runs
    for run, least in (("full_refresh", 15), ("incremental", 80)):
        statements = dbt.statements(run)
        assert len(statements) >= least
        assert parse_errors(statements, "trino") == []


def by_node(statements: list[tuple[str, str]], name: str) -> str:
    return "\n;\n".join(sql for origin, sql in statements if origin.endswith(f".{name}")).lower()


def test_iceberg_merge_and_partition_settings_in_the_ddl(athena_runs):
    dbt, _compiled, _manifest = athena_runs
    statements = dbt.statements("incremental")

    # An incremental run: bronze replaces its interval, silver merges (src/target), the fact purges deletes.
    bronze = by_node(statements, "brz_erp__orders")
    interval = day_interval(DAYS[1])
    assert (
        f'delete from "awsdatacatalog"."{ENVIRONMENT_SCHEMA}_bronze"."brz_erp__orders" where ingestion_date >= '
        f"cast('{interval.start.date()}' as date)" in bronze
    ), "bronze deletes its interval before appending it again"
    assert bronze.index("delete from") < bronze.index(
        f'insert into "awsdatacatalog"."{ENVIRONMENT_SCHEMA}_bronze"."brz_erp__orders"'
    )

    orders = by_node(statements, "slv_orders")
    assert f'merge into "awsdatacatalog"."{ENVIRONMENT_SCHEMA}_silver"."slv_orders" as target using' in orders
    assert "as src" in orders
    assert "target.order_id = src.order_id" in orders

    fact = by_node(statements, "fct_order_correlated")
    assert "when matched and (src.is_deleted)\n          then delete" in fact
    assert "when not matched and not src.is_deleted" in fact

    # A full refresh creates every table: Iceberg, partitioned, under the environment's s3_data_dir.
    full = dbt.statements("full_refresh")
    assert "partitioning=array['ingestion_date']" in by_node(full, "brz_erp__orders")
    assert "partitioning=array['month(order_date)']" in by_node(full, "slv_orders")
    assert "partitioning=array['month(order_date)']" in by_node(full, "fct_order_correlated")
    cash_flow = by_node(full, "agg_monthly_cash_flow")
    assert "partitioning=array['cash_year', 'cash_month']" in cash_flow
    assert f"location='{S3_DATA_DIR}{ENVIRONMENT_SCHEMA}_gold/agg_monthly_cash_flow/" in cash_flow

    for run, count in ((full, len(FULL_REFRESH_SAMPLE)), (statements, 27)):
        bodies = [sql.split("*/", 1)[-1].strip().lower() for _origin, sql in run]
        tables = [sql for sql in bodies if sql.startswith("create table")]
        assert len(tables) >= count
        assert all("table_type='iceberg'" in sql for sql in tables)
        assert all(f"location='{S3_DATA_DIR}" in sql for sql in tables), "tables live under s3_data_dir"


def test_raw_zone_registered_as_partition_projected_tables(athena_runs):
    dbt, _compiled, manifest = athena_runs
    ddl = [sql for _origin, sql in dbt.statements("raw_tables") if "create external table" in sql]
    assert len(ddl) == len(manifest["sources"]) == 15
    # One raw database, the environment's; the tables named <source>__<entity> (partner and files both ship).
    bodies = [sql.split("*/", 1)[-1].strip() for _origin, sql in dbt.statements("raw_tables")]
    databases = [sql for sql in bodies if sql.startswith("create database")]
    assert databases == [f"create database if not exists `{RAW_DATABASE}`"]
    registered = {sql.split("create external table if not exists ", 1)[1].split(" ", 1)[0] for sql in ddl}
    assert registered == {f"`{RAW_DATABASE}`.`{table}`" for table in RAW_TABLES}
    orders = next(sql for sql in ddl if f"`{RAW_DATABASE}`.`erp__orders`" in sql)
    assert "partitioned by (`ingestion_date` date)" in orders
    assert "'projection.ingestion_date.type' = 'date'" in orders
    assert f"location 's3://{BUCKET}/test-env/lake/raw/erp/orders/'" in orders
    assert parse_errors([("raw", sql) for sql in ddl], "hive") == []


def test_pii_is_hashed_with_trinos_hmac_under_the_key(athena_runs, pii_key):
    """Athena hashes PII with Trino's hmac_sha256 under the key (from MEDALFLOW_PII_KEY), in every classified column."""
    _dbt, compiled, _manifest = athena_runs
    key_hex = pii_key.encode().hex()
    hmac_call = "lower(to_hex(hmac_sha256(to_utf8(cast("
    for model, hashed in {"slv_customers": 4, "slv_suppliers": 1, "slv_forecast_projects": 1}.items():
        sql = next((compiled / "medalflow").rglob(f"{model}.sql")).read_text()
        assert sql.count(hmac_call) == hashed, model
        assert sql.count(f"from_hex('{key_hex}')") == hashed, model
        assert parse_errors([(model, sql)], "trino") == []


def test_every_relation_is_in_the_environments_glue_databases(athena_runs):
    """Models and snapshots in <schema>_bronze|silver|gold, sources in <schema>_raw as <source>__<entity>: the
    databases infra/catalog.yaml creates, the only ones the MWAA execution role may use."""
    _dbt, compiled, manifest = athena_runs
    built = [node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "snapshot")]
    assert {node["schema"] for node in built} == LAYER_DATABASES
    layers = {node["name"]: node["schema"] for node in built}
    assert layers["brz_erp__orders"] == f"{ENVIRONMENT_SCHEMA}_bronze"
    assert layers["snp_customers"] == layers["slv_orders"] == f"{ENVIRONMENT_SCHEMA}_silver"
    assert layers["agg_monthly_cash_flow"] == f"{ENVIRONMENT_SCHEMA}_gold"
    sources = manifest["sources"].values()
    assert {source["schema"] for source in sources} == {RAW_DATABASE}
    assert {source["identifier"] for source in sources} == RAW_TABLES
    # What dbt sends: bronze reads the raw table, silver reads bronze, gold reads silver, all fully qualified.
    for model, reads in {
        "brz_erp__customers": f'"awsdatacatalog"."{RAW_DATABASE}"."erp__customers"',
        "brz_files__shipments": f'"awsdatacatalog"."{RAW_DATABASE}"."files__shipments"',
        "brz_partner__shipments": f'"awsdatacatalog"."{RAW_DATABASE}"."partner__shipments"',
        "slv_orders": f'"awsdatacatalog"."{ENVIRONMENT_SCHEMA}_bronze"."brz_erp__orders"',
        "agg_monthly_cash_flow": f'"awsdatacatalog"."{ENVIRONMENT_SCHEMA}_silver"."fct_order_correlated"',
    }.items():
        sql = next((compiled / "medalflow").rglob(f"{model}.sql")).read_text()
        assert reads in sql, model
        assert parse_errors([(model, sql)], "trino") == []


# --- governance: Lake Formation tags (run against moto's Lake Formation) and the gold consumer's grants ------------

CONSUMER_ROLE_ARN = "arn:aws:iam::123456789012:role/medalflow-test-gold-consumer"
LAKE_FORMATION_SAMPLE = ("brz_erp__customers", "slv_customers", "slv_orders")


def governance_tags_of_the_template() -> list[dict]:
    """The Lake Formation tags infra/governance.yaml declares, as create_lf_tag takes them."""
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(Path(__file__).resolve().parents[2] / "infra" / "governance.yaml"))
    return [
        {"TagKey": resource["Properties"]["TagKey"], "TagValues": list(resource["Properties"]["TagValues"])}
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::LakeFormation::Tag"
    ]


@pytest.fixture(scope="module")
def lake_formation_run(athena_runs, moto, tmp_path_factory):
    """Tags created as infra/governance.yaml creates them, then an incremental run of a few models with Lake Formation
    on (MEDALFLOW_LAKE_FORMATION=true, the consumer's role given): dbt-athena tags each table and its personal
    columns through moto's Lake Formation API. Gold's lf_grants (data cell filters, which moto lacks) are checked
    in the configuration only."""
    lakeformation = boto3.client("lakeformation", endpoint_url=moto["AWS_ENDPOINT_URL"], region_name="us-east-1",
                                 aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    for tag in governance_tags_of_the_template():
        lakeformation.create_lf_tag(**tag)
    # A stale classification on each table, which the run must correct. (moto also fails GetResourceLFTags on a table
    # that never had a tag, where Lake Formation answers with none.)
    manifest = athena_runs[2]
    for name in LAKE_FORMATION_SAMPLE:
        node = manifest["nodes"][f"model.medalflow.{name}"]
        lakeformation.add_lf_tags_to_resource(
            Resource={"Table": {"DatabaseName": node["schema"], "Name": node["alias"]}},
            LFTags=[{"TagKey": "medalflow_classification", "TagValues": ["internal"]}],
        )
    environment = {**moto, "MEDALFLOW_LAKE_FORMATION": "true", "MEDALFLOW_ATHENA_CONSUMER_ROLE_ARN": CONSUMER_ROLE_ARN}
    dbt = AthenaDbt(environment, tmp_path_factory.mktemp("athena_lake_formation"))
    target = dbt(
        "run", "--select", *LAKE_FORMATION_SAMPLE, "--vars", json.dumps(day_interval(DAYS[1]).as_extra()),
        name="lake_formation",
    )  # fmt: skip
    return lakeformation, json.loads((target / "manifest.json").read_text())


def column_meta(column: dict) -> dict:
    return {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}


def test_lake_formation_tags_on_tables_and_personal_columns(lake_formation_run):
    lakeformation, manifest = lake_formation_run
    for name in LAKE_FORMATION_SAMPLE:
        node = manifest["nodes"][f"model.medalflow.{name}"]
        table = {"DatabaseName": node["schema"], "Name": node["alias"]}
        on_table = lakeformation.get_resource_lf_tags(Resource={"Table": table})["LFTagsOnTable"]
        meta = node["config"]["meta"]
        assert {tag["TagKey"]: tag["TagValues"] for tag in on_table} == {
            "medalflow_layer": [meta["layer"]],
            "medalflow_classification": [meta["data_classification"]],
            "medalflow_domain": [meta["domain"]],
        }, name
        personal = {
            column: column_meta(c)["pii_type"] for column, c in node["columns"].items() if column_meta(c).get("pii")
        }
        columns = lakeformation.get_resource_lf_tags(
            Resource={"TableWithColumns": {**table, "ColumnNames": list(node["columns"])}}
        ).get("LFTagsOnColumns", [])
        tagged = {c["Name"]: [(t["TagKey"], t["TagValues"]) for t in c["LFTags"]] for c in columns}
        assert tagged == {column: [("medalflow_pii_type", [pii_type])] for column, pii_type in personal.items()}, name
        assert bool(personal) == (name != "slv_orders"), name
    assert manifest["nodes"]["model.medalflow.slv_orders"]["config"]["meta"]["domain"] == "Core Domain"


def test_descriptions_and_business_meta_are_persisted_to_glue(lake_formation_run, moto):
    """persist_docs: the table's and columns' descriptions in Glue, and dbt-athena copies the model's meta (domain,
    layer, classification) into the table's parameters, where Glue's and DataZone's search find them."""
    _lakeformation, manifest = lake_formation_run
    glue = boto3.client("glue", endpoint_url=moto["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    node = manifest["nodes"]["model.medalflow.slv_customers"]
    table = glue.get_table(DatabaseName=node["schema"], Name=node["alias"])["Table"]
    assert table["Description"].startswith("Current state of every ERP customer (cliente)")
    parameters = table["Parameters"]
    assert (parameters["domain"], parameters["layer"], parameters["data_classification"]) == (
        "Master Data", "silver", "confidential",
    )  # fmt: skip
    comments = {column["Name"]: column.get("Comment", "") for column in table["StorageDescriptor"]["Columns"]}
    assert comments["tax_id_hash"].startswith("HMAC-SHA256")


def test_gold_is_granted_to_the_consumer_and_nothing_else_is(lake_formation_run):
    _lakeformation, manifest = lake_formation_run
    built = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "snapshot")
        and node["schema"] in {f"{ENVIRONMENT_SCHEMA}_{layer}" for layer in ("bronze", "silver", "gold")}
    ]
    gold = [node for node in built if node["schema"] == f"{ENVIRONMENT_SCHEMA}_gold"]
    assert len(gold) >= 6
    for node in built:
        grants = node["config"].get("lf_grants")
        if node in gold:
            filters = grants["data_cell_filters"]
            assert filters["enabled"] is True
            assert filters["filters"] == {
                "gold_consumer_all_rows": {"row_filter": "true", "principals": [CONSUMER_ROLE_ARN]}
            }
        else:
            assert grants is None, node["name"]
        assert node["config"]["grants"] == {}, "Athena has no SQL grants: Lake Formation's"
        assert node["config"]["lf_tags_config"]["enabled"] is True


# --- observability (issue 14): the layer's incremental merge and its publication -------------------------------------

PUBLISHED = {
    "obs_dbt_invocations", "obs_model_runs", "obs_test_results", "obs_extraction_runs", "obs_source_freshness",
    "agg_monthly_cash_flow", "agg_monthly_orders", "agg_monthly_forecast_vs_actual",
}  # fmt: skip


def test_observability_models_merge_what_was_landed_since_their_newest_fact(athena_runs):
    dbt, compiled, _manifest = athena_runs
    runs = by_node(dbt.statements("incremental"), "obs_model_runs")
    assert f'merge into "awsdatacatalog"."{ENVIRONMENT_SCHEMA}_observability"."obs_model_runs" as target' in runs
    assert "target.model_run_id = src.model_run_id" in runs
    assert f'from "awsdatacatalog"."{RAW_DATABASE}"."ops__dbt_node_results"' in runs
    assert "where ingestion_date >= coalesce(" in runs
    assert "date_add('day', -3, max(cast(run_started_at as date)))" in runs
    # Athena's cost: bytes scanned at 5 USD per TB, at least 10 MB per query.
    cost = next((compiled / "medalflow").rglob("obs_model_runs.sql")).read_text()
    assert "greatest(bytes_scanned, 10485760) as double)" in cost
    assert "/ 1e12 * 5.0" in cost


def test_published_tables_are_unloaded_as_parquet_under_the_lake(athena_runs):
    dbt, _compiled, _manifest = athena_runs
    unloads = [sql.split("*/", 1)[-1].strip() for _origin, sql in dbt.statements("publish")]
    unloads = [sql for sql in unloads if sql.startswith("unload")]
    lake = f"s3://{BUCKET}/test-env/lake/_published"
    targets = {sql.split(" to '", 1)[1].split("'", 1)[0] for sql in unloads}
    assert targets == {f"{lake}/{name}/" for name in PUBLISHED}
    assert all(sql.endswith("with (format = 'PARQUET', compression = 'SNAPPY')") for sql in unloads)
    # sqlglot's Trino dialect has no UNLOAD: its query is parsed on its own.
    queries = [("unload", sql.removeprefix("unload (").split(") to '", 1)[0]) for sql in unloads]
    assert parse_errors(queries, "trino") == []
