"""How much a medallion DAG run in a running Airflow costs beyond the ``dbt build`` it performs, LOCAL vs WATCHER.

A synthetic dbt project (``--models`` models in three layers, each aggregating ``--rows`` generated rows on DuckDB,
each with a ``not_null`` test, so both modes get a run task and a test task per model) is built once with a single
``dbt build``, then by the medallion DAG in a live Airflow 3 (api-server, scheduler, dag-processor, triggerer;
LocalExecutor on PostgreSQL: the harness of tests/live) for each Cosmos execution mode. The DAG run's wall time is
from the REST trigger to the run's end, as a user waits for it.

    .venv/airflow/bin/python benchmarks/execution_overhead.py [--models 20] [--rows 30000000] [--modes local watcher]

Results: benchmarks/results/execution_overhead.json and .md. Target: the DAG run at most 1.5x the single build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "tests" / "live"), str(PROJECT_ROOT / "tests"), str(PROJECT_ROOT / "dags")]

from airflow_services import AirflowClient, AirflowServices  # ruff: ignore[module-import-not-at-top-of-file]

from medalflow.demo.pipeline import recreate_postgres_database  # ruff: ignore[module-import-not-at-top-of-file]

WORK = PROJECT_ROOT / "benchmarks" / ".work" / "execution_overhead"
RESULTS = PROJECT_ROOT / "benchmarks" / "results"
DBT = os.getenv("MEDALFLOW_DBT_EXECUTABLE", str(PROJECT_ROOT / ".venv" / "dbt" / "bin" / "dbt"))
TARGET_RATIO = 1.5


def write_project(folder: Path, models: int, rows: int) -> None:
    """Three layers; every model aggregates ``rows`` generated rows (the work), those above the first layer joining
    two models of the layer below (the dependencies)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "models").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text(
        "name: medalflow\nversion: '1.0.0'\nconfig-version: 2\nprofile: medalflow\nmodel-paths: ['models']\n"
        "flags:\n  send_anonymous_usage_stats: false\nmodels:\n  medalflow:\n    +materialized: table\n"
    )
    per_layer = max(1, models // 3)
    layers = [
        [f"layer{layer}_model{index:03d}" for index in range(per_layer if layer < 2 else models - 2 * per_layer)]
        for layer in range(3)
    ]
    schema = ["version: 2", "models:"]
    for layer, names in enumerate(layers):
        folder_path = folder / "models" / f"layer{layer}"
        folder_path.mkdir()
        for index, name in enumerate(names):
            generated = (
                f"select hash(i * {index + 7}) % 10007 as k, sum(hash(i) % 1000) as total, count(*) as n "
                f"from range(0, {rows}) as t(i) group by 1"
            )
            if layer == 0:
                sql = generated
            else:
                below = layers[layer - 1]
                first, second = below[index % len(below)], below[(index + 1) % len(below)]
                sql = (
                    f"select g.k, g.total + coalesce(a.total, 0) + coalesce(b.total, 0) as total, g.n "
                    f"from ({generated}) as g left join {{{{ ref('{first}') }}}} as a on g.k = a.k "
                    f"left join {{{{ ref('{second}') }}}} as b on g.k = b.k"
                )
            (folder_path / f"{name}.sql").write_text(sql + "\n")
            schema += [f"  - name: {name}", "    columns:", "      - name: k", "        data_tests: [not_null]"]
    (folder / "models" / "_models.yml").write_text("\n".join(schema) + "\n")


def dbt_environment(project: Path, warehouse: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MEDALFLOW_DUCKDB_PATH": str(warehouse),
        "MEDALFLOW_DBT_TARGET": "duckdb",
        "MEDALFLOW_LAKE_URI": str(WORK / "lake"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def run_dbt(project: Path, warehouse: Path, *arguments: str) -> float:
    # The profile and target flags Cosmos passes: the partial parse left here is one Cosmos's tasks can reuse.
    command = [DBT, *arguments, "--project-dir", str(project), "--profiles-dir", str(PROJECT_ROOT / "profiles")]
    command += ["--profile", "medalflow", "--target", "duckdb"]
    began = time.perf_counter()
    subprocess.run(command, env=dbt_environment(project, warehouse), check=True, capture_output=True)
    return time.perf_counter() - began


def dag_run_in_airflow(mode: str, project: Path, warehouse: Path) -> dict[str, float | str]:
    home = WORK / f"airflow-{mode}"
    shutil.rmtree(home, ignore_errors=True)
    services = AirflowServices(
        home=home,
        database_url=recreate_postgres_database(f"medalflow_bench_{mode}"),
        extra_env={
            "MEDALFLOW_DBT_PROJECT_DIR": str(project),
            "MEDALFLOW_DUCKDB_PATH": str(warehouse),
            "MEDALFLOW_LAKE_URI": str(WORK / "lake"),
            "MEDALFLOW_DBT_TARGET": "duckdb",
            "MEDALFLOW_DBT_EXECUTABLE": DBT,
            "MEDALFLOW_COSMOS_EXECUTION_MODE": mode,
            "MEDALFLOW_DUCKDB_POOL": "duckdb_writer",
        },
    ).start()
    try:
        client = AirflowClient(services.base_url, "medalflow", services.password)
        client.ensure_pool("duckdb_writer", 1, "DuckDB allows one writer")
        client.wait_for_dags(["medallion"])
        # The same build with Airflow's four services idling on the same CPUs (medallion still paused): on MWAA the
        # scheduler, triggerer and api-server run on machines of their own, here they take cycles from dbt.
        beside_airflow = run_dbt(project, warehouse, "build")
        client.set_paused("medallion", False)
        began = time.perf_counter()
        run_id = client.trigger(
            "medallion",
            conf={"data_interval_start": "2026-01-05T00:00:00+00:00", "data_interval_end": "2026-01-06T00:00:00+00:00"},
        )
        run = client.wait_for_run("medallion", run_id, timeout=3600)
        wall = time.perf_counter() - began
        task_instances = client.task_instances("medallion", run_id)
        started, ended = (datetime.fromisoformat(run[key]) for key in ("start_date", "end_date"))
        figures = {
            "wall_seconds": round(wall, 1),
            "run_seconds": round((ended - started).total_seconds(), 1),
            "tasks": len(task_instances),
            "dbt_build_beside_airflow_seconds": round(beside_airflow, 1),
        }
        producer = [ti for ti in task_instances if ti["task_id"].endswith("dbt_producer_watcher")]
        if producer:
            producer_started, producer_ended = (
                datetime.fromisoformat(producer[0][key]) for key in ("start_date", "end_date")
            )
            figures["run_start_to_producer_start_seconds"] = round((producer_started - started).total_seconds(), 1)
            figures["producer_seconds"] = round((producer_ended - producer_started).total_seconds(), 1)
            figures["producer_end_to_run_end_seconds"] = round((ended - producer_ended).total_seconds(), 1)
        return figures
    finally:
        services.stop()


NOTES = """\
How each mode spends the time:

* **LOCAL**: one dbt process per model and one per model's tests, each in its own Airflow task process, one at a
  time (DuckDB's single writer: the `duckdb_writer` pool). Every task pays an Airflow task start-up (the DAG file
  parsed again) plus a dbt start-up (project parsed, adapter opened) before any SQL runs.
* **WATCHER** (the default): one `dbt build` in the producer task; each model and test task reports its node's
  result. Those tasks start in the triggerer (`dags/medalflow/watcher.py`, Airflow 3's `start_from_trigger`) while
  the producer runs, each reporting its model as soon as dbt has finished it, and end there on success: no worker
  process is started for them, and the run ends a few seconds after the build.

What is left of the overhead in WATCHER mode: the producer's own start (an Airflow task process, Cosmos copying the
project, dbt starting), and its `dbt build` running beside Airflow's four services on the same 2 CPUs while Cosmos
parses dbt's JSON log line by line and pushes XComs per node through the Task SDK's API and the model tasks poll for
them from the triggerer. These grow with the number of nodes, not with the data, so the ratio falls as the models
do more work. The bare `dbt build` is measured between the DAG runs; each ratio is against the builds either side of
its run. The load average is the machine's.
"""


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "execution_overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Execution overhead: a medallion DAG run vs one `dbt build`",
        "",
        f"Measured {results['measured_at']} on {results['machine']}: {results['models']} synthetic models "
        f"(each aggregating {results['rows']:,} generated rows on DuckDB, each with a `not_null` test), one "
        "`dbt build` of them, then the medallion DAG in a running Airflow 3.3.1 (LocalExecutor, PostgreSQL, "
        "api-server + scheduler + dag-processor + triggerer) triggered through the REST API. dbt runs from its own "
        "virtualenv (SUBPROCESS), as on MWAA. Produced by `benchmarks/execution_overhead.py`.",
        "",
        f"Target: the DAG run at most **{TARGET_RATIO}x** the single `dbt build`.",
        "",
        "Bare `dbt build` runs, in order, one before and one after each DAG run: "
        + ", ".join(f"{seconds} s" for seconds in results["dbt_build_seconds"])
        + ". Each DAG run is compared with the mean of the builds either side of it.",
        "",
        "Each DAG run is also compared with the same `dbt build` run just before it beside the same Airflow, idle "
        "(its four services started, the DAG paused): the cost of orchestrating, without the cost of sharing 2 CPUs "
        "with Airflow's services, which MWAA runs on machines of their own.",
        "",
        "| run | tasks | wall time (s) | `dbt build` alone, either side (mean, s) | x alone | `dbt build` beside idle "
        "Airflow (s) | x beside | target met (alone / beside) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]

    def met(ratio: float) -> str:
        return "yes" if ratio <= TARGET_RATIO else "no"

    for mode, figures in results["modes"].items():
        lines.append(
            f"| DAG run, {mode.upper()} | {figures['tasks']} | {figures['wall_seconds']:.1f} | "
            f"{figures['dbt_build_seconds']:.1f} | {figures['ratio']:.2f} | "
            f"{figures['dbt_build_beside_airflow_seconds']:.1f} | {figures['ratio_beside_airflow']:.2f} | "
            f"{met(figures['ratio'])} / {met(figures['ratio_beside_airflow'])} |"
        )
    for mode, figures in results["modes"].items():
        if "producer_seconds" in figures:
            lines += [
                "",
                f"{mode.upper()} run: {figures['run_start_to_producer_start_seconds']} s from the run's start to the "
                f"producer's, {figures['producer_seconds']} s of producer (dbt start-up and the build), "
                f"{figures['producer_end_to_run_end_seconds']} s from the producer's end to the run's.",
            ]
    load = results["load_average_1min_before_and_after"]
    lines += ["", f"Load average (1 min) before and after: {load[0]} and {load[1]}.", "", NOTES]
    (RESULTS / "execution_overhead.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rows", type=int, default=30_000_000)
    parser.add_argument("--modes", nargs="+", default=["watcher", "local"], choices=["watcher", "local"])
    options = parser.parse_args()
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")

    project, warehouse = WORK / "project", WORK / "warehouse.duckdb"
    WORK.mkdir(parents=True, exist_ok=True)
    write_project(project, options.models, options.rows)
    run_dbt(project, warehouse, "parse")
    run_dbt(project, warehouse, "build")  # warm-up: DuckDB file, caches and page cache as for every later run
    load_before = os.getloadavg()[0]

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "models": options.models,
        "rows": options.rows,
        "target_ratio": TARGET_RATIO,
        "modes": {},
    }
    # Bare builds between the DAG runs: each run is compared with the builds right before and after it, so a change
    # in the machine's load during the benchmark moves both sides of a ratio.
    builds = [run_dbt(project, warehouse, "build")]
    print(f"one dbt build: {builds[-1]:.1f} s", flush=True)
    for mode in options.modes:
        figures = dag_run_in_airflow(mode, project, warehouse)
        builds.append(run_dbt(project, warehouse, "build"))
        figures["dbt_build_seconds"] = round((builds[-2] + builds[-1]) / 2, 1)
        figures["ratio"] = round(figures["wall_seconds"] / figures["dbt_build_seconds"], 2)
        beside = figures["dbt_build_beside_airflow_seconds"]
        figures["ratio_beside_airflow"] = round(figures["wall_seconds"] / beside, 2)
        results["modes"][mode] = figures
        print(f"{mode}: {figures}; one dbt build: {builds[-1]:.1f} s", flush=True)
    results["dbt_build_seconds"] = [round(seconds, 1) for seconds in builds]
    results["load_average_1min_before_and_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
