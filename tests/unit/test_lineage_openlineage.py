"""OpenLineage for medalflow (medalflow.governance.openlineage): dataset names, the extraction tasks' extractor, the
dbt nodes' events, and the transports chosen by configuration (HTTP and Amazon DataZone against local stand-ins)."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Generator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from medalflow.assets import raw_asset
from medalflow.extract.config import load_source_group
from medalflow.governance import openlineage as medalflow_openlineage
from medalflow.governance.openlineage import (
    ExtractionTaskExtractor,
    dbt_events,
    emit_dbt_lineage,
    extraction_lineage,
    lake_dataset,
    raw_dataset,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Connection:
    """What the lineage reads of an Airflow connection (BaseHook.get_connection's answer)."""

    def __init__(self, conn_type: str, host: str, port: int | None, schema: str | None) -> None:
        self.conn_type, self.host, self.port, self.schema = conn_type, host, port, schema


@pytest.mark.parametrize(
    ("lake", "expected"),
    [
        ("/data/lake", ("file", "/data/lake/raw/erp/orders")),
        ("s3://medalflow-lake/prod", ("s3://medalflow-lake", "prod/raw/erp/orders")),
        ("s3://medalflow-lake", ("s3://medalflow-lake", "raw/erp/orders")),
    ],
)
def test_raw_datasets_are_named_as_the_provider_names_their_assets(monkeypatch, lake, expected):
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    monkeypatch.setenv("MEDALFLOW_LAKE_URI", lake)
    assert raw_dataset("erp", "orders") == expected
    translated = translate_airflow_asset(raw_asset("erp", "orders"), None)
    assert (translated.namespace, translated.name) == expected


def test_a_relative_local_lake_is_named_by_its_absolute_path(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", "./lake")
    assert raw_dataset("files", "shipments") == ("file", str(tmp_path / "lake/raw/files/shipments"))
    assert lake_dataset("gcs://bucket/a/b") == ("gs://bucket", "a/b")


def test_an_erp_table_is_read_from_its_database_and_lands_with_its_declared_columns(monkeypatch):
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", "s3://lake")
    group = load_source_group("erp")
    inputs, outputs = extraction_lineage("erp", "orders", lambda conn_id: Connection("postgres", "db", 5432, "erp"))
    assert [(dataset.namespace, dataset.name) for dataset in inputs] == [("postgres://db:5432", "erp.public.orders")]
    (output,) = outputs
    assert (output.namespace, output.name) == ("s3://lake", "raw/erp/orders")
    fields = [(field.name, field.type) for field in output.facets["schema"].fields]
    assert fields == list(group.entity("orders").schema.columns.items())


def test_a_mysql_erp_names_database_and_table():
    inputs, _ = extraction_lineage("erp", "customers", lambda conn_id: Connection("mysql", "maria", 3306, "shop"))
    assert [(dataset.namespace, dataset.name) for dataset in inputs] == [("mysql://maria:3306", "shop.customers")]


def test_an_api_entity_is_read_from_its_endpoint(monkeypatch):
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", "/lake")
    inputs, outputs = extraction_lineage(
        "partner", "payments", lambda conn_id: Connection("http", "api.partner.example", None, "https")
    )
    assert [(dataset.namespace, dataset.name) for dataset in inputs] == [
        ("https://api.partner.example", "/api/v1/payments")
    ]
    assert (outputs[0].namespace, outputs[0].name) == ("file", "/lake/raw/partner/payments")


def test_file_drops_are_read_from_each_partners_inbox_folder(monkeypatch):
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", "s3://lake/p")
    inputs, outputs = extraction_lineage("files", "shipments")
    assert sorted((dataset.namespace, dataset.name) for dataset in inputs) == [
        ("s3://lake", "p/inbox/oceanic/shipments"),
        ("s3://lake", "p/inbox/skyfreight/shipments"),
    ]
    assert (outputs[0].namespace, outputs[0].name) == ("s3://lake", "p/raw/files/shipments")


def test_a_missing_connection_still_reports_the_output(caplog):
    def missing(conn_id: str) -> Any:
        raise LookupError(f"no {conn_id}")

    inputs, outputs = extraction_lineage("erp", "orders", missing)
    assert inputs == []
    assert len(outputs) == 1
    assert "no input dataset for erp.orders" in caplog.text


def test_the_extractor_describes_extraction_tasks_and_leaves_other_tasks_alone(monkeypatch, tmp_path):
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.sdk import DAG, task

    from medalflow.extract.dags import build_extraction_dags

    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_MEDALFLOW_ERP",
        json.dumps({"conn_type": "postgres", "host": "erp.internal", "port": 5432, "schema": "erp"}),
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXTRACTORS", medalflow_openlineage.EXTRACTOR_CLASSPATH)
    manager = ExtractorManager()  # reads [openlineage] extractors, as the provider's listener does
    dag = build_extraction_dags()["extract_erp"]
    extraction = dag.get_task("extract_orders")
    assert manager.get_extractor_class(extraction) is ExtractionTaskExtractor
    lineage = ExtractionTaskExtractor(extraction).extract_on_complete(None)
    assert [(dataset.namespace, dataset.name) for dataset in lineage.inputs] == [
        ("postgres://erp.internal:5432", "erp.public.orders")
    ]
    assert [(dataset.namespace, dataset.name) for dataset in lineage.outputs] == [
        ("file", str(tmp_path / "raw/erp/orders"))
    ]

    with DAG("unrelated", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC)):

        @task
        def other() -> None: ...

        unrelated = other().operator
    assert ExtractionTaskExtractor(unrelated).extract_on_complete(None) is None


# --- the dbt nodes' events -------------------------------------------------------------------------------------------


@pytest.fixture
def dbt_invocation(tmp_path, monkeypatch) -> Path:
    """A dbt project folder as Cosmos leaves it after a `dbt build`: the project's manifest and a run_results.json
    of a bronze model and the gold cash flow."""
    project = tmp_path / "project"
    (project / "target").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dbt_project/dbt_project.yml", project)
    shutil.copy(PROJECT_ROOT / "dbt_project/target/manifest.json", project / "target")
    timing = [
        {"name": "compile", "started_at": "2026-01-06T00:00:00Z", "completed_at": "2026-01-06T00:00:01Z"},
        {"name": "execute", "started_at": "2026-01-06T00:00:01Z", "completed_at": "2026-01-06T00:00:02Z"},
    ]
    results = [
        {"unique_id": unique_id, "status": "success", "timing": timing, "adapter_response": {}}
        for unique_id in ("model.medalflow.brz_erp__orders", "model.medalflow.agg_monthly_cash_flow")
    ]
    run_results = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
        "results": results,
        "args": {"which": "build", "profiles_dir": str(PROJECT_ROOT / "profiles")},
    }
    (project / "target/run_results.json").write_text(json.dumps(run_results))
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("MEDALFLOW_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    return project


def test_each_dbt_model_gets_a_run_whose_sources_are_the_raw_lake_datasets(dbt_invocation, tmp_path):
    events = dbt_events(dbt_invocation, "medalflow", "duckdb", "medalflow-test")
    completes = {event.job.name: event for event in events if event.eventType.value == "COMPLETE"}
    bronze = next(event for name, event in completes.items() if name.endswith("brz_erp__orders.build.run"))
    assert bronze.job.namespace == "medalflow-test"
    (source,) = bronze.inputs
    assert (source.namespace, source.name) == ("file", str(tmp_path / "lake/raw/erp/orders"))
    assert source.facets["dataSource"].name == "file"
    assert {field.name for field in source.facets["schema"].fields} >= {"order_id", "updated_at"}

    manifest = json.loads((PROJECT_ROOT / "dbt_project/target/manifest.json").read_text())
    node = manifest["nodes"]["model.medalflow.agg_monthly_cash_flow"]
    gold = next(event for name, event in completes.items() if name.endswith("agg_monthly_cash_flow.build.run"))
    (output,) = gold.outputs
    assert output.namespace.startswith("duckdb://")
    assert output.facets["documentation"].description == node["description"]
    assert [field.name for field in output.facets["schema"].fields] == list(node["columns"])
    parents = {parent.split(".")[-1] for parent in manifest["parent_map"][node["unique_id"]]}
    assert {dataset.name.split(".")[-1] for dataset in gold.inputs} == parents
    assert gold.job.facets["dbt_node"].unique_id == node["unique_id"]


def test_the_dbt_task_reports_the_nodes_datasets_without_one_nodes_facets(dbt_invocation, tmp_path):
    from medalflow.governance.openlineage import for_the_task

    events = dbt_events(dbt_invocation, "medalflow", "duckdb", "medalflow-test")
    gold = next(event for event in events if event.job.name.endswith("agg_monthly_cash_flow.build.run"))
    reduced = for_the_task(gold)
    assert (reduced.inputs, reduced.outputs) == (gold.inputs, gold.outputs)
    assert reduced.job.facets == {}
    assert set(reduced.run.facets) <= {"dbt_version", "dbt_run", "processing_engine"}
    assert "dbt_node" in gold.job.facets, "the node's own event keeps its facets"


def test_the_dbt_callback_does_nothing_when_openlineage_is_off(dbt_invocation, monkeypatch):
    from airflow.providers.openlineage import conf

    monkeypatch.delenv("AIRFLOW__OPENLINEAGE__TRANSPORT", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    clear_openlineage_conf()
    assert conf.is_disabled()

    class Task:
        def __init__(self) -> None:
            self.openlineage_events_completes = ["Cosmos's own"]

    cosmos_task = Task()
    assert emit_dbt_lineage(str(dbt_invocation), context={"task": cosmos_task, "ti": None}) == 0
    assert cosmos_task.openlineage_events_completes == ["Cosmos's own"]


# --- transports by configuration --------------------------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """Keeps every request; answers with the server's ``respond(handler, body) -> (status, json)``."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, answer = self.server.respond(self, body)  # type: ignore[attr-defined]
        self.server.requests.append((self.path, dict(self.headers), body, status))  # type: ignore[attr-defined]
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:  # quiet
        return


@pytest.fixture
def stand_in() -> Generator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []  # type: ignore[attr-defined]
    server.respond = lambda handler, body: (200, {})  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def clear_openlineage_conf() -> None:
    """The provider caches what it read of [openlineage]; a test that changes it must start and end afresh."""
    from airflow.providers.openlineage import conf

    for function in vars(conf).values():
        if hasattr(function, "cache_clear"):
            function.cache_clear()


@pytest.fixture(autouse=True)
def fresh_openlineage_conf() -> Generator[None]:
    clear_openlineage_conf()
    yield
    clear_openlineage_conf()


def provider_adapter(monkeypatch, transport: dict[str, Any]) -> Any:
    """The provider's adapter as a task would get it, with the transport set the way deployments set it."""
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter

    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "medalflow-test")
    clear_openlineage_conf()
    assert not conf.is_disabled()
    return OpenLineageAdapter()


def extraction_event(monkeypatch) -> Any:
    """A real event: the ERP orders extraction's, with its datasets and schema facet."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    monkeypatch.setenv("MEDALFLOW_LAKE_URI", "s3://medalflow-lake/dev")
    inputs, outputs = extraction_lineage("erp", "orders", lambda conn_id: Connection("postgres", "erp", 5432, "erp"))
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=str(uuid4())),
        job=Job(namespace="medalflow-test", name="extract_erp.extract_orders"),
        producer=medalflow_openlineage.PRODUCER,
        inputs=inputs,
        outputs=outputs,
    )


def test_an_http_backend_receives_the_events(monkeypatch, stand_in):
    adapter = provider_adapter(
        monkeypatch, {"type": "http", "url": f"http://127.0.0.1:{stand_in.server_port}", "endpoint": "api/v1/lineage"}
    )
    event = extraction_event(monkeypatch)
    adapter.emit(event)
    ((path, _, body, status),) = stand_in.requests
    assert (path, status) == ("/api/v1/lineage", 200)
    received = json.loads(body)
    assert received["run"]["runId"] == event.run.runId
    assert received["outputs"][0]["namespace"] == "s3://medalflow-lake"
    assert received["outputs"][0]["name"] == "dev/raw/erp/orders"


def test_amazon_datazone_receives_valid_post_lineage_event_requests(monkeypatch, stand_in):
    """Every request is checked against botocore's own model of DataZone's PostLineageEvent: method, path, the
    domain's pattern, the input shape (botocore's validator), the SigV4 scope; the body must be the event."""
    import botocore.session
    from botocore.validate import ParamValidator

    operation = botocore.session.get_session().get_service_model("datazone").operation_model("PostLineageEvent")
    route = re.escape(operation.http["requestUri"]).replace(r"\{domainIdentifier\}", "(?P<domain>[^/]+)")
    domain_shape = operation.input_shape.members["domainIdentifier"]
    problems: list[str] = []

    def respond(handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict]:
        match = re.fullmatch(route, handler.path)
        if handler.command != operation.http["method"] or not match:
            problems.append(f"{handler.command} {handler.path} is not {operation.http}")
            return 404, {"message": "unknown operation"}
        params = {"domainIdentifier": match["domain"], "event": body}
        if token := handler.headers.get(operation.input_shape.members["clientToken"].serialization["name"]):
            params["clientToken"] = token
        report = ParamValidator().validate(params, operation.input_shape)
        if report.has_errors():
            problems.append(report.generate_report())
        if not re.fullmatch(domain_shape.metadata["pattern"], match["domain"]):
            problems.append(f"domain {match['domain']!r} does not match {domain_shape.metadata['pattern']}")
        if "/datazone/aws4_request" not in handler.headers.get("Authorization", ""):
            problems.append("the request is not signed for datazone")
        event = json.loads(body)
        if event.get("eventType") != "COMPLETE" or not event.get("run", {}).get("runId"):
            problems.append("the body is not an OpenLineage run event")
        return (400, {"message": "; ".join(problems)}) if problems else (200, {"domainId": match["domain"], "id": "e1"})

    stand_in.respond = respond
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    adapter = provider_adapter(
        monkeypatch,
        {
            "type": "amazon_datazone_api",  # openlineage-python's AmazonDataZoneTransport.kind
            "domainId": "dzd_medalflow01",
            "endpointOverride": f"http://127.0.0.1:{stand_in.server_port}",
        },
    )
    event = extraction_event(monkeypatch)
    adapter.emit(event)
    assert problems == []
    ((path, headers, body, status),) = stand_in.requests
    assert (path, status) == ("/v2/domains/dzd_medalflow01/lineage/events", 200)
    assert json.loads(body)["run"]["runId"] == event.run.runId
    assert json.loads(body)["outputs"][0]["facets"]["schema"]["fields"][0]["name"] == "order_id"
    assert headers.get("Client-Token"), "botocore fills the idempotency token"
