"""Tier 3: the pipeline's OpenLineage events, end to end, walked from gold back to the extraction tasks.

The walking skeleton's pipeline (tools/medalflow_demo/pipeline.py: the demo ERP on PostgreSQL, the partner API, file
drops; the extraction DAGs and the watcher-mode medallion through ``dag.test()``) runs with the OpenLineage provider
writing to a file transport. It runs in a process of its own: the provider decides whether it is on when its plugin
is first imported, so the setting must be there before Airflow starts, without turning lineage on for every other
test of the session.

The events must chain: gold ``agg_monthly_cash_flow`` <- silver ``fct_order_correlated`` <- bronze models <- the raw
lake datasets of the erp, partner and files sources (named alike by the dbt nodes' runs and the extraction tasks) <-
the extraction tasks that wrote them; the same chain the dbt manifest and the source configs declare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medalflow.extract.config import load_source_group
from medalflow.governance.lineage import MODEL, RAW, TASK, EventLineage, build_lineage_graph

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GOLD = "model.medalflow.agg_monthly_cash_flow"
CORRELATED_FACT = "model.medalflow.fct_order_correlated"
NAMESPACE = "medalflow-test"
CHAIN_SOURCES = {"erp", "partner", "files"}  # the forecast feeds other marts, not the cash flow

PIPELINE = textwrap.dedent(
    """
    import sys
    from datetime import date
    from pathlib import Path

    from sqlalchemy import create_engine

    from medalflow_demo import erp
    from medalflow_demo.pipeline import load_dags, run_pipeline
    from medalflow_demo.world import DemoConfig, generate

    erp_url, lake = sys.argv[1], Path(sys.argv[2])
    day = date(2026, 1, 5)
    world = generate(DemoConfig(seed=11, scale=0.1, start_date=day, end_date=date(2026, 1, 6)))
    engine = create_engine(erp_url)
    erp.create_schema(engine)
    run_pipeline(load_dags(), world, [day], engine, lake)
    engine.dispose()
    """
)


@pytest.fixture(scope="module")
def lineage_run(airflow_database, postgres_database, tmp_path_factory):
    """One pipeline run with the file transport: (its events file, its lake folder, the ERP's database name)."""
    from sqlalchemy import create_engine, text

    # As conftest's fresh_asset_registry (function-scoped): this run's lake gives the raw Assets new URIs.
    engine = create_engine(airflow_database)
    with engine.begin() as connection:
        connection.execute(text("delete from asset_active"))
    engine.dispose()
    work = tmp_path_factory.mktemp("openlineage")
    erp_url = postgres_database("openlineage_erp")
    database = erp_url.rsplit("/", 1)[1]
    events = work / "lineage" / "events.jsonl"
    events.parent.mkdir(parents=True)
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": database}
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(PROJECT_ROOT / folder) for folder in ("dags", "plugins", "tools")),
        "AIRFLOW_CONN_MEDALFLOW_ERP": json.dumps(connection),
        "MEDALFLOW_LAKE_URI": str(work / "lake"),
        "MEDALFLOW_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "MEDALFLOW_DBT_TARGET": "duckdb",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "medalflow.governance.openlineage.ExtractionTaskExtractor",
    }
    log = work / "pipeline.log"
    with log.open("w") as output:
        finished = subprocess.run(
            [sys.executable, "-c", PIPELINE, erp_url, str(work / "lake")],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=1500,
            check=False,
        )
    assert finished.returncode == 0, "the pipeline failed:\n" + "\n".join(log.read_text().splitlines()[-60:])
    assert events.exists(), "the file transport wrote no event"
    return events, work / "lake", database


def raw_name(lake: Path, source: str, entity: str) -> tuple[str, str]:
    return "file", str(lake / "raw" / source / entity)


def completed(events_file: Path) -> list[dict]:
    lines = events_file.read_text().splitlines()
    return [event for event in map(json.loads, filter(None, lines)) if event["eventType"] == "COMPLETE"]


