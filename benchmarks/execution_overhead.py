"""How much a medallion DAG run in a running Airflow costs beyond the ``dbt build`` it performs, LOCAL vs WATCHER.

A synthetic dbt project (``--models`` models in three layers, each aggregating ``--rows`` generated rows on DuckDB,
each with a ``not_null`` test, so both modes get a run task and a test task per model) is built with a single
``dbt build``, then by the medallion DAG in a live Airflow 3 (api-server, scheduler, dag-processor, triggerer;
LocalExecutor on PostgreSQL: the harness of tests/live), ``--runs`` runs one after another for each Cosmos execution
mode. A run's wall time is from the REST trigger to the run's end, as a user waits for it; the CPU each Airflow
service and dbt spent during it is recorded beside it.

    .venv/airflow/bin/python benchmarks/execution_overhead.py [--models 20] [--rows 30000000] [--runs 2]
        [--modes watcher local]

Results: benchmarks/results/execution_overhead.json and .md (``--rewrite`` renders the .md again from the .json).
Target: the DAG run at most 1.5x the single build. Needs a quiet machine: anything else running moves the ratios.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psutil
from sqlalchemy import Engine, create_engine, text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "tests" / "live"), str(PROJECT_ROOT / "tests"), str(PROJECT_ROOT / "dags")]

from airflow_services import AirflowClient, AirflowServices  # ruff: ignore[module-import-not-at-top-of-file]

from medalflow_demo.pipeline import recreate_postgres_database  # ruff: ignore[module-import-not-at-top-of-file]

WORK = PROJECT_ROOT / "benchmarks" / ".work" / "execution_overhead"
RESULTS = PROJECT_ROOT / "benchmarks" / "results"
DBT = os.getenv("MEDALFLOW_DBT_EXECUTABLE", str(PROJECT_ROOT / ".venv" / "dbt" / "bin" / "dbt"))
TARGET_RATIO = 1.5
CPU_COLUMNS = ["api-server", "scheduler", "dag-processor", "triggerer", "task processes", "dbt"]


class DbtRun(NamedTuple):
    """One dbt invocation: its wall time and the CPU time (user + system) of dbt's process, in seconds."""

    seconds: float
    cpu_seconds: float


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


def run_dbt(project: Path, warehouse: Path, *arguments: str) -> DbtRun:
    # The profile and target flags Cosmos passes: the partial parse left here is one Cosmos's tasks can reuse.
    command = [DBT, *arguments, "--project-dir", str(project), "--profiles-dir", str(PROJECT_ROOT / "profiles")]
    command += ["--profile", "medalflow", "--target", "duckdb"]
    began, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=dbt_environment(project, warehouse), check=True, capture_output=True)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    return DbtRun(time.perf_counter() - began, cpu)


