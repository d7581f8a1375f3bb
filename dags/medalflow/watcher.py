"""Watcher-mode model tasks that wait in the triggerer alone, with no worker process unless something goes wrong.

Cosmos's watcher sensors start on a worker, poke once, defer to the triggerer, then resume on a worker to finish:
two task processes per model and per model's tests, each re-parsing the DAG file. On a small worker that start-up
cost, not dbt, set the run's length (a 25-model run took 4 minutes for a 1-minute ``dbt build``).

Here each sensor starts straight in the triggerer (Airflow 3's ``start_from_trigger``): the scheduler hands it to
the triggerer as soon as its upstream tasks are done, :class:`ProducerResultTrigger` waits for the model's result,
and a success or a skip ends the task right there (``TaskSuccessEvent``). A failure, or a producer that was skipped
on retry, resumes the task on a worker with Cosmos's own event, so its error message, Airflow retries and Cosmos's
fall-back (running the model on its own) behave exactly as in Cosmos.

The waiting is shared. Cosmos's trigger reads the producer's state and its own node's XCom every poke: two calls
through the execution API per waiting task per poke, each a request the triggerer serves with the CPU the
``dbt build`` beside it needs. Here the producer also keeps every node's status in one XCom
(:func:`publish_node_statuses`) and one :class:`ProducerWatch` per run in the triggerer reads that XCom and the
producer's state once per poke for all the tasks waiting on it: two calls per poke, however many tasks wait.

Trade-off: a model task that succeeds in the triggerer does not render its compiled SQL in the UI (the producer's
log has it) nor emit a per-model dataset event (the medallion emits none: ``emit_datasets`` is off). Its OpenLineage
run comes from the producer instead, one per dbt node after the build (medalflow.governance.openlineage).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from airflow.triggers.base import StartTriggerArgs, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from cosmos.constants import PRODUCER_WATCHER_TASK_ID
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import (
    PRODUCER_TERMINAL_STATES,
    ProducerTaskState,
    get_status_xcom_key,
    is_dbt_node_status_failed,
    is_dbt_node_status_skipped,
    is_dbt_node_status_success,
)
from cosmos.operators._watcher.triggerer import WatcherEventReason, WatcherTrigger

TRIGGER_CLASSPATH = "medalflow.watcher.ProducerResultTrigger"
# The producer's XCom holding every finished node's status, keyed by the XCom key Cosmos gives that status.
NODE_STATUSES_XCOM_KEY = "medalflow_node_statuses"


def is_node_status_key(key: str) -> bool:
    """Cosmos's per-node status keys: ``<unique id, dots as __>_status`` and ``..._tests_status``."""
    return key.endswith("_status") and "__" in key


class NodeStatusMirror:
    """Stands in for the producer's ``xcom_push``: pushes as before and, after a node's status, all statuses so far."""

    def __init__(self, push: Callable[..., Any]) -> None:
        self._push = push
        self.statuses: dict[str, Any] = {}

    def __call__(self, key: str, value: Any, **kwargs: Any) -> None:
        self._push(key, value, **kwargs)
        if is_node_status_key(key):
            self.statuses[key] = value
            self._push(NODE_STATUSES_XCOM_KEY, dict(self.statuses))


def publish_node_statuses(context: Mapping[str, Any]) -> None:
    """``pre_execute`` hook of the watcher producer: every node status it pushes also lands in one XCom.

    Cosmos pushes each status through the task instance's ``xcom_push`` (statuses a retry restores from its backup
    too); the mirror is set on this one task instance, for this one execution. ``object.__setattr__`` because the
    task instance is a pydantic model, which refuses attributes that are not fields (and never serialises them).
    """
    task_instance = context["ti"]
    object.__setattr__(task_instance, "xcom_push", NodeStatusMirror(task_instance.xcom_push))


@dataclasses.dataclass(frozen=True)
class ProducerSnapshot:
    """What one poll saw: the producer task's state and the statuses of the nodes it has finished."""

    producer_state: str | None
    node_statuses: Mapping[str, Any]


