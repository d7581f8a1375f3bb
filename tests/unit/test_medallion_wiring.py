"""How the medallion DAG is rendered: execution mode, DuckDB pool, watcher sensors that live in the triggerer.

How those sensors wait: tests/unit/test_watcher.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from cosmos.operators._watcher.base import BaseConsumerSensor

from medalflow import medallion, watcher
from medalflow.settings import get_settings

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "medallion.py"


def render(monkeypatch, mode: str):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MEDALFLOW_COSMOS_EXECUTION_MODE", mode)
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["medallion"]


def test_execution_mode_from_the_environment(monkeypatch):
    monkeypatch.delenv("MEDALFLOW_COSMOS_EXECUTION_MODE", raising=False)
    assert medallion.execution_mode().value == "watcher"
    monkeypatch.setenv("MEDALFLOW_COSMOS_EXECUTION_MODE", " LOCAL ")
    assert medallion.execution_mode().value == "local"
    monkeypatch.setenv("MEDALFLOW_COSMOS_EXECUTION_MODE", "kubernetes")
    with pytest.raises(ValueError, match="kubernetes"):
        medallion.execution_mode()


def test_only_duckdb_needs_the_single_writer_pool(monkeypatch):
    monkeypatch.setenv("MEDALFLOW_DBT_TARGET", "duckdb")
    monkeypatch.delenv("MEDALFLOW_DUCKDB_POOL", raising=False)
    assert medallion.dbt_pool(get_settings()) == "duckdb_writer"
    monkeypatch.setenv("MEDALFLOW_DUCKDB_POOL", "warehouse")
    assert medallion.dbt_pool(get_settings()) == "warehouse"
    monkeypatch.setenv("MEDALFLOW_DBT_TARGET", "athena")
    assert medallion.dbt_pool(get_settings()) is None


def test_watcher_mode_one_producer_and_sensors_that_wait_beside_it_in_the_triggerer(monkeypatch):
    dag = render(monkeypatch, "watcher")
    producer = dag.get_task("dbt.dbt_producer_watcher")
    sensors = [task for task in dag.tasks if isinstance(task, BaseConsumerSensor)]
    assert len(sensors) >= 6
    assert producer.pool == "duckdb_writer"
    assert producer._pre_execute_hook is watcher.publish_node_statuses, "the sensors read the statuses it publishes"
    assert producer.upstream_task_ids == set()
    # A sensor takes the writer's slot only if it runs its model itself on a worker; waiting, it is deferred, and
    # deferred tasks hold no slot (tests/live proves the run does not deadlock).
    assert {sensor.pool for sensor in sensors} == {"duckdb_writer"}
    for sensor in sensors:
        assert sensor.start_from_trigger
        assert sensor.start_trigger_args.trigger_cls == watcher.TRIGGER_CLASSPATH
        assert sensor.start_trigger_args.trigger_kwargs["model_unique_id"] == sensor.model_unique_id
    # In a running Airflow the first sensors wait while the producer builds (each reports its model as dbt
    # finishes it); for dag.test(), which runs one task at a time, they are put after it.
    roots = [sensor for sensor in sensors if not {s.task_id for s in sensors} & sensor.upstream_task_ids]
    assert roots
    assert all(root.upstream_task_ids == set() for root in roots)
    assert watcher.sensors_follow_producer(dag.tasks) == len(roots)
    assert all(root.upstream_task_ids == {producer.task_id} for root in roots)
    assert {root.trigger_rule for root in roots} == {"all_done"}
    assert dag.get_task("dbt.models.gold.agg_monthly_orders.run").upstream_task_ids == {
        "dbt.models.silver.slv_orders.test"
    }


def test_local_mode_every_dbt_task_takes_the_pool(monkeypatch):
    dag = render(monkeypatch, "local")
    dbt_tasks = [task for task in dag.tasks if task.task_id.startswith("dbt.")]
    assert dbt_tasks
    assert {task.pool for task in dbt_tasks} == {"duckdb_writer"}
    assert not any(isinstance(task, BaseConsumerSensor) for task in dbt_tasks)


def test_the_rendering_shortcut_leaves_cosmos_as_it_was():
    import cosmos.operators.local as cosmos_local

    before = cosmos_local.inspect
    with medallion.fast_cosmos_rendering():
        assert cosmos_local.inspect is not before
        assert cosmos_local.inspect.signature(test_execution_mode_from_the_environment) is (
            cosmos_local.inspect.signature(test_execution_mode_from_the_environment)
        )
    assert cosmos_local.inspect is before


def test_the_medallion_waits_for_every_daily_source_but_not_the_weekly_forecast(monkeypatch):
    monkeypatch.delenv("MEDALFLOW_MEDALLION_SOURCES", raising=False)
    names = {asset.name for asset in medallion.medallion_schedule().objects}
    assert {"raw.erp.orders", "raw.partner.payments", "raw.files.shipments"} <= names
    assert not any(name.startswith("raw.forecast.") for name in names)
    monkeypatch.setenv("MEDALFLOW_MEDALLION_SOURCES", "erp")
    assert {asset.name for asset in medallion.medallion_schedule().objects} == {
        "raw.erp.customers",
        "raw.erp.orders",
        "raw.erp.products",
        "raw.erp.suppliers",
    }


def test_identity_hashing_lasts_only_while_the_graph_is_wired():
    from airflow.sdk import DAG

    dag = DAG("hashing_probe", schedule=None)
    by_value = hash(dag)
    with medallion.dag_hashed_by_identity(dag):
        assert hash(dag) == object.__hash__(dag)
        assert isinstance(dag, DAG)
    assert type(dag) is DAG
    assert hash(dag) == by_value
    with medallion.dag_hashed_by_identity(None):
        pass


@pytest.mark.parametrize("mode", ["watcher", "local"])
def test_the_ui_can_lay_out_the_task_groups(monkeypatch, mode):
    """The UI's grid and graph sort task groups topologically; a test over models of several layers, left in one
    layer's group by Cosmos, made the groups cyclic and the page fail (HTTP 500)."""
    from airflow.api_fastapi.core_api.services.ui.task_group import task_group_to_dict_grid
    from airflow.serialization.serialized_objects import DagSerialization

    dag = render(monkeypatch, mode)
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    structure = [task_group_to_dict_grid(node) for node in serialized.task_group.topological_sort()]
    assert [node["id"] for node in structure] == ["dbt"]
    detached = serialized.get_task(
        next(
            task_id
            for task_id in serialized.task_ids
            if task_id.endswith("assert_monthly_orders_reconcile_with_silver_test")
        )
    )
    assert detached.task_group.group_id == "dbt"