class CpuAccount:
    """CPU seconds spent by each Airflow service's process tree while it runs, dbt and task processes apart.

    Samples every live descendant of the services twice a second and keeps each process's last cumulative CPU time:
    a process that ends between two samples loses at most half a second of its own.
    """

    def __init__(self, services: dict[str, subprocess.Popen], interval: float = 0.5) -> None:
        self.roots = {name: process.pid for name, process in services.items()}
        self.interval = interval
        self.last_seen: dict[int, tuple[str, float]] = {}
        self.baseline: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuAccount:
        self._sample(initial=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self, initial: bool = False) -> None:
        for service, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in processes:
                try:
                    times = process.cpu_times()
                    category = self._category(service, process)
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    continue
                used = times.user + times.system
                if initial:
                    self.baseline[process.pid] = used
                self.last_seen[process.pid] = (category, used)

    @staticmethod
    def _category(service: str, process: psutil.Process) -> str:
        command = " ".join(process.cmdline())
        if "/dbt" in command.split(" ")[0] or " dbt " in f" {command} ":
            return "dbt"
        # LocalExecutor's workers supervise; each task runs in a child process titled "airflow worker -- <ti id>".
        if command.startswith("airflow worker -- ") and "LocalExecutor" not in command:
            return "task processes"
        return service

    def seconds(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for pid, (category, used) in self.last_seen.items():
            totals[category] += used - self.baseline.get(pid, 0.0)
        return {category: round(value, 1) for category, value in sorted(totals.items())}


def dag_runs_in_airflow(mode: str, project: Path, warehouse: Path, runs: int) -> dict[str, Any]:
    """Start Airflow, build once beside it idle, then trigger ``runs`` medallion runs one after another."""
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
        with CpuAccount(services.processes) as idle_cpu:
            beside_airflow = run_dbt(project, warehouse, "build")
        client.set_paused("medallion", False)
        metadata = create_engine(services.database_url)
        try:
            return {
                "dbt_build_beside_airflow_seconds": round(beside_airflow.seconds, 1),
                "dbt_cpu_seconds_beside_airflow": round(beside_airflow.cpu_seconds, 1),
                "cpu_seconds_of_idle_airflow_during_build_beside": idle_cpu.seconds(),
                "runs": [timed_dag_run(client, services, metadata, day) for day in range(5, 5 + runs)],
            }
        finally:
            metadata.dispose()
    finally:
        services.stop()


def timed_dag_run(client: AirflowClient, services: AirflowServices, metadata: Engine, day: int) -> dict[str, Any]:
    """One medallion run for 2026-01-<day>, timed from the REST trigger to the run's end, as a user waits for it."""
    began = time.perf_counter()
    with CpuAccount(services.processes) as run_cpu:
        run_id = client.trigger(
            "medallion",
            conf={
                "data_interval_start": f"2026-01-{day:02d}T00:00:00+00:00",
                "data_interval_end": f"2026-01-{day + 1:02d}T00:00:00+00:00",
            },
        )
        state, started, ended = wait_for_run_in_metadata(metadata, "medallion", run_id)
    wall = time.perf_counter() - began
    if state != "success":
        logs = functools.partial(services.task_logs, "medallion")
        raise AssertionError(client.failure_report("medallion", run_id, logs))
    task_instances = client.task_instances("medallion", run_id)
    figures: dict[str, Any] = {
        "wall_seconds": round(wall, 1),
        "run_seconds": round((ended - started).total_seconds(), 1),
        "tasks": len(task_instances),
        "cpu_seconds": run_cpu.seconds(),
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


NOTES = """\
How each mode spends the time:

* **LOCAL**: one dbt process per model and one per model's tests, each in its own Airflow task process, one at a
  time (DuckDB's single writer: the `duckdb_writer` pool). Every task pays an Airflow task start-up (the DAG file
  parsed again) plus a dbt start-up (project parsed, adapter opened) before any SQL runs.
* **WATCHER** (the default): one `dbt build` in the producer task; each model and test task reports its node's
  result. Those tasks start in the triggerer (`dags/medalflow/watcher.py`, Airflow 3's `start_from_trigger`) while
  the producer runs and end there on success: no worker process is started for them. The producer keeps every
  node's status in one XCom, and one poll loop per run in the triggerer reads it (and the producer's state) once a
  second for all the tasks waiting on it: two calls through the execution API per second, however many tasks wait.

Why the first run after Airflow starts is slower: the API server and the triggerer build their execution API
routes on the first call they serve (3.4 s of wall time for the producer's first API call here; a few seconds of
CPU in each), once per process. A deployed Airflow pays that once, not per run; the warm runs are what a daily
run costs.

What is left of the overhead in a warm WATCHER run: the producer's own start (an Airflow task process, Cosmos
copying the project, dbt starting), the last model's tests reported a few seconds after the build (scheduler and
triggerer loops), and the `dbt build` sharing 2 CPUs with Airflow's services, which MWAA runs on machines of their
own. Of those services' CPU, the dag-processor's is mostly Airflow re-parsing the DAG file for a success callback
request that Airflow sends for every task ending in the triggerer, callback or not (the medallion defines none for
success). These costs grow with the number of nodes and the run's length, not with the work each model does.

How it is measured: the DAG runs are triggered through the REST API as the UI's Trigger button does, and their end
is read from the metadata database once a second (asking the REST API would load the DAG's serialised versions,
CPU taken from the run being measured). CPU per service is sampled from `/proc` twice a second. The bare `dbt
build` is measured before and after each mode's runs, each run's ratio against the mean of the two. The load
average is the machine's.
"""


def wait_for_run_in_metadata(
    metadata: Engine, dag_id: str, run_id: str, timeout: float = 3600
) -> tuple[str, datetime, datetime]:
    """The run's final state, start and end, read from the metadata database once a second.

    Not through the REST API: answering ``GET .../dagRuns/<id>`` loads the DAG's serialised versions, a tenth of a
    second of the API server's CPU per look, taken from the run being measured.
    """
    query = text("select state, start_date, end_date from dag_run where dag_id = :dag_id and run_id = :run_id")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with metadata.connect() as connection:
            row = connection.execute(query, {"dag_id": dag_id, "run_id": run_id}).one_or_none()
        if row is not None and row.state in ("success", "failed"):
            return row.state, row.start_date, row.end_date
        time.sleep(1)
    raise TimeoutError(f"{dag_id} run {run_id} not finished after {timeout:.0f} s")


def run_label(mode: str, index: int) -> str:
    return f"{mode.upper()}, " + ("first run after Airflow started" if index == 0 else f"run {index + 1} (warm)")


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "execution_overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Execution overhead: a medallion DAG run vs one `dbt build`",
        "",
        f"Measured {results['measured_at']} on {results['machine']}: {results['models']} synthetic models "
        f"(each aggregating {results['rows']:,} generated rows on DuckDB, each with a `not_null` test), one "
        "`dbt build` of them, then the medallion DAG in a running Airflow 3.3.1 (LocalExecutor, PostgreSQL, "
        "api-server + scheduler + dag-processor + triggerer) triggered through the REST API, "
        f"{results['runs_per_mode']} runs one after another per execution mode. dbt runs from its own virtualenv "
        "(SUBPROCESS), as on MWAA. Produced by `benchmarks/execution_overhead.py`.",
        "",
        f"Target: the DAG run at most **{TARGET_RATIO}x** the single `dbt build`.",
        "",
        "Bare `dbt build` runs, in order, one before and one after each mode's DAG runs: "
        + ", ".join(f"{seconds} s" for seconds in results["dbt_build_seconds"])
        + ". Each DAG run is compared with the mean of the builds either side of its mode's runs.",
        "",
        "Each DAG run is also compared with the same `dbt build` run beside the same Airflow, idle, just before "
        "the mode's first run (its four services started, the DAG paused): the cost of orchestrating, without the "
        "cost of sharing 2 CPUs with Airflow's services, which MWAA runs on machines of their own.",
        "",
        "| run | tasks | wall time (s) | `dbt build` alone, either side (mean, s) | x alone | `dbt build` beside idle "
        "Airflow (s) | x beside | target met (alone / beside) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]

    def met(ratio: float) -> str:
        return "yes" if ratio <= TARGET_RATIO else "no"

    for mode, figures in results["modes"].items():
        for index, run in enumerate(figures["runs"]):
            lines.append(
                f"| {run_label(mode, index)} | {run['tasks']} | {run['wall_seconds']:.1f} | "
                f"{figures['dbt_build_seconds']:.1f} | {run['ratio']:.2f} | "
                f"{figures['dbt_build_beside_airflow_seconds']:.1f} | {run['ratio_beside_airflow']:.2f} | "
                f"{met(run['ratio'])} / {met(run['ratio_beside_airflow'])} |"
            )
    lines += [
        "",
        "Where the CPU went during each run (seconds of user + system time, per Airflow service's process tree; "
        "`dbt` is every dbt process, wherever it ran) and during the bare builds:",
        "",
        "| run | " + " | ".join(CPU_COLUMNS) + " |",
        "| --- |" + " ---: |" * len(CPU_COLUMNS),
    ]
    for mode, figures in results["modes"].items():
        for index, run in enumerate(figures["runs"]):
            lines.append(
                f"| {run_label(mode, index)} | "
                + " | ".join(f"{run['cpu_seconds'].get(column, 0.0):.1f}" for column in CPU_COLUMNS)
                + " |"
            )
        idle = figures["cpu_seconds_of_idle_airflow_during_build_beside"]
        lines.append(
            f"| {mode.upper()}, idle Airflow beside a bare build | "
            + " | ".join(f"{idle.get(column, 0.0):.1f}" for column in CPU_COLUMNS[:-1])
            + f" | {figures['dbt_cpu_seconds_beside_airflow']:.1f} |"
        )
    lines.append(
        "| bare `dbt build`s, no Airflow running (mean) | "
        + " | ".join(["–"] * (len(CPU_COLUMNS) - 1))
        + f" | {results['dbt_build_cpu_seconds_mean']:.1f} |"
    )
    for mode, figures in results["modes"].items():
        for index, run in enumerate(figures["runs"]):
            if "producer_seconds" in run:
                lines += [
                    "",
                    f"{run_label(mode, index)}: {run['run_start_to_producer_start_seconds']} s from the run's start "
                    f"to the producer's, {run['producer_seconds']} s of producer (dbt start-up and the build), "
                    f"{run['producer_end_to_run_end_seconds']} s from the producer's end to the run's.",
                ]
    load = results["load_average_1min_before_and_after"]
    lines += ["", f"Load average (1 min) before and after: {load[0]} and {load[1]}.", "", NOTES]
    (RESULTS / "execution_overhead.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rows", type=int, default=30_000_000)
    parser.add_argument("--modes", nargs="+", default=["watcher", "local"], choices=["watcher", "local"])
    parser.add_argument("--runs", type=int, default=2, help="DAG runs per mode, one after another (default 2)")
    parser.add_argument("--rewrite", action="store_true", help="only render the .md again from the .json")
    options = parser.parse_args()
    if options.rewrite:
        write_results(json.loads((RESULTS / "execution_overhead.json").read_text()))
        return 0
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")

    project, warehouse = WORK / "project", WORK / "warehouse.duckdb"
    WORK.mkdir(parents=True, exist_ok=True)
    write_project(project, options.models, options.rows)
    run_dbt(project, warehouse, "parse")
    run_dbt(project, warehouse, "build")  # warm-up: DuckDB file, caches and page cache as for every later run
    load_before = os.getloadavg()[0]

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "models": options.models,
        "rows": options.rows,
        "runs_per_mode": options.runs,
        "target_ratio": TARGET_RATIO,
        "modes": {},
    }
    # Bare builds between the modes: each mode's runs are compared with the builds right before and after them, so
    # a change in the machine's load during the benchmark moves both sides of a ratio.
    builds = [run_dbt(project, warehouse, "build")]
    print(f"one dbt build: {builds[-1].seconds:.1f} s", flush=True)
    for mode in options.modes:
        figures = dag_runs_in_airflow(mode, project, warehouse, options.runs)
        builds.append(run_dbt(project, warehouse, "build"))
        figures["dbt_build_seconds"] = round((builds[-2].seconds + builds[-1].seconds) / 2, 1)
        for run in figures["runs"]:
            run["ratio"] = round(run["wall_seconds"] / figures["dbt_build_seconds"], 2)
            run["ratio_beside_airflow"] = round(run["wall_seconds"] / figures["dbt_build_beside_airflow_seconds"], 2)
        results["modes"][mode] = figures
        print(f"{mode}: {json.dumps(figures)}; one dbt build: {builds[-1].seconds:.1f} s", flush=True)
    results["dbt_build_seconds"] = [round(build.seconds, 1) for build in builds]
    results["dbt_build_cpu_seconds"] = [round(build.cpu_seconds, 1) for build in builds]
    results["dbt_build_cpu_seconds_mean"] = round(sum(build.cpu_seconds for build in builds) / len(builds), 1)
    results["load_average_1min_before_and_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
