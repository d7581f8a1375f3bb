"""Tier 1: every DAG file imports with no connections or variables, declares what operators need, and parses fast."""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = PROJECT_ROOT / "dags"
DAG_FILES = sorted(path for path in DAGS_DIR.glob("*.py"))
PARSE_TIMES = PROJECT_ROOT / ".local" / "dag_parse_times.json"


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_there_are_dag_files():
    assert DAG_FILES, "no DAG files found in dags/"


def test_every_dag_file_imports_without_errors(dag_bag):
    assert dag_bag.import_errors == {}


# Files that generate a family of DAGs (one per config file) and the file that reports the configs that cannot become
# one (it holds no DAG: an import error there leaves the family's DAGs alone). Every other file declares one DAG.
GENERATORS = {"extract_sources.py"}
NO_DAG = {"extract_sources_check.py"}


def test_one_dag_per_file_or_one_generator_per_family(dag_bag):
    from medalflow.extract.config import load_sources

    per_file: dict[str, list[str]] = {}
    for dag in dag_bag.dags.values():
        per_file.setdefault(Path(dag.fileloc).name, []).append(dag.dag_id)
    assert {name: ids for name, ids in per_file.items() if name not in GENERATORS and len(ids) != 1} == {}
    assert sorted(per_file) == sorted(path.name for path in DAG_FILES if path.name not in NO_DAG)
    generated = sorted(group.dag_id for group in load_sources().groups.values())
    assert sorted(per_file["extract_sources.py"]) == generated
    assert generated == ["extract_erp", "extract_file_drops", "extract_forecast", "extract_partner_api"]


def test_generated_extraction_dags_keep_their_ids_tags_and_tasks(dag_bag):
    """What the hand-written extraction DAGs declared, the generated ones still do (ids, tags, tasks, Assets)."""
    expected = {
        "extract_erp": (["extract", "erp", "raw"], 4, {"customers", "orders", "products", "suppliers"}),
        "extract_partner_api": (["extract", "partner", "rest", "raw"], 4, {"payments", "fx_rates", "shipments"}),
        "extract_forecast": (["extract", "forecast", "rest", "raw"], 1, {"projects", "baselines", "scenarios"}),
        "extract_file_drops": (["extract", "files", "raw"], 4, {"shipments"}),
    }
    for dag_id, (tags, max_active_runs, entities) in expected.items():
        dag = dag_bag.dags[dag_id]
        source = dag_id.removeprefix("extract_").replace("_api", "").replace("file_drops", "files")
        assert (sorted(dag.tags), dag.max_active_runs) == (sorted(tags), max_active_runs), dag_id
        assert {task.task_id for task in dag.tasks} == {f"extract_{entity}" for entity in entities}, dag_id
        outlets = {outlet.name for task in dag.tasks for outlet in task.outlets}
        assert outlets == {f"raw.{source}.{entity}" for entity in entities}, dag_id
    forecast = dag_bag.dags["extract_forecast"]
    for child in ("extract_baselines", "extract_scenarios"):
        assert forecast.get_task(child).upstream_task_ids == {"extract_projects"}
    assert forecast.timetable.summary == "0 2 * * 0"
    assert dag_bag.dags["extract_erp"].timetable.summary == "0 0 * * *"


def test_the_medallion_waits_for_the_same_raw_assets(dag_bag):
    """Its asset schedule names every raw Asset the daily extraction DAGs produce (the weekly forecast is not waited
    for)."""
    daily = {"extract_erp", "extract_partner_api", "extract_file_drops"}
    produced = {outlet.name for dag_id in daily for task in dag_bag.dags[dag_id].tasks for outlet in task.outlets}

    def names(condition) -> set[str]:
        parts = getattr(condition, "objects", None)
        return set().union(*(names(part) for part in parts)) if parts is not None else {condition.name}

    assert names(dag_bag.dags["medallion"].timetable.asset_condition) == produced
    assert len(produced) == 8


@pytest.mark.parametrize("attribute", ["doc_md", "tags"])
def test_every_dag_declares(dag_bag, attribute):
    missing = [dag.dag_id for dag in dag_bag.dags.values() if not getattr(dag, attribute)]
    assert missing == []


