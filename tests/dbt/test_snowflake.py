"""The snowflake target against fakesnow's HTTP server (dbt-snowflake talks to it as to Snowflake).

The raw tables are registered with ``dbt run-operation create_raw_tables`` and loaded from a lake landed from the
demo world (what COPY INTO does in production); then ``dbt build`` runs twice, each time for one day's interval:

1. the first build creates every model and runs every data test (all pass);
2. the second is incremental: bronze deletes its interval and appends it again (through a transient staging table),
   gold is rebuilt, every data test runs again.

What fakesnow cannot run, excluded precisely (README of dbt_project/ lists it):
* unit tests and snapshots (fakesnow does not support them);
* the second run's merge models (the silver layer): fakesnow's translation of dbt-snowflake's MERGE fails with an
  ambiguous column and leaves its session unusable. Their SQL is still compiled for the incremental path and parsed;
* table and column comments (persist_docs: fakesnow rejects inline column comments), via MEDALFLOW_DBT_PERSIST_DOCS;
* masking policies and grants (fakesnow parses neither), via MEDALFLOW_DBT_ACCESS_CONTROL=false: the masking
  statements are rendered and logged instead of sent, and parsed here; the grants are checked in the configuration.
  Object tags are sent (fakesnow accepts them as no-ops).

Every statement dbt sent in both builds, and every compiled model and test, parses as Snowflake SQL (sqlglot).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlglot
from conftest import DAYS, land
from local_servers import serving
from sqlglot.errors import ParseError

from medalflow.intervals import day_interval
from medalflow.settings import dbt_environment, get_settings

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
DATABASE = "MEDALFLOW"
RAW = [
    "erp/customers", "erp/suppliers", "erp/products", "erp/orders", "partner/payments", "partner/fx_rates",
    "partner/shipments", "files/shipments", "forecast/projects", "forecast/baselines", "forecast/scenarios",
]  # fmt: skip
# What the second (incremental) build leaves out: see the module docstring.
FAKESNOW_GAPS = ["resource_type:unit_test", "resource_type:snapshot"]
FAKESNOW_MERGE_GAP = ["config.incremental_strategy:merge"]
PUBLISH_STAGE = "MEDALFLOW.OPS.PUBLISHED"


def dbt_python() -> str:
    return str(Path(get_settings().dbt_executable).with_name("python"))


@pytest.fixture(scope="module")
def fakesnow(tmp_path_factory):
    """fakesnow's HTTP server, from dbt's virtualenv (fakesnow's duckdb and sqlglot live there)."""
    # The server needs fakesnow's [server] extras (uvicorn, starlette); FAKESNOW_PYTHONPATH may point at them.
    extras = os.getenv("FAKESNOW_PYTHONPATH", "")
    environment = {**os.environ, "PYTHONPATH": extras}
    probe = subprocess.run([dbt_python(), "-c", "import uvicorn, starlette"], env=environment, check=False)
    if probe.returncode:
        pytest.skip("fakesnow's server extras are missing: requirements/dbt-dev.txt needs fakesnow[server]")
    log = tmp_path_factory.mktemp("fakesnow") / "fakesnow.log"
    with serving(
        lambda port: [dbt_python(), "-m", "fakesnow", "-s", "-p", str(port)],
        "fakesnow",
        log,
        environment=environment,
        startup_timeout=60,  # slower to listen than moto: it loads duckdb and sqlglot first
    ) as port:
        yield port


class SnowflakeDbt:
    """dbt with the snowflake target pointed at fakesnow; a shared target folder, one log folder per run."""

    def __init__(self, port: int, lake: str, work: Path) -> None:
        settings = get_settings()
        self.port, self.work = port, work
        self.environment = {
            **os.environ,
            **dbt_environment(settings),
            "MEDALFLOW_LAKE_URI": lake,
            "MEDALFLOW_DBT_TARGET": "snowflake",
            "MEDALFLOW_DBT_PERSIST_DOCS": "false",
            "MEDALFLOW_DBT_ACCESS_CONTROL": "false",
            "MEDALFLOW_SNOWFLAKE_ACCOUNT": "fakesnow",
            "MEDALFLOW_SNOWFLAKE_USER": "fake",
            "MEDALFLOW_SNOWFLAKE_PASSWORD": "snow",
            "MEDALFLOW_SNOWFLAKE_DATABASE": DATABASE,
            "MEDALFLOW_SNOWFLAKE_HOST": "localhost",
            "MEDALFLOW_SNOWFLAKE_PORT": str(port),
            "MEDALFLOW_SNOWFLAKE_PROTOCOL": "http",
        }
        self.options = [
            "--project-dir", str(settings.dbt_project_dir), "--profiles-dir", str(settings.dbt_profiles_dir),
            "--target", "snowflake", "--target-path", str(work / "target"),
        ]  # fmt: skip
        self.executable = settings.dbt_executable

    def __call__(self, *arguments: str, name: str) -> None:
        logs = ["--log-path", str(self.work / name / "logs"), "--log-format-file", "json"]
        command = [self.executable, *arguments, *self.options, *logs]
        completed = subprocess.run(
            command, env=self.environment, capture_output=True, text=True, check=False, timeout=900
        )
        assert completed.returncode == 0, f"dbt {' '.join(arguments)} failed:\n{completed.stdout[-6000:]}"

    def statements(self, name: str) -> list[tuple[str, str]]:
        """(node id, SQL) of every statement dbt sent to Snowflake in the run called ``name``."""
        found = []
        for line in (self.work / name / "logs" / "dbt.log").read_text().splitlines():
            event = json.loads(line)
            if event["info"]["name"] == "SQLQuery":
                found.append((event["data"].get("node_info", {}).get("unique_id", ""), event["data"]["sql"]))
        return found

    def query(self, sql: str) -> list[list]:
        command = [dbt_python(), str(HERE / "snowflake_load.py"), "query", "localhost", str(self.port), DATABASE, sql]
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def snowflake_builds(fakesnow, world, tmp_path_factory):
    root = tmp_path_factory.mktemp("snowflake")
    builder = land(world, root, DAYS[:2])
    builder.close()
    dbt = SnowflakeDbt(fakesnow, builder.lake.uri, root)
    dbt("run-operation", "create_raw_tables", name="raw_tables")
    loader = [dbt_python(), str(HERE / "snowflake_load.py"), "load", "localhost", str(fakesnow), DATABASE]
    subprocess.run([*loader, builder.lake.uri, *RAW], check=True, capture_output=True)
    first, second = (json.dumps(day_interval(day).as_extra()) for day in DAYS[:2])
    dbt("build", "--exclude", *FAKESNOW_GAPS, "--vars", first, name="first")
    dbt("build", "--exclude", *FAKESNOW_GAPS, *FAKESNOW_MERGE_GAP, "--vars", second, name="second")
    dbt("compile", "--exclude", *FAKESNOW_GAPS, "--vars", second, name="compile")
    # The observability layer's publication (COPY INTO a stage, which fakesnow lacks): its statements, logged.
    dbt.environment["MEDALFLOW_SNOWFLAKE_PUBLISH_STAGE"] = PUBLISH_STAGE
    dbt("run-operation", "publish_models", "--args", "{dry_run: true}", name="publish")
    return dbt


def test_two_builds_pass_every_data_test(snowflake_builds):
    dbt = snowflake_builds
    first = [json.loads(line) for line in (dbt.work / "first" / "logs" / "dbt.log").read_text().splitlines()]
    passed = [e for e in first if e["info"]["name"] == "LogTestResult" and e["data"]["status"] == "pass"]
    assert len(passed) >= 150
    assert dbt.query("select count(*) from silver.fct_order_correlated")[0][0] > 0
    assert dbt.query("select count(*) from gold.agg_monthly_orders")[0][0] > 0


def test_second_build_is_incremental(snowflake_builds):
    dbt = snowflake_builds
    bronze = [sql.lower() for node, sql in dbt.statements("second") if node.endswith(".brz_erp__orders")]
    assert any(sql.startswith(f"delete from {DATABASE.lower()}.bronze.brz_erp__orders where") for sql in bronze)
    assert any("create or replace transient table" in sql for sql in bronze)
    assert any(sql.startswith(f"insert into {DATABASE.lower()}.bronze.brz_erp__orders") for sql in bronze)
    rows = dbt.query("select ingestion_date, count(*) from bronze.brz_erp__orders group by 1 order by 1")
    assert [day for day, _count in rows] == [str(day) for day in DAYS[:2]], "each interval's partition once"


def test_every_snowflake_statement_parses(snowflake_builds):
    dbt = snowflake_builds
    statements = dbt.statements("first") + dbt.statements("second")
    compiled = sorted((dbt.work / "target" / "compiled" / "medalflow").rglob("*.sql"))
    statements += [(str(path), path.read_text()) for path in compiled]
    assert len(compiled) >= 180
    assert len(statements) > 400
    silver_orders = next(path for path in compiled if path.name == "slv_orders.sql").read_text()
    assert "current_version" in silver_orders, "the merge models' incremental SQL is among the parsed statements"
    assert snowflake_parse_errors(statements) == []


def test_pii_hashes_are_hmac_sha256_on_snowflake(snowflake_builds, pii_key):
    """The macro composes HMAC from SHA2_BINARY (Snowflake has no HMAC function): on fakesnow its digests equal
    Python's hmac under the same key."""
    dbt = snowflake_builds
    rows = dbt.query(
        "select bronze.email, bronze.tax_id, silver.email_hash, silver.tax_id_hash "
        "from silver.slv_customers as silver join bronze.brz_erp__customers as bronze "
        "on bronze.customer_id = silver.customer_id and bronze.updated_at = silver.updated_at"
    )
    assert len(rows) > 10
    for email, tax_id, email_hash, tax_id_hash in rows:
        digits = "".join(character for character in tax_id if character.isdigit())
        assert email_hash == hmac.new(pii_key.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()
        assert tax_id_hash == hmac.new(pii_key.encode(), digits.encode(), hashlib.sha256).hexdigest()


# --- governance: object tags (sent), masking policies (rendered and logged), grants to the consumer role ----------

NOT_EXECUTED = "medalflow governance, not executed (MEDALFLOW_DBT_ACCESS_CONTROL=false): "


def logged_governance(dbt: SnowflakeDbt, name: str) -> list[tuple[str, str]]:
    """(node id, SQL) of the access-control statements the run rendered but did not send."""
    found = []
    for line in (dbt.work / name / "logs" / "dbt.log").read_text().splitlines():
        event = json.loads(line)
        message = str(event["data"].get("msg", ""))
        if message.startswith(NOT_EXECUTED):
            found.append((event["data"].get("node_info", {}).get("unique_id", ""), message[len(NOT_EXECUTED) :]))
    return found


def test_tables_and_personal_columns_are_tagged(snowflake_builds):
    dbt = snowflake_builds
    # Each as sent, without dbt's query comment.
    sent = [(node, " ".join(sql.split("/*", 1)[0].lower().split())) for node, sql in dbt.statements("first")]
    governance = f"{DATABASE.lower()}.governance"
    created = [sql for node, sql in sent if sql.startswith("create tag if not exists")]
    assert [sql.split()[5] for sql in created] == [
        f"{governance}.medalflow_{tag}" for tag in ("layer", "classification", "domain", "pii_type")
    ]
    assert f"create schema if not exists {governance}" in [sql for _node, sql in sent]
    customers = [sql for node, sql in sent if node == "model.medalflow.slv_customers" and " set tag " in sql]
    assert customers[0] == (
        f"alter table {DATABASE.lower()}.silver.slv_customers set tag {governance}.medalflow_layer = 'silver', "
        f"{governance}.medalflow_classification = 'confidential', {governance}.medalflow_domain = 'master data'"
    )
    columns = {sql.split(" modify column ")[1].split()[0]: sql.rsplit("= ", 1)[1] for sql in customers[1:]}
    assert columns == {
        "email_hash": "'email'",
        "email_domain_hash": "'email'",
        "tax_id_hash": "'tax_id'",
        "phone_hash": "'phone'",
        "phone_masked": "'phone'",
    }
    orders = [sql for node, sql in sent if node == "model.medalflow.agg_monthly_orders" and " set tag " in sql]
    assert orders == [
        f"alter table {DATABASE.lower()}.gold.agg_monthly_orders set tag {governance}.medalflow_layer = 'gold', "
        f"{governance}.medalflow_classification = 'internal', {governance}.medalflow_domain = 'core domain'"
    ]


def test_personal_columns_are_masked_for_every_role_but_the_pipelines(snowflake_builds):
    dbt = snowflake_builds
    rendered = logged_governance(dbt, "first")
    policy = f"{DATABASE}.governance.mask_pii_string"
    on_run_start = [sql for node, sql in rendered if not node or "on-run-start" in node]
    assert on_run_start == [
        f"create masking policy if not exists {policy} as (val string) returns string -> "
        "case when current_role() in ('TRANSFORMER') then val else '***MASKED***' end",
        f"alter masking policy {policy} set body -> "
        "case when current_role() in ('TRANSFORMER') then val else '***MASKED***' end",
    ]
    masked = {
        (node.rsplit(".", 1)[1], sql.split(" modify column ")[1].split()[0])
        for node, sql in rendered
        if node.startswith("model.") and sql.endswith(f" set masking policy {policy} force")
    }
    assert {("slv_customers", "tax_id_hash"), ("slv_forecast_projects", "project_owner_hash")} <= masked
    assert ("brz_erp__customers", "customer_name") in masked, "bronze's clear PII too"
    assert not {model for model, _column in masked if model.startswith(("agg_", "ml_", "rank_"))}, "gold has none"
    assert len(masked) >= 12
    assert snowflake_parse_errors(rendered) == []


def test_gold_is_granted_to_the_consumer_role_only(snowflake_builds, tmp_path):
    """With access control on (a real Snowflake), dbt grants SELECT on each gold table to the consumer role."""
    dbt = snowflake_builds
    parsed = SnowflakeDbt(dbt.port, dbt.environment["MEDALFLOW_LAKE_URI"], tmp_path)
    parsed.environment.pop("MEDALFLOW_DBT_ACCESS_CONTROL")
    parsed.environment["MEDALFLOW_SNOWFLAKE_CONSUMER_ROLE"] = "BI_READER"
    parsed("parse", name="parse")
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    built = [node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "snapshot")]
    granted = {node["name"]: node["config"]["grants"] for node in built if node["config"]["grants"]}
    gold = {node["name"] for node in built if node["schema"] == "gold"}
    assert len(gold) >= 6
    assert granted == {name: {"select": ["BI_READER"]} for name in gold}


def test_observability_models_are_built_and_their_publication_is_snowflake_sql(snowflake_builds):
    """The observability layer's first build over the empty ops raw tables; its publication as REMOVE + COPY INTO the
    stage over <lake>/_published, for every observability model and the gold monthly tables."""
    dbt = snowflake_builds
    for name in ("obs_dbt_invocations", "obs_model_runs", "obs_test_results", "obs_extraction_runs",
                 "obs_source_freshness"):  # fmt: skip
        assert dbt.query(f"select count(*) from observability.{name}") == [[0]]
    events = [json.loads(line) for line in (dbt.work / "publish" / "logs" / "dbt.log").read_text().splitlines()]
    prefix = "publish_models statement: "
    statements = [
        event["data"]["msg"][len(prefix) :] for event in events if str(event["data"].get("msg", "")).startswith(prefix)
    ]
    copies = [sql for sql in statements if sql.startswith("copy into")]
    assert {sql.split(" ", 3)[2] for sql in copies} == {
        f"@{PUBLISH_STAGE}/{name}/"
        for name in ("obs_dbt_invocations", "obs_model_runs", "obs_test_results", "obs_extraction_runs",
                     "obs_source_freshness", "agg_monthly_cash_flow", "agg_monthly_orders",
                     "agg_monthly_forecast_vs_actual")
    }  # fmt: skip
    assert all("file_format = (type = parquet) header = true overwrite = true" in sql for sql in copies)
    assert sum(sql.startswith("remove @") for sql in statements) == len(copies)
    for sql in copies:
        sqlglot.parse(sql, read="snowflake")  # raises ParseError when it is not Snowflake SQL


def snowflake_parse_errors(statements: list[tuple[str, str]]) -> list[str]:
    """Each (origin, sql) that sqlglot cannot parse as Snowflake SQL, with the start of its error."""
    errors = []
    for origin, sql in statements:
        try:
            sqlglot.parse(sql, read="snowflake")
        except ParseError as error:
            errors.append(f"{origin}: {str(error)[:300]}")
    return errors
