"""`docker compose up`, for real: the stack of docker-compose.yml runs the demo pipeline and ends with gold rows.

One stack for the module: a Docker engine (scripts/docker_engine.sh installs Debian's and starts it when none
answers), the images (third-party stand-ins from Debian packages where no registry answers, the project's from its
Dockerfile; both cached between runs), `docker compose up --wait`, then what a user does in the UI (docs/compose.md):
unpause, trigger the daily extractions for the demo interval, and the asset-triggered medallion builds gold. Where no
engine can run, the tests fail saying why. Everything is torn down with its volumes afterwards, and an engine started
here is stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from compose_stack import Engine, Stack, StackError, build_images

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
def medallion_run(stack: Stack) -> dict:
    try:
        stack.trigger_demo()
        return stack.wait_for_medallion()
    except StackError as error:
        pytest.fail(str(error), pytrace=False)


def test_every_service_is_up_and_the_one_shots_succeeded(stack):
    services = {}
    for line in stack.compose("ps", "--all", "--format", "json").splitlines():
        for entry in json.loads(line) if line.startswith("[") else [json.loads(line)]:
            services[entry["Service"]] = entry
    one_shots = {"minio-init", "airflow-init", "erp-seed", "file-drops-seed"}
    long_running = {
        "postgres", "redis", "minio", "partner-api", "airflow-api-server", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
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


def test_the_triggered_pipeline_ends_with_gold_that_matches_the_seeded_erp(stack, medallion_run):
    assert medallion_run["state"] == "success"
    erp = stack.erp_monthly_orders()
    assert erp, "the ERP seeding loaded no orders"
    assert stack.gold_monthly_orders() == erp
