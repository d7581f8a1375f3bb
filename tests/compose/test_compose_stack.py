"""`docker compose up`, for real: the stack of docker-compose.yml runs the demo pipeline and ends with gold rows.

One stack for the module: a Docker engine (scripts/docker_engine.sh installs Debian's and starts it when none
answers), the images (third-party stand-ins from Debian packages where no registry answers, the project's from its
Dockerfile; both cached between runs), `docker compose up --wait`, then what a user does in the UI (docs/compose.md):
unpause the medallion and the three daily extractions; the extractions run the seeded demo day and nothing else, and
their Assets start the medallion, which builds gold. Prometheus then holds Airflow's metrics of those runs. Where no
engine can run, the tests fail saying why. Everything is torn down with its volumes afterwards, and an engine started
here is stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from compose_stack import DAILY_EXTRACTIONS, DEMO_START, MEDALLION, Engine, Stack, StackError, build_images

# The whole stack: a cold image build alone takes minutes on 2 cores.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    engine = Engine()
    running = Stack()
    try:
        engine.ensure()
        # The classic builder: no buildx needed, and its layer cache is the one the benchmark and users of
        # DOCKER_BUILDKIT=0 share (a BuildKit build works too: docs/compose.md).
        build_images(classic_builder=True)
        running.up()
        running.sign_in()
        yield running
    except StackError as error:
        pytest.fail(f"the compose stack could not run: {error}", pytrace=False)
    finally:
        try:
            running.down()
        finally:
            engine.stop()


@pytest.fixture(scope="module")
def demo_runs(stack: Stack) -> dict[str, list[dict]]:
    try:
        stack.start_demo()
        return stack.wait_for_demo()
    except StackError as error:
        pytest.fail(str(error), pytrace=False)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_service_is_up_and_the_one_shots_succeeded(stack):
    services = {}
    for line in stack.compose("ps", "--all", "--format", "json").splitlines():
        for entry in json.loads(line) if line.startswith("[") else [json.loads(line)]:
            services[entry["Service"]] = entry
    one_shots = {"minio-init", "airflow-init", "erp-seed", "file-drops-seed"}
    long_running = {
        "postgres", "redis", "minio", "partner-api", "airflow-api-server", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "statsd-exporter", "prometheus",
    }  # fmt: skip
    assert set(services) == one_shots | long_running
    for name in long_running:
        assert services[name]["Health"] == "healthy", f"{name}: {services[name]['Status']}"
    for name in one_shots:
        assert services[name]["ExitCode"] == 0, f"{name}: {services[name]['Status']}"


def test_the_ui_serves_the_dbt_docs_generated_at_start(stack):
    page, manifest = stack.dbt_docs_page()
    assert b"<html" in page.lower()
    assert b"dbt" in page
    nodes = json.loads(manifest)["nodes"]
    assert any(key.startswith("model.") and key.endswith(".agg_monthly_orders") for key in nodes)


def test_unpausing_runs_exactly_the_seeded_day_and_the_medallion_follows_by_its_assets(demo_runs):
    demo_day = datetime(DEMO_START.year, DEMO_START.month, DEMO_START.day, tzinfo=UTC)
    for dag_id in DAILY_EXTRACTIONS:
        (run,) = demo_runs[dag_id]  # no run of "yesterday" beside the demo day's
        assert run["run_type"] == "scheduled", dag_id
        assert (moment(run["data_interval_start"]) - demo_day).total_seconds() == 0, dag_id
        assert (moment(run["data_interval_end"]) - demo_day).days == 1, dag_id
    (medallion,) = demo_runs[MEDALLION]
    assert medallion["run_type"] == "asset_triggered"
    assert medallion["state"] == "success"


def test_the_pipeline_ends_with_gold_that_matches_the_seeded_erp(stack, demo_runs):
    erp = stack.erp_monthly_orders()
    assert erp, "the ERP seeding loaded no orders"
    assert stack.gold_monthly_orders() == erp


def test_prometheus_scraped_airflow_metrics_of_the_components_and_the_runs(stack, demo_runs):
    """Airflow's StatsD metrics under the names docker/statsd-exporter/mappings.yml gives them, labelled by DAG and
    task: the scheduler's heartbeat, the medallion's run duration, the extraction's finished task instances."""
    (heartbeat,) = stack.wait_for_metric("airflow_scheduler_heartbeat_total")
    assert float(heartbeat["value"][1]) > 0
    (medallion,) = stack.wait_for_metric('airflow_dagrun_duration_seconds_count{dag_id="medallion", state="success"}')
    assert medallion["value"][1] == "1"
    finished = stack.wait_for_metric('airflow_ti_finish_total{dag_id="extract_erp", state="success"}')
    assert {series["metric"]["task_id"] for series in finished} >= {"extract_customers", "extract_orders"}
    durations = stack.wait_for_metric('airflow_task_duration_seconds_count{dag_id="extract_erp"}')
    assert all(float(series["value"][1]) >= 1 for series in durations)
    # The duplicates without ids are dropped: one metric per concept.
    assert stack.prometheus_query("airflow_dagrun_duration_success_count") == []


def test_the_pipeline_health_page_shows_the_demo_runs_and_gold(stack, demo_runs):
    stack.run_observability()
    page = stack.pipeline_health()
    runs = {(run["dag_id"], run["status"]) for run in page["runs"]}
    assert (MEDALLION, "success") in runs
    assert {(dag_id, "success") for dag_id in DAILY_EXTRACTIONS} <= runs
    assert page["target_types"] == ["duckdb"]
    assert not page["cost_available"], "bytes and cost are Athena's"
    assert page["gold"]["orders"]["order_count"]
    assert page["gold"]["cash_flow"]["months"]
    html = stack.request("GET", "/medalflow/", raw=True)
    assert b"chart.umd.min.js" in html