def test_dbt_gets_the_interval_of_the_triggering_asset_events_or_of_the_conf(monkeypatch):
    """The producer's environment is rendered with the DAG's interval macro: conf first, else the union of the
    intervals the triggering asset events carry."""
    from datetime import UTC, datetime

    dag = render(monkeypatch, "watcher")
    producer = dag.get_task("dbt.dbt_producer_watcher")
    templates = {name: producer.env[name] for name in medallion.DBT_INTERVAL_ENVIRONMENT}
    environment = dag.get_template_env()

    def rendered(conf, extras):
        run = SimpleNamespace(conf=conf, run_after=datetime(2026, 2, 1, tzinfo=UTC))
        events = {"raw.erp.orders": [SimpleNamespace(extra=extra) for extra in extras]}
        context = {
            "dag_run": run,
            "triggering_asset_events": events,
            "data_interval_start": None,
            "data_interval_end": None,
        }
        return {name: environment.from_string(template).render(**context) for name, template in templates.items()}

    day = {"data_interval_start": "2026-01-05T00:00:00+00:00", "data_interval_end": "2026-01-06T00:00:00+00:00"}
    week = {"data_interval_start": "2026-01-04T02:00:00+00:00", "data_interval_end": "2026-01-11T02:00:00+00:00"}
    assert rendered({}, [day, week]) == {
        "MEDALFLOW_DATA_INTERVAL_START": "2026-01-04T02:00:00+00:00",
        "MEDALFLOW_DATA_INTERVAL_END": "2026-01-11T02:00:00+00:00",
    }
    assert rendered(day, [week])["MEDALFLOW_DATA_INTERVAL_END"] == "2026-01-06T00:00:00+00:00"
    assert rendered({}, []) == {
        "MEDALFLOW_DATA_INTERVAL_START": "2026-01-31T00:00:00+00:00",
        "MEDALFLOW_DATA_INTERVAL_END": "2026-02-01T00:00:00+00:00",
    }


def test_every_process_renders_the_same_task_ids():
    """The scheduler, the dag-processor and each worker parse the file in their own process, each with its own string
    hash seed: a task id that depends on it is "not found" by a worker (Cosmos's selection keeps a set's order)."""
    import os
    import subprocess
    import sys

    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAG_FILE)!r})\n"
        "assert bag.import_errors == {}, bag.import_errors\n"
        "print('TASK IDS', *sorted(bag.dags['medallion'].task_ids))\n"
    )
    renderings = {}
    for seed in ("1", "2", "3"):
        completed = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        (line,) = [line for line in completed.stdout.splitlines() if line.startswith("TASK IDS ")]
        renderings[seed] = line.split()[2:]
    assert any(task_id.endswith("_test") for task_id in renderings["1"]), "no test over several models rendered"
    assert renderings["1"] == renderings["2"] == renderings["3"]
    assert not any("obs_" in task_id for task_id in renderings["1"]), "the observability models have their own DAG"


def test_selection_keeps_the_manifest_order_only_while_the_group_is_built():
    import cosmos.dbt.selector as cosmos_selector

    original = cosmos_selector.get_nodes_from_subset
    nodes = {f"model.medalflow.m{index}": index for index in range(50)}
    with medallion.selection_in_manifest_order():
        kept = cosmos_selector.get_nodes_from_subset(nodes, set(nodes) - {"model.medalflow.m7"})
        assert list(kept) == [node_id for node_id in nodes if node_id != "model.medalflow.m7"]
    assert cosmos_selector.get_nodes_from_subset is original
