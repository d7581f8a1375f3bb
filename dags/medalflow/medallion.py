"""Cosmos wiring: the dbt project rendered as one Airflow task per model, grouped by layer folder.

Cosmos reads the pre-built manifest.json (no dbt call while the DAG file is parsed) and runs dbt from its own
virtualenv as a subprocess, as on MWAA. Each model's tests run right after it, in the same task group.

Execution mode (``MEDALFLOW_COSMOS_EXECUTION_MODE``):

* ``watcher`` (default): one ``dbt build`` for the whole run (Cosmos's producer task); each model's task and each
  model's tests task report that node's own result as the build reaches it (medalflow.watcher: they wait in the
  triggerer, with no worker process, while the producer runs). One dbt start-up per run instead of one per task: the
  DAG run costs about the ``dbt build`` it wraps (benchmarks/results/execution_overhead.md). ``dag.test()`` runs one
  task at a time, so a DAG run under it needs :func:`medalflow.watcher.sensors_follow_producer` first (the demo and
  the DAG file's ``__main__`` do that).
* ``local``: one dbt process per model and per model's tests: for rerunning or debugging single models one by one.

DuckDB lets one process write at a time: with the duckdb target every task that runs dbt takes a slot of the
``MEDALFLOW_DUCKDB_POOL`` pool (one slot; ``duckdb_writer`` by default), so parallel branches never collide and the
maintenance DAG waits for a running build. The pool must exist (``airflow pools set duckdb_writer 1 ...``, see
docs/operations.md); Athena and Snowflake need no pool.
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from medalflow.artifacts import store_artifacts_callback
from medalflow.assets import raw_asset
from medalflow.extract.config import load_source_group
from medalflow.intervals import END_KEY, START_KEY, medallion_data_interval
from medalflow.medallion_docs import document_task_group, manifest_kept
from medalflow.settings import (
    DBT_PROFILE_NAME,
    DbtUnavailableError,
    Settings,
    dbt_environment,
    dbt_startup_failure,
    get_settings,
    pii_key_environment,
)
from medalflow.watcher import publish_node_statuses, start_sensors_in_triggerer

# dbt receives the run's interval as environment variables, read by the dbt_project's data_interval macros. Not
# --vars: a new value of --vars invalidates dbt's partial parse, so every task would pay for a full re-parse. The
# values are templates, resolved when a task that runs dbt renders its environment (medallion_data_interval).
INTERVAL_MACRO = "medalflow_data_interval"
MEDALLION_MACROS = {INTERVAL_MACRO: medallion_data_interval}
INTERVAL_OF_THE_RUN = f"{INTERVAL_MACRO}(dag_run, triggering_asset_events, data_interval_start, data_interval_end)"
DBT_INTERVAL_ENVIRONMENT = {
    f"MEDALFLOW_{key.upper()}": "{{ " + INTERVAL_OF_THE_RUN + f"['{key}'] }}}}" for key in (START_KEY, END_KEY)
}

EXECUTION_MODE_VARIABLE = "MEDALFLOW_COSMOS_EXECUTION_MODE"
EXECUTION_MODES = {"watcher": ExecutionMode.WATCHER, "local": ExecutionMode.LOCAL}
DEFAULT_EXECUTION_MODE = "watcher"
DUCKDB_POOL_VARIABLE = "MEDALFLOW_DUCKDB_POOL"
DEFAULT_DUCKDB_POOL = "duckdb_writer"
# How often the model tasks waiting in the triggerer look at the producer. Cosmos's 10 s default would add up to 10 s
# per level of the model graph after dbt has finished; a look is two API calls per run, however many tasks wait
# (medalflow.watcher.ProducerWatch).
WATCHER_POKE_INTERVAL_SECONDS = 1
# Emits each dbt node's OpenLineage run after a dbt invocation, with dbt sources named as their raw lake datasets.
DBT_LINEAGE_CALLBACK = "medalflow.governance.openlineage.emit_dbt_lineage"
# DuckDB: gold copied to the consumers' gold-only file after a dbt invocation that built gold.
GOLD_CONSUMER_CALLBACK = "medalflow.governance.consumer.publish_after_dbt"


SOURCES_VARIABLE = "MEDALFLOW_MEDALLION_SOURCES"
# The daily source groups whose landing starts a run. The forecast is weekly: the medallion reads its latest snapshot
# and does not wait for it (a daily run would otherwise wait a week).
DEFAULT_SOURCES = ("erp", "partner", "files")


def medallion_schedule() -> Any:
    """Every raw Asset of the daily source groups (``MEDALFLOW_MEDALLION_SOURCES``, comma-separated), all required."""
    names = [name.strip() for name in os.getenv(SOURCES_VARIABLE, ",".join(DEFAULT_SOURCES)).split(",") if name.strip()]
    assets = [raw_asset(name, entity) for name in names for entity in load_source_group(name).entities]
    if not assets:
        raise ValueError(f"{SOURCES_VARIABLE} names no source group")
    return functools.reduce(operator.and_, assets)


def execution_mode() -> ExecutionMode:
    name = os.getenv(EXECUTION_MODE_VARIABLE, DEFAULT_EXECUTION_MODE).strip().lower()
    if name not in EXECUTION_MODES:
        raise ValueError(f"{EXECUTION_MODE_VARIABLE}={name!r}: expected one of {sorted(EXECUTION_MODES)}")
    return EXECUTION_MODES[name]


def dbt_pool(settings: Settings) -> str | None:
    """The pool that serialises dbt processes on a single-writer warehouse (DuckDB); None where writers can share."""
    if settings.dbt_target != "duckdb":
        return None
    return os.getenv(DUCKDB_POOL_VARIABLE, DEFAULT_DUCKDB_POOL) or None


def project_config(settings: Settings) -> ProjectConfig:
    config = ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=settings.manifest_path,
        project_name="medalflow",
        env_vars={**dbt_environment(settings), **DBT_INTERVAL_ENVIRONMENT, **pii_key_environment(settings)},
        install_dbt_deps=False,
    )
    if "://" not in str(settings.manifest_path):
        # Cosmos wraps every manifest path in an ObjectStoragePath, whose first read sets up Airflow's lineage
        # collector and loads every plugin: a third of a second per parse for a file on local disk.
        config.manifest_path = settings.manifest_path
    return config


def profile_config(settings: Settings) -> ProfileConfig:
    return ProfileConfig(
        profile_name=DBT_PROFILE_NAME,
        target_name=settings.dbt_target,
        profiles_yml_filepath=settings.dbt_profiles_dir / "profiles.yml",
    )


def execution_config(settings: Settings, mode: ExecutionMode) -> ExecutionConfig:
    # On an MWAA component whose startup script could not build dbt, the DAG fails to load with the reason: the
    # import error (UI, deploy.sh's smoke test) and the task that loads it on a worker say why, not "no such file".
    if problem := dbt_startup_failure():
        raise DbtUnavailableError(problem)
    # The watcher producer alone publishes every node's status in one XCom, for the model tasks waiting in the
    # triggerer (medalflow.watcher).
    producer_args = {"pre_execute": publish_node_statuses} if mode == ExecutionMode.WATCHER else None
    return ExecutionConfig(
        execution_mode=mode,
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=settings.dbt_executable,
        setup_operator_args=producer_args,
    )


def render_config(settings: Settings) -> RenderConfig:
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.AFTER_EACH,
        group_nodes_by_folder=True,
        # A test over several models (e.g. gold reconciling with silver) runs after all of them, not after one.
        should_detach_multiple_parents_tests=True,
        # The observability layer has its own DAG (dags/observability.py): it models the medallion's runs.
        exclude=["tag:observability"],
    )


def task_arguments(settings: Settings, mode: ExecutionMode) -> dict[str, Any]:
    """Arguments every Cosmos task gets: dbt's artifacts kept in the lake after every dbt invocation (failed ones too),
    one OpenLineage run per dbt node it ran (medalflow.governance.openlineage), gold copied to the consumers' file on
    DuckDB (medalflow.governance.consumer), and the warehouse's writer pool. (The
    run's interval reaches dbt through the project's env_vars.)

    In watcher mode the model tasks take the pool too, yet never while they wait: they start deferred, straight in
    the triggerer, and a pool does not count deferred tasks (unless created with ``include_deferred``, which would
    deadlock the run). One of them takes a slot only when it goes to a worker to run its model itself (a retry, a
    task cleared in the UI), so that run waits for any other dbt process writing the warehouse.
    """
    # Lineage by import path: resolved when a task runs, so parsing never imports OpenLineage (a no-op with it off).
    arguments: dict[str, Any] = {"callback": [store_artifacts_callback, DBT_LINEAGE_CALLBACK, GOLD_CONSUMER_CALLBACK]}
    if pool := dbt_pool(settings):
        arguments["pool"] = pool
    if mode == ExecutionMode.WATCHER:
        arguments["poke_interval"] = WATCHER_POKE_INTERVAL_SECONDS
        # Model tasks end in the triggerer (medalflow.watcher), where no per-model dataset event can be emitted. (Per
        # model OpenLineage runs come from the producer's lineage callback instead.)
        arguments["emit_datasets"] = False
    return arguments


class _MemoisedInspect:
    """``inspect`` with ``signature`` and ``getfullargspec`` memoised (both are pure functions of a function)."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.signature = functools.cache(module.signature)
        self.getfullargspec = functools.cache(module.getfullargspec)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@contextmanager
