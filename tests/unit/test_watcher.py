"""How the medallion's model tasks wait in the triggerer: the producer publishes every node's status in one XCom, and
one poll loop per run reads it for all the tasks waiting on it (medalflow.watcher)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pydantic
import pytest
from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from cosmos.operators._watcher.base import store_dbt_resource_status_from_log

from medalflow import watcher
from medalflow.watcher import NODE_STATUSES_XCOM_KEY, ProducerResultTrigger, ProducerSnapshot, ProducerWatch

MODEL = "model.medalflow.slv_orders"
TEST = "test.medalflow.not_null_slv_orders_order_id.1a2b"
MODEL_STATUS_KEY = "model__medalflow__slv_orders_status"
TESTS_STATUS_KEY = "model__medalflow__slv_orders_tests_status"


class FakeTaskInstance(pydantic.BaseModel):
    """A pydantic model like the Task SDK's RuntimeTaskInstance, recording what is pushed to XCom."""

    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    dag_id: str = "medallion"
    pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


def node_finished(unique_id: str, resource_type: str, status: str) -> str:
    """A dbt ``--log-format json`` line as dbt writes it when a node finishes (the fields Cosmos reads)."""
    return json.dumps(
        {
            "info": {"name": "NodeFinished", "level": "info", "msg": f"{unique_id} {status}"},
            "data": {"node_info": {"unique_id": unique_id, "resource_type": resource_type, "node_status": status}},
        }
    )


def test_the_producer_publishes_every_status_cosmos_pushes_in_one_xcom():
    task_instance = FakeTaskInstance()
    watcher.publish_node_statuses({"ti": task_instance})
    context = {"ti": task_instance}
    tests_per_model = {MODEL: [TEST]}
    parse = {"tests_per_model": tests_per_model, "test_results_per_model": {}, "should_generate_model_uris": False}

    store_dbt_resource_status_from_log(node_finished(MODEL, "model", "success"), {"context": context}, **parse)
    assert task_instance.pushed[-1] == (NODE_STATUSES_XCOM_KEY, {MODEL_STATUS_KEY: task_instance.pushed[-2][1]})
    store_dbt_resource_status_from_log(node_finished(TEST, "test", "fail"), {"context": context}, **parse)

    keys = [key for key, _ in task_instance.pushed]
    assert MODEL_STATUS_KEY in keys, "Cosmos's own keys are still pushed"
    assert TESTS_STATUS_KEY in keys
    published = task_instance.pushed[-1]
    assert published[0] == NODE_STATUSES_XCOM_KEY
    assert published[1][MODEL_STATUS_KEY]["status"] == "success"
    assert published[1][TESTS_STATUS_KEY] == "fail"
    assert "pushed" in task_instance.model_dump()
    assert "xcom_push" not in task_instance.model_dump()


def test_only_node_statuses_are_mirrored():
    pushed = []
    mirror = watcher.NodeStatusMirror(lambda key, value: pushed.append((key, value)))
    mirror("task_status", "completed")
    mirror("dbt_startup_events", [])
    mirror("model__medalflow__slv_orders_compiled_sql", "select 1")
    assert [key for key, _ in pushed] == [
        "task_status",
        "dbt_startup_events",
        "model__medalflow__slv_orders_compiled_sql",
    ]


def trigger(is_test_sensor: bool = False) -> ProducerResultTrigger:
    return ProducerResultTrigger(
        model_unique_id=MODEL,
        producer_task_id="dbt.dbt_producer_watcher",
        poke_interval=0.01,
        is_test_sensor=is_test_sensor,
    )


@pytest.mark.parametrize(
    ("statuses", "producer_state", "outcome"),
    [
        ({}, "running", None),
        ({MODEL_STATUS_KEY: {"status": "success", "outlet_uris": []}}, "running", TaskSuccessEvent),
        ({MODEL_STATUS_KEY: {"status": "skipped", "outlet_uris": []}}, "running", TaskSkippedEvent),
        ({MODEL_STATUS_KEY: {"status": "error", "outlet_uris": []}}, "running", "node_failed"),
        ({MODEL_STATUS_KEY: {"status": "success", "outlet_uris": []}}, "failed", TaskSuccessEvent),
        ({}, "failed", "producer_failed"),
        ({}, "skipped", "producer_skipped"),
        ({}, "success", TaskSuccessEvent),
        ({}, "upstream_failed", None),
        ({TESTS_STATUS_KEY: "pass"}, "running", None),
    ],
)
def test_a_model_task_ends_as_cosmos_would_end_it(statuses, producer_state, outcome):
    event = trigger().outcome(ProducerSnapshot(producer_state, statuses))
    if outcome is None or isinstance(outcome, type):
        assert (event if event is None else type(event)) is outcome
    else:
        assert type(event) is TriggerEvent, "failures resume on a worker with Cosmos's event"
        assert event.payload["status"] == "failed"
        assert event.payload["reason"] == outcome