class ProducerWatch:
    """One poll loop per producer and run, shared by every task of that run waiting in this triggerer's event loop.

    Each round reads the producer's state, then its node statuses (in that order: a producer seen finished has
    pushed its last status), two calls however many tasks wait. The loop starts with the first waiting task and
    stops with the last.
    """

    _watches: ClassVar[dict[tuple[Any, ...], ProducerWatch]] = {}

    def __init__(self, dag_id: str, run_id: str, producer_task_id: str, poke_interval: float) -> None:
        self.dag_id, self.run_id, self.producer_task_id = dag_id, run_id, producer_task_id
        self.poke_interval = poke_interval
        self.latest: ProducerSnapshot | BaseException | None = None
        self._round = asyncio.Event()
        self._waiting = 0
        self._poller: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def joined(
        cls, dag_id: str, run_id: str, producer_task_id: str, poke_interval: float
    ) -> AsyncGenerator[ProducerWatch]:
        # Keyed by event loop too: ``dag.test()`` runs each trigger in an event loop of its own.
        key = (asyncio.get_running_loop(), dag_id, run_id, producer_task_id)
        watch = cls._watches.get(key)
        if watch is None:
            watch = cls._watches[key] = cls(dag_id, run_id, producer_task_id, poke_interval)
            watch._poller = asyncio.create_task(watch._poll_forever())
        watch._waiting += 1
        try:
            yield watch
        finally:
            watch._waiting -= 1
            if watch._waiting == 0:
                del cls._watches[key]
                if watch._poller is not None:
                    watch._poller.cancel()

    async def snapshots(self) -> AsyncIterator[ProducerSnapshot]:
        """The latest snapshot at once if there is one, then each new one; a failed poll raises its error."""
        seen: ProducerSnapshot | BaseException | None = None
        while True:
            pending_round = self._round
            if self.latest is not None and self.latest is not seen:
                seen = self.latest
                if isinstance(seen, BaseException):
                    raise seen
                yield seen
                continue
            await pending_round.wait()

    async def _poll_forever(self) -> None:
        from asgiref.sync import sync_to_async

        while True:
            try:
                self.latest = await sync_to_async(self.poll)()
            except Exception as error:
                self.latest = error
            finished_round, self._round = self._round, asyncio.Event()
            finished_round.set()
            await asyncio.sleep(self.poke_interval)

    def poll(self) -> ProducerSnapshot:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from airflow.sdk.execution_time.xcom import XCom

        states = RuntimeTaskInstance.get_task_states(
            dag_id=self.dag_id, task_ids=[self.producer_task_id], run_ids=[self.run_id]
        )
        state = states.get(self.run_id, {}).get(self.producer_task_id)
        statuses = XCom.get_one(
            run_id=self.run_id,
            key=NODE_STATUSES_XCOM_KEY,
            task_id=self.producer_task_id,
            dag_id=self.dag_id,
            map_index=-1,
        )
        return ProducerSnapshot(None if state is None else str(state), statuses or {})


class ProducerResultTrigger(WatcherTrigger):
    """Cosmos's WatcherTrigger, reading its node's result from the run's shared :class:`ProducerWatch`.

    Started from the scheduler, the trigger's kwargs cannot hold the run id (they are fixed when the DAG is parsed);
    the triggerer gives every trigger its task instance before running it, which has the run. Success and skip end
    the task in the triggerer; a failure goes back to the worker with Cosmos's own event (``execute_complete``).
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

    @property
    def status_key(self) -> str:
        if self.is_test_sensor:
            return get_tests_status_xcom_key(self.model_unique_id)
        return get_status_xcom_key(self.model_unique_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        task_instance = getattr(self, "task_instance", None)
        if task_instance is not None:
            self.dag_id, self.run_id = task_instance.dag_id, task_instance.run_id
            self.map_index = getattr(task_instance, "map_index", -1)
        try_number = getattr(task_instance, "try_number", 1) or 1
        async with ProducerWatch.joined(self.dag_id, self.run_id, self.producer_task_id, self.poke_interval) as watch:
            async for snapshot in watch.snapshots():
                event = self.outcome(snapshot, try_number)
                if event is not None:
                    yield event
                    return

    def outcome(self, snapshot: ProducerSnapshot, try_number: int = 1) -> TriggerEvent | None:
        """The event Cosmos would end this task with for this snapshot, success and skip ending here; None: wait on.

        A second try (an Airflow retry, or the task cleared in the UI) after the build has ended reruns the node on
        its own, as Cosmos's sensor does: the producer's results are those of the first try. The worker's
        ``execute_complete`` runs that fall-back for the producer-skipped reason (its log then says so).
        """
        if try_number > 1 and snapshot.producer_state in PRODUCER_TERMINAL_STATES:
            return TriggerEvent({"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_SKIPPED})
        value = snapshot.node_statuses.get(self.status_key)
        status = value.get("status") if isinstance(value, dict) else value
        if is_dbt_node_status_success(status):
            return TaskSuccessEvent()
        if is_dbt_node_status_skipped(status):
            return TaskSkippedEvent()
        if is_dbt_node_status_failed(status):
            return TriggerEvent({"status": EventStatus.FAILED, "reason": WatcherEventReason.NODE_FAILED})
        if snapshot.producer_state == ProducerTaskState.FAILED:
            return TriggerEvent({"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_FAILED})
        if snapshot.producer_state == ProducerTaskState.SKIPPED:
            return TriggerEvent({"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_SKIPPED})
        if snapshot.producer_state == ProducerTaskState.SUCCESS and status is None:
            # The build finished without this node (an ephemeral model, an empty file): Cosmos calls that success.
            return TaskSuccessEvent()
        return None


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