def fast_cosmos_rendering() -> Generator[None]:
    """Cosmos's operator constructor inspects ``BaseOperator.__init__`` (and two of its own) for every task it
    creates: the same three answers thousands of times, a fifth of the parse time at 1,000 models (profiled in
    benchmarks/parse_time.py). While the task group is built, Cosmos's operators module sees a memoising ``inspect``.
    """
    import cosmos.operators.local as cosmos_local

    original = cosmos_local.inspect
    cosmos_local.inspect = _MemoisedInspect(original)
    try:
        yield
    finally:
        cosmos_local.inspect = original


@contextmanager
def selection_in_manifest_order() -> Generator[None]:
    """Cosmos 1.15 keeps the nodes a ``select``/``exclude`` leaves in the order of a Python set
    (``cosmos.dbt.selector.get_nodes_from_subset``), and the folder group its tests over several models land in is
    the group of the last node rendered: with ``exclude`` those tests' task ids changed with PYTHONHASHSEED, so the
    scheduler and a worker parsing the same file disagreed ("Task not found in Dag" on every run). While the task
    group is built, the selection keeps the manifest's order."""
    import cosmos.dbt.selector as cosmos_selector

    original = cosmos_selector.get_nodes_from_subset

    def in_manifest_order(nodes: dict[str, Any], subset_ids: set[str]) -> dict[str, Any]:
        return {node_id: node for node_id, node in nodes.items() if node_id in subset_ids}

    cosmos_selector.get_nodes_from_subset = in_manifest_order
    try:
        yield
    finally:
        cosmos_selector.get_nodes_from_subset = original