def test_generated_dags_are_documented_from_their_yaml(dag_bag):
    """As much as the hand-written docstrings said: description, schedule, connection, entities, outputs."""
    from medalflow.extract.config import load_sources

    for group in load_sources().groups.values():
        doc = dag_bag.dags[group.dag_id].doc_md
        assert doc.startswith(f"# {group.dag_id}\n\n{group.description}\n"), group.name
        assert f"raw/{group.name}/<entity>/ingestion_date=" in doc
        assert all(f"| `{entity}` |" in doc for entity in group.entities)
        assert (f"`{group.conn_id}` Airflow connection" in doc) if group.conn_id else ("lake's inbox" in doc)
    assert "Sundays at 02:00 UTC" in dag_bag.dags["extract_forecast"].doc_md
    assert "`extract_baselines` after `extract_projects`" in dag_bag.dags["extract_forecast"].doc_md


# conftest.py sets MEDALFLOW_TASK_RETRIES=0 for the suite's own runs; deployed DAGs get the default, 2.
EXPECTED_RETRIES = int(os.environ["MEDALFLOW_TASK_RETRIES"])


def test_every_task_has_owner_and_retries(dag_bag):
    offenders = [
        f"{dag.dag_id}.{task.task_id}"
        for dag in dag_bag.dags.values()
        for task in dag.tasks
        if task.owner in (None, "", "airflow") or task.retries != EXPECTED_RETRIES
    ]
    assert offenders == []


def test_every_task_reports_its_failure(dag_bag):
    from medalflow.notifications import FailureNotifier

    def notifies(task) -> bool:
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        return any(isinstance(callback, FailureNotifier) for callback in callbacks)

    tasks = [(dag.dag_id, task) for dag in dag_bag.dags.values() for task in dag.tasks]
    silent = [f"{dag_id}.{task.task_id}" for dag_id, task in tasks if not notifies(task)]
    assert silent == []


def test_the_dag_processor_reads_only_dag_files():
    """The package and the source configs sit in the DAGs folder (MWAA's path) but hold no DAGs: .airflowignore keeps
    the dag-processor from importing them on every loop."""
    from airflow.utils.file import list_py_file_paths

    listed = sorted(Path(path).relative_to(DAGS_DIR) for path in list_py_file_paths(str(DAGS_DIR)))
    assert listed == [path.relative_to(DAGS_DIR) for path in DAG_FILES]


def test_no_cycles(dag_bag):
    for dag in dag_bag.dags.values():
        upstream_count = {task.task_id: len(task.upstream_task_ids) for task in dag.tasks}
        ready = [task_id for task_id, count in upstream_count.items() if count == 0]
        ordered = 0
        while ready:
            task_id = ready.pop()
            ordered += 1
            for downstream in dag.get_task(task_id).downstream_task_ids:
                upstream_count[downstream] -= 1
                if upstream_count[downstream] == 0:
                    ready.append(downstream)
        assert ordered == len(dag.tasks), f"{dag.dag_id} has a cycle"


FORBIDDEN_AT_MODULE_LEVEL = {"Variable.get", "get_connection", "boto3.client", "boto3.resource", "create_engine"}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_no_heavy_work_at_module_level(path):
    """DAG files only declare: no Variable, connection, AWS or database calls in their module-level code."""
    tree = ast.parse(path.read_text())
    calls = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for child in ast.walk(node):
            if isinstance(child, ast.Call):
                name = ast.unparse(child.func)
                if any(name.endswith(forbidden) for forbidden in FORBIDDEN_AT_MODULE_LEVEL):
                    calls.append(name)
    assert calls == []


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_parse_time_is_recorded_and_bounded(path):
    """Each file parsed alone, as the DAG processor does; the time goes to .local/dag_parse_times.json.

    The bound is MWAA's import timeout (30 s), not a speed target: benchmarks/ measures speed.
    """
    from airflow.dag_processing.dagbag import DagBag

    began = time.perf_counter()
    bag = DagBag(dag_folder=str(path))
    seconds = time.perf_counter() - began
    assert bag.import_errors == {}
    PARSE_TIMES.parent.mkdir(parents=True, exist_ok=True)
    times = json.loads(PARSE_TIMES.read_text()) if PARSE_TIMES.exists() else {}
    times = {name: value for name, value in times.items() if (DAGS_DIR / name).exists()}  # no deleted files' times
    times[path.name] = round(seconds, 3)
    PARSE_TIMES.write_text(json.dumps(times, indent=2, sort_keys=True))
    assert seconds < 30