def test_each_extraction_task_reports_its_source_and_the_raw_dataset_it_wrote(lineage_run):
    events_file, lake, database = lineage_run
    by_job = {event["job"]["name"]: event for event in completed(events_file) if event["job"]["namespace"] == NAMESPACE}
    for source in sorted(CHAIN_SOURCES):
        group = load_source_group(source)
        for entity_name, entity in group.entities.items():
            job = f"{group.dag_id}.extract_{entity_name}"
            assert job in by_job, f"no COMPLETE event for {job}; jobs: {sorted(by_job)}"
            event = by_job[job]
            (output,) = event["outputs"]
            assert (output["namespace"], output["name"]) == raw_name(lake, source, entity_name)
            fields = [(field["name"], field["type"]) for field in output["facets"]["schema"]["fields"]]
            assert fields == list(entity.schema.columns.items())
            inputs = {(dataset["namespace"], dataset["name"]) for dataset in event["inputs"]}
            if group.kind == "sql":
                assert inputs == {("postgres://127.0.0.1:5432", f"{database}.public.{entity.table}")}
            elif group.kind == "rest":
                ((namespace, name),) = inputs
                assert namespace.startswith("http://127.0.0.1:")
                assert name == entity.path
            else:
                assert inputs == {("file", str(lake / "inbox" / partner / entity_name)) for partner in entity.formats}


def test_each_dbt_model_has_its_own_run_with_schema_and_description(lineage_run):
    events_file, _, _ = lineage_run
    manifest = json.loads((PROJECT_ROOT / "dbt_project/target/manifest.json").read_text())
    runs = {  # each model's run (its tests' runs name the model too, and have no output)
        event["job"]["facets"]["dbt_node"]["unique_id"]: event
        for event in completed(events_file)
        if (event["job"].get("facets") or {}).get("jobType", {}).get("jobType") == "MODEL"
    }
    # The medallion's models; the observability models describe the runs themselves and have their own DAG.
    models = [
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if unique_id.startswith("model.") and "observability" not in node["tags"]
    ]
    assert set(models) <= set(runs), f"models without a run: {sorted(set(models) - set(runs))}"
    gold = runs[GOLD]
    assert gold["job"]["namespace"] == NAMESPACE
    assert gold["run"]["facets"]["parent"]["job"]["namespace"] == NAMESPACE
    (output,) = gold["outputs"]
    node = manifest["nodes"][GOLD]
    assert output["facets"]["documentation"]["description"] == node["description"]
    described = {field["name"]: field for field in output["facets"]["schema"]["fields"]}
    assert set(described) == set(node["columns"])
    assert all(described[name]["description"] == column["description"] for name, column in node["columns"].items())
    assert all(described[name].get("type") for name in node["columns"]), "gold declares every column's type"


def test_the_events_chain_gold_to_the_extraction_tasks_as_the_manifest_declares(lineage_run):
    events_file, lake, _ = lineage_run
    events = EventLineage.from_file(events_file)
    manifest = json.loads((PROJECT_ROOT / "dbt_project/target/manifest.json").read_text())
    groups = [load_source_group(name) for name in ("erp", "partner", "files", "forecast")]
    declared = build_lineage_graph(manifest, groups, lambda source, entity: raw_name(lake, source, entity))

    # The manifest: the cash flow reads the correlated fact, which joins the bronze models of erp, partner, files.
    assert declared.parents[GOLD] == [CORRELATED_FACT]
    chain = declared.upstream(GOLD)
    raw_declared = {declared.nodes[node].detail for node in chain if declared.nodes[node].kind == RAW}
    tasks_declared = {declared.nodes[node].label for node in chain if declared.nodes[node].kind == TASK}
    assert f"file {lake}/raw/erp/orders" in raw_declared
    assert {label.split(".")[0] for label in tasks_declared} == {
        "extract_erp",
        "extract_partner_api",
        "extract_file_drops",
    }

    # The events: the same chain, dataset by dataset.
    gold = events.dbt_outputs[GOLD]
    fact = events.dbt_outputs[CORRELATED_FACT]
    assert events.specific_parents(gold) == {fact}
    bronze = {events.dbt_outputs[node] for node in chain if node.startswith("model.medalflow.brz_")}
    assert bronze
    assert bronze <= events.upstream(gold)
    upstream = events.upstream(gold)
    raw_in_events = {f"{namespace} {name}" for namespace, name in upstream if "/raw/" in name}
    assert raw_in_events == raw_declared
    assert {name.split("/raw/")[1].split("/")[0] for _, name in upstream if "/raw/" in name} == CHAIN_SOURCES
    writers = {
        job.split("/", 1)[1]
        for dataset in upstream
        if "/raw/" in dataset[1]
        for job in events.writers.get(dataset, set())
    }
    assert writers == tasks_declared, "each raw dataset of the chain was written by the extraction task declared"
    # Every model of the declared chain appears in the events' chain, and nothing of the forecast does.
    models_declared = {events.dbt_outputs[node] for node in chain if declared.nodes[node].kind == MODEL} - {gold}
    assert models_declared <= upstream
    assert not any("/raw/forecast/" in name for _, name in upstream)
