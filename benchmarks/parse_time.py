"""Parse time of the medallion DAG file: the demo project and generated projects of 100, 1,000 and 5,000 models.

For each project, three DAG files are parsed the way the dag-processor does (a fresh process with Airflow already
imported, then ``DagBag`` on the one file):

* **medallion**: ``dags/medallion.py`` itself (Cosmos, manifest load mode, the configured execution mode), with
  ``MEDALFLOW_DBT_PROJECT_DIR`` pointing at the project;
* **dbt ls**: the same DAG rendered with Cosmos's ``LoadMode.DBT_LS`` (dbt runs while parsing; Cosmos's dbt ls cache
  off, as after any change to the project), at 100 and 1,000 models and the demo;
* **floor**: a plain Airflow DAG with the same tasks and edges (a run and a test task per model, grouped by folder)
  built straight from manifest.json with EmptyOperators.

Generated projects are real dbt projects (three layers of models, each with a ``not_null`` test) whose manifest.json
comes from ``dbt parse``; they are kept in benchmarks/.work/ between runs. Each figure is the median of ``--repeat``
fresh processes. Results: benchmarks/results/parse_time.json and .md. Targets: < 1 s for the demo, < 2 s at 1,000.

    .venv/airflow/bin/python benchmarks/parse_time.py [--sizes 100 1000 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WORK = PROJECT_ROOT / "benchmarks" / ".work" / "parse_time"
RESULTS = PROJECT_ROOT / "benchmarks" / "results"
PYTHON = sys.executable
DBT = os.getenv("MEDALFLOW_DBT_EXECUTABLE", str(PROJECT_ROOT / ".venv" / "dbt" / "bin" / "dbt"))
TARGETS = {"demo": 1.0, "1000": 2.0}
DBT_LS_SIZES = {"demo", "100", "1000"}

MEASURE = textwrap.dedent(
    """
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag  # the dag-processor has Airflow imported before any file
    began = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds = time.perf_counter() - began
    assert not bag.import_errors, bag.import_errors
    print(json.dumps({"seconds": seconds, "tasks": sum(len(dag.tasks) for dag in bag.dags.values())}))
    """
)

DBT_LS_DAG = textwrap.dedent(
    '''
    """The medallion DAG rendered by Cosmos's dbt ls load mode (benchmark only)."""
    from airflow.sdk import DAG
    from cosmos import DbtTaskGroup, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    from medalflow import medallion
    from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE
    from medalflow.settings import get_settings

    settings = get_settings()
    mode = medallion.execution_mode()
    with DAG("medallion_dbt_ls", schedule=None, start_date=START_DATE, default_args=DEFAULT_ARGS, tags=["benchmark"]):
        DbtTaskGroup(
            group_id="dbt",
            project_config=medallion.project_config(settings),
            profile_config=medallion.profile_config(settings),
            execution_config=medallion.execution_config(settings, mode),
            render_config=RenderConfig(
                load_method=LoadMode.DBT_LS,
                test_behavior=TestBehavior.AFTER_EACH,
                group_nodes_by_folder=True,
                dbt_executable_path=settings.dbt_executable,
                invocation_mode=InvocationMode.SUBPROCESS,  # dbt lives in its own virtualenv, as on MWAA
            ),
            operator_args=medallion.task_arguments(settings, mode),
        )
    '''
)

FLOOR_DAG = textwrap.dedent(
    '''
    """The floor: the same tasks and edges as the medallion, straight from manifest.json, with EmptyOperators."""
    import json
    from pathlib import Path

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, TaskGroup

    from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE
    from medalflow.settings import get_settings

    manifest = json.loads(get_settings().manifest_path.read_text())
    nodes = manifest["nodes"]
    models = {uid: node for uid, node in nodes.items() if node["resource_type"] in ("model", "snapshot", "seed")}
    tests = [node for node in nodes.values() if node["resource_type"] == "test"]
    tested = {parent for node in tests for parent in node["depends_on"]["nodes"]}
    with DAG("medallion_floor", schedule=None, start_date=START_DATE, default_args=DEFAULT_ARGS, tags=["benchmark"]):
        groups, first, last = {}, {}, {}
        for uid, node in models.items():
            parent = None
            for depth, folder in enumerate(node["fqn"][1:-1]):
                key = tuple(node["fqn"][1 : depth + 2])
                if key not in groups:
                    groups[key] = TaskGroup(folder, parent_group=parent)
                parent = groups[key]
            with TaskGroup(node["name"], parent_group=parent):
                first[uid] = last[uid] = EmptyOperator(task_id="run")
                if uid in tested:
                    last[uid] = first[uid] >> EmptyOperator(task_id="test")
        for uid, node in models.items():
            for upstream in node["depends_on"]["nodes"]:
                if upstream in last:
                    last[upstream] >> first[uid]
    '''
)


def write_project(folder: Path, models: int) -> None:
    """Three layers (bronze/silver/gold folders); each model reads two of the layer below and has a not_null test."""
    if (folder / "target" / "manifest.json").exists():
        return
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project.yml").write_text(
        "name: medalflow\nversion: '1.0.0'\nconfig-version: 2\nprofile: medalflow\nmodel-paths: ['models']\n"
        "flags:\n  send_anonymous_usage_stats: false\nmodels:\n  medalflow:\n    +materialized: table\n"
    )
    per_layer = max(1, models // 3)
    layers = [("bronze", per_layer), ("silver", per_layer), ("gold", models - 2 * per_layer)]
    names: list[list[str]] = []
    for layer, (folder_name, count) in enumerate(layers):
        layer_dir = folder / "models" / folder_name
        layer_dir.mkdir(exist_ok=True)
        current = [f"{folder_name}_model_{index:05d}" for index in range(count)]
        schema = ["version: 2", "models:"]
        for index, name in enumerate(current):
            if layer == 0:
                sql = f"select {index} as id"
            else:
                below = names[layer - 1]
                first, second = below[index % len(below)], below[(index * 7 + 1) % len(below)]
                sql = (
                    f"select a.id from {{{{ ref('{first}') }}}} as a join {{{{ ref('{second}') }}}} as b on a.id = b.id"
                )
            (layer_dir / f"{name}.sql").write_text(sql + "\n")
            schema += [f"  - name: {name}", "    columns:", "      - name: id", "        data_tests: [not_null]"]
        (layer_dir / f"_{folder_name}__models.yml").write_text("\n".join(schema) + "\n")
        names.append(current)
    environment = {**os.environ, "MEDALFLOW_DUCKDB_PATH": str(folder / "warehouse.duckdb"), "MEDALFLOW_LAKE_URI": "."}
    subprocess.run(
        [DBT, "parse", "--project-dir", str(folder), "--profiles-dir", str(PROJECT_ROOT / "profiles")],
        env=environment,
        check=True,
        capture_output=True,
    )


def parse_once(dag_file: Path, project: Path) -> dict[str, float]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "dags"), str(PROJECT_ROOT / "plugins")]),
        "MEDALFLOW_DBT_PROJECT_DIR": str(project),
        "MEDALFLOW_DUCKDB_PATH": str(WORK / "warehouse.duckdb"),
        "MEDALFLOW_LAKE_URI": str(WORK / "lake"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__ENABLE_CACHE_DBT_LS": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
    environment.pop("PYTHONDONTWRITEBYTECODE", None)  # deployments have compiled bytecode; so do these runs
    completed = subprocess.run(
        [PYTHON, "-c", MEASURE, str(dag_file)], env=environment, capture_output=True, text=True, check=False
    )
    if completed.returncode:
        raise RuntimeError(f"parsing {dag_file} for {project} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure(dag_file: Path, project: Path, repeat: int) -> dict[str, float]:
    runs = [parse_once(dag_file, project) for _ in range(repeat)]
    return {"seconds": round(statistics.median(run["seconds"] for run in runs), 3), "tasks": runs[0]["tasks"]}


NOTES = """\
What made Cosmos's manifest mode slow, and what `dags/medalflow/medallion.py` does about it (profiled with cProfile):

* **Wiring was quadratic.** Each dependency Cosmos sets (`a >> b`) puts the DAG in a set, and `DAG.__hash__` hashes
  the tuple of all task ids plus the schedule, whose Assets hash through `attrs.asdict` + `json.dumps`. With the
  medallion's asset schedule (8 raw Assets) that was more than half the parse time at 1,000 models (3.6 s before).
  `dag_hashed_by_identity` hashes the DAG by identity while the task group is built (only that one DAG object is in
  those sets), then restores its class.
* **Cosmos inspects `BaseOperator.__init__` for every task** (`inspect.signature` + two `getfullargspec`):
  `fast_cosmos_rendering` memoises them while the group is built.
* **The manifest is read through `ObjectStoragePath`**, whose first read sets up Airflow's hook-lineage collector and
  loads every plugin (0.3 s per parse): a local manifest is read as a plain `Path`.
* Bytecode: Airflow, Cosmos and the project are parsed with compiled bytecode, as on any deployment (the virtualenvs
  built by `uv pip sync` have none until first import; see the report to the lead).

The floor parses the same tasks with no Cosmos at all; at 5,000 models it is itself slow (Airflow's own per-edge DAG
hashing). `dbt ls` is Cosmos's LoadMode.DBT_LS with its cache off (the cost after any change to the project); it
runs dbt from its own virtualenv (SUBPROCESS), as on MWAA.
"""


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "parse_time.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Parse time of the medallion DAG file",
        "",
        f"Measured {results['measured_at']} on {results['machine']}, median of {results['repeat']} fresh processes "
        "with Airflow already imported (as in the dag-processor), Cosmos and the DAG file imported and parsed by "
        "`DagBag`. Produced by `benchmarks/parse_time.py`.",
        "",
        "| project | models | tasks | medallion (manifest) s | Cosmos dbt ls s | floor (EmptyOperators) s "
        "| target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, row in results["projects"].items():
        target = TARGETS.get(name)
        dbt_ls = row.get("dbt_ls", {}).get("seconds")
        medallion = row["medallion"]["seconds"]
        lines.append(
            f"| {name} | {row['models']} | {row['medallion']['tasks']} | {medallion:.2f} | "
            f"{'-' if dbt_ls is None else f'{dbt_ls:.2f}'} | {row['floor']['seconds']:.2f} | "
            f"{'-' if target is None else f'< {target:.0f} s'} | "
            f"{'-' if target is None else ('yes' if medallion < target else 'no')} |"
        )
    lines += ["", NOTES]
    (RESULTS / "parse_time.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    dbt_ls_dag, floor_dag = WORK / "medallion_dbt_ls.py", WORK / "medallion_floor.py"
    dbt_ls_dag.write_text(DBT_LS_DAG)
    floor_dag.write_text(FLOOR_DAG)

    projects = {"demo": PROJECT_ROOT / "dbt_project"}
    for size in options.sizes:
        projects[str(size)] = WORK / f"project_{size}"
        write_project(projects[str(size)], size)

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "repeat": options.repeat,
        "execution_mode": os.getenv("MEDALFLOW_COSMOS_EXECUTION_MODE", "default"),
        "targets_seconds": TARGETS,
        "projects": {},
    }
    for name, project in projects.items():
        manifest = json.loads((project / "target" / "manifest.json").read_text())
        models = sum(1 for node in manifest["nodes"].values() if node["resource_type"] == "model")
        row = {"models": models, "medallion": measure(PROJECT_ROOT / "dags" / "medallion.py", project, options.repeat)}
        if name in DBT_LS_SIZES:
            row["dbt_ls"] = measure(dbt_ls_dag, project, 1)
        row["floor"] = measure(floor_dag, project, options.repeat)
        results["projects"][name] = row
        print(name, json.dumps(row), flush=True)
    write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