def detached_tests_to_group_root(group: Any) -> int:
    """Move the tests Cosmos renders on their own (a test over several models) to the top of the task group.

    With ``group_nodes_by_folder`` Cosmos puts all of them in whichever folder group it built last (here bronze/erp),
    so that group holds tasks that wait for silver and gold ones: the groups depend on each other both ways and the
    UI's graph and grid fail to sort them ("A cyclic dependency occurred", HTTP 500). At the top of the dbt group,
    after every model they test, they close no cycle. Their task ids keep Cosmos's names.
    """
    moved = 0
    for task in list(group.iter_tasks()):
        node = (getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}
        if node.get("resource_type") != "test" or not task.task_id.endswith("_test") or task.task_group is group:
            continue
        task.task_group.children.pop(task.task_id, None)
        group.children[task.task_id] = task
        task.task_group = group
        moved += 1
    return moved


@contextmanager
def dag_hashed_by_identity(dag: Any | None) -> Generator[None]:
    """While the task graph is wired, hash the DAG by identity instead of by value.

    Every dependency set (``a >> b``; Cosmos sets thousands for a large project) puts the DAG in a set, and Airflow's
    ``DAG.__hash__`` hashes the tuple of all its task ids and its schedule, each Asset of which through
    ``attrs.asdict`` + ``json.dumps``: wiring grows with tasks x edges x assets (at 1,000 models, half the parse time;
    benchmarks/results/parse_time.md). Only this one DAG object is in those sets, so identity gives the same answer;
    the class is restored on the way out.
    """
    if dag is None:
        yield
        return
    original = type(dag)
    dag.__class__ = type(
        original.__name__, (original,), {"__hash__": object.__hash__, "__module__": original.__module__}
    )
    try:
        yield
    finally:
        dag.__class__ = original


def medallion_task_group(group_id: str = "dbt", operator_args: dict[str, Any] | None = None) -> DbtTaskGroup:
    """The bronze -> silver -> gold models of the dbt project, one task per model, tests after each."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    settings = get_settings()
    mode = execution_mode()
    with (
        dag_hashed_by_identity(DagContext.get_current()),
        fast_cosmos_rendering(),
        selection_in_manifest_order(),
        manifest_kept() as manifest,
    ):
        group = DbtTaskGroup(
            group_id=group_id,
            project_config=project_config(settings),
            profile_config=profile_config(settings),
            execution_config=execution_config(settings, mode),
            render_config=render_config(settings),
            operator_args={**task_arguments(settings, mode), **(operator_args or {})},
        )
    detached_tests_to_group_root(group)
    document_task_group(group, manifest)  # each task's doc and each group's tooltip, from the models' descriptions
    if mode == ExecutionMode.WATCHER:
        start_sensors_in_triggerer(group.iter_tasks())
    return group
