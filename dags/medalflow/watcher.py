"""Watcher-mode model tasks that wait in the triggerer alone, with no worker process unless something goes wrong.

Cosmos's watcher sensors start on a worker, poke once, defer to the triggerer, then resume on a worker to finish:
two task processes per model and per model's tests, each re-parsing the DAG file. On a small worker that start-up
cost, not dbt, set the run's length (a 25-model run took 4 minutes for a 1-minute ``dbt build``).

Here each sensor starts straight in the triggerer (Airflow 3's ``start_from_trigger``): the scheduler hands it to
the triggerer as soon as its upstream tasks are done, :class:`ProducerResultTrigger` polls the producer's XCom for
the model's result, and a success or a skip ends the task right there (``TaskSuccessEvent``). A failure, or a
producer that was skipped on retry, resumes the task on a worker with Cosmos's own event, so its error message,
Airflow retries and Cosmos's fall-back (running the model on its own) behave exactly as in Cosmos.

Trade-off: a model task that succeeds in the triggerer does not render its compiled SQL in the UI (the producer's
log has it) nor emit a per-model dataset event (the medallion emits none: ``emit_datasets`` is off).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any

from airflow.triggers.base import StartTriggerArgs, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from cosmos.constants import PRODUCER_WATCHER_TASK_ID
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.triggerer import WatcherTrigger

TRIGGER_CLASSPATH = "medalflow.watcher.ProducerResultTrigger"


class ProducerResultTrigger(WatcherTrigger):
    """Cosmos's WatcherTrigger, which learns its DAG run from the triggerer and ends successful tasks itself.

    Started from the scheduler, the trigger's kwargs cannot hold the run id (they are fixed when the DAG is parsed);
    the triggerer gives every trigger its task instance before running it, which has the run.
    """

    def __init__(
        self,
        model_unique_id: str,
        producer_task_id: str,
        poke_interval: float = 2.0,
        is_test_sensor: bool = False,
        dag_id: str = "",
        run_id: str = "",
        map_index: int | None = -1,
    ) -> None:
        super().__init__(
            model_unique_id=model_unique_id,
            producer_task_id=producer_task_id,
            dag_id=dag_id,
            run_id=run_id,
            map_index=map_index,
            poke_interval=poke_interval,
            is_test_sensor=is_test_sensor,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return TRIGGER_CLASSPATH, kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        task_instance = getattr(self, "task_instance", None)
        if task_instance is not None:
            self.dag_id, self.run_id = task_instance.dag_id, task_instance.run_id
            self.map_index = getattr(task_instance, "map_index", -1)
        async for event in super().run():
            yield end_in_triggerer(event)
            return


def end_in_triggerer(event: TriggerEvent) -> TriggerEvent:
    """Success and skip end the task in the triggerer; anything else goes back to the worker (execute_complete)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    if payload.get("status") == "success":
        return TaskSuccessEvent()
    if payload.get("status") == "skipped":
        return TaskSkippedEvent()
    return event


def sensors_follow_producer(tasks: Iterable[Any]) -> int:
    """For ``dag.test()``: put the producer upstream of the sensors that have no upstream sensor; returns how many
    it linked.

    In a running Airflow the sensors wait in the triggerer while the producer builds, each reporting its model as
    soon as dbt is done with it, so the run ends moments after the build. ``dag.test()`` runs one task at a time,
    deferred ones included, in no set order: a sensor that got its turn before the producer would wait forever.
    After the producer, a sensor finds its model's result at its first look; ``all_done`` lets it report the
    model's own outcome even when the build as a whole failed, and run the model itself (Cosmos's fallback) when
    the producer was skipped on retry. The DAG files do not call this; what runs them with ``dag.test()`` does.
    """
    from airflow.sdk import TriggerRule

    tasks = list(tasks)
    sensors = [task for task in tasks if isinstance(task, BaseConsumerSensor)]
    producers = {task.task_id: task for task in tasks if task.task_id.endswith(PRODUCER_WATCHER_TASK_ID)}
    sensor_ids = {sensor.task_id for sensor in sensors}
    linked = 0
    for sensor in sensors:
        producer = producers.get(sensor.producer_task_id)
        if producer is None or sensor_ids & sensor.upstream_task_ids:
            continue
        producer >> sensor
        sensor.trigger_rule = TriggerRule.ALL_DONE
        linked += 1
    return linked


def start_sensors_in_triggerer(tasks: Iterable[Any]) -> int:
    """Make every Cosmos watcher sensor among ``tasks`` start in the triggerer; returns how many were changed."""
    changed = 0
    for task in tasks:
        if not isinstance(task, BaseConsumerSensor):
            continue
        timeout = task.execution_timeout or timedelta(hours=1)
        task.start_from_trigger = True
        task.start_trigger_args = dataclasses.replace(
            StartTriggerArgs(trigger_cls=TRIGGER_CLASSPATH, next_method="execute_complete"),
            trigger_kwargs={
                "model_unique_id": task.model_unique_id,
                "producer_task_id": task.producer_task_id,
                "poke_interval": float(task.poke_interval),
                "is_test_sensor": task.is_test_sensor,
            },
            timeout=timeout,
        )
        changed += 1
    return changed