@pytest.mark.parametrize(("status", "outcome"), [("pass", TaskSuccessEvent), ("fail", TriggerEvent)])
def test_a_tests_task_reads_the_aggregated_result_of_its_models_tests(status, outcome):
    snapshot = ProducerSnapshot("running", {MODEL_STATUS_KEY: {"status": "success"}, TESTS_STATUS_KEY: status})
    assert type(trigger(is_test_sensor=True).outcome(snapshot)) is outcome
    assert trigger(is_test_sensor=True).outcome(ProducerSnapshot("running", {MODEL_STATUS_KEY: "success"})) is None


def scripted_polls(monkeypatch, snapshots: list[ProducerSnapshot | Exception]) -> list[tuple[str, str, str]]:
    """ProducerWatch.poll answers from a script (the last answer repeats); returns the polls it was asked for."""
    polls: list[tuple[str, str, str]] = []

    def poll(self):
        polls.append((self.dag_id, self.run_id, self.producer_task_id))
        answer = snapshots[min(len(polls), len(snapshots)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(ProducerWatch, "poll", poll)
    return polls


def model_trigger(name: str, run_id: str = "manual__1") -> ProducerResultTrigger:
    waiting = ProducerResultTrigger(
        model_unique_id=f"model.medalflow.{name}", producer_task_id="dbt.dbt_producer_watcher", poke_interval=0.01
    )
    waiting.task_instance = SimpleNamespace(dag_id="medallion", run_id=run_id, map_index=-1, task_id=f"dbt.{name}.run")
    return waiting


async def events_of(*triggers: ProducerResultTrigger) -> list[list[TriggerEvent]]:
    async def collect(waiting):
        return [event async for event in waiting.run()]

    return await asyncio.gather(*(collect(waiting) for waiting in triggers))


def test_the_tasks_waiting_on_one_run_share_one_poll_loop(monkeypatch):
    running = ProducerSnapshot("running", {})
    first_done = ProducerSnapshot("running", {"model__medalflow__m0_status": {"status": "success"}})
    all_done = ProducerSnapshot("success", {f"model__medalflow__m{i}_status": {"status": "success"} for i in range(8)})
    polls = scripted_polls(monkeypatch, [running, running, first_done, first_done, all_done])
    triggers = [model_trigger(f"m{i}") for i in range(8)]

    results = asyncio.run(events_of(*triggers))

    assert [[type(event) for event in events] for events in results] == [[TaskSuccessEvent]] * 8
    assert len(polls) == 5, "eight waiting tasks, one poll per round"
    assert set(polls) == {("medallion", "manual__1", "dbt.dbt_producer_watcher")}, "the run comes from the triggerer"
    assert ProducerWatch._watches == {}, "the loop ends with the last waiting task"


def test_each_run_has_its_own_poll_loop(monkeypatch):
    polls = scripted_polls(monkeypatch, [ProducerSnapshot("success", {})])
    asyncio.run(events_of(model_trigger("a", "manual__1"), model_trigger("b", "manual__2")))
    assert sorted(run for _, run, _ in polls) == ["manual__1", "manual__2"]


def test_a_failed_poll_fails_every_task_waiting_on_it(monkeypatch):
    scripted_polls(monkeypatch, [ProducerSnapshot("running", {}), RuntimeError("execution API unreachable")])
    with pytest.raises(RuntimeError, match="unreachable"):
        asyncio.run(events_of(model_trigger("a"), model_trigger("b")))
    assert ProducerWatch._watches == {}


def test_the_trigger_serialises_under_its_own_class_path():
    assert trigger().serialize()[0] == watcher.TRIGGER_CLASSPATH


@pytest.mark.parametrize("producer_state", ["success", "failed", "skipped", "upstream_failed"])
def test_a_second_try_after_the_build_reruns_the_node_on_a_worker(producer_state):
    """A retry or a task cleared in the UI must not report the first build's result again (Cosmos's fall-back)."""
    done = ProducerSnapshot(producer_state, {MODEL_STATUS_KEY: {"status": "success"}})
    event = trigger().outcome(done, try_number=2)
    assert type(event) is TriggerEvent
    assert event.payload["reason"] == "producer_skipped", "execute_complete runs the node itself for this reason"
    assert type(trigger().outcome(done, try_number=1)) is TaskSuccessEvent, "the first try reports the build's result"


def test_a_second_try_while_the_build_runs_waits_for_it():
    """Retried while the producer still builds (the task timed out waiting): its result is still to come."""
    assert trigger().outcome(ProducerSnapshot("running", {}), try_number=2) is None
    built = ProducerSnapshot("running", {MODEL_STATUS_KEY: {"status": "success"}})
    assert type(trigger().outcome(built, try_number=2)) is TaskSuccessEvent


def test_the_try_number_comes_from_the_triggerer(monkeypatch):
    scripted_polls(monkeypatch, [ProducerSnapshot("success", {"model__medalflow__a_status": {"status": "success"}})])
    first, cleared = model_trigger("a"), model_trigger("a")
    first.task_instance.try_number, cleared.task_instance.try_number = 1, 2
    events = asyncio.run(events_of(first, cleared))
    assert [type(event) for event in events[0]] == [TaskSuccessEvent]
    assert events[1][0].payload["reason"] == "producer_skipped"
