"""A real Airflow 3 for tests: api-server, scheduler, dag-processor and triggerer as native processes.

:class:`AirflowServices` starts them on a metadata database of their own (PostgreSQL, LocalExecutor), on a free port,
with each service's output in ``<home>/logs/<service>.log``, and waits until ``/api/v2/monitor/health`` reports every
component healthy. :meth:`AirflowServices.stop` ends each service's process group and then any descendant that left
it (Cosmos starts dbt with ``setsid``), so nothing outlives the test session.

:class:`AirflowClient` talks to the REST API v2 the way the UI does: a JWT from the simple auth manager
(``POST /auth/token``), then ``/api/v2/...`` with ``Authorization: Bearer``.

One instance is shared by every test module of the session that asks for it (:func:`shared_services`): starting
Airflow costs half a minute on two cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import requests
from local_servers import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
USERNAME = "medalflow"
FINISHED_RUN_STATES = {"success", "failed"}


@dataclass
class AirflowServices:
    """The four Airflow services of one test session, configured entirely by environment variables."""

    home: Path
    database_url: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def environment(self) -> dict[str, str]:
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({USERNAME: self.password}))
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW__")}
        # Every task process imports Airflow, Cosmos and the DAG file: without cached bytecode each one compiles
        # ~700 modules first (seconds per task on two cores), which no real deployment pays.
        inherited.pop("PYTHONDONTWRITEBYTECODE", None)
        return {
            **inherited,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # New DAG files are found within seconds; a test never waits for the five-minute default.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DO_NOT_TRACK": "1",
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "dags"), str(PROJECT_ROOT / "plugins")]),
            **self.extra_env,
        }

    def start(self, timeout: float = 180) -> AirflowServices:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        environment = self.environment()
        with (self.log_dir / "db-migrate.log").open("w") as log:
            subprocess.run(
                [AIRFLOW, "db", "migrate"], env=environment, stdout=log, stderr=subprocess.STDOUT, check=True
            )
        for service in SERVICES:
            log = (self.log_dir / f"{service}.log").open("w")
            # A session of its own per service: stop() signals the whole group, workers and task processes included.
            self.processes[service] = subprocess.Popen(
                [AIRFLOW, service],
                env=environment,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        try:
            self.wait_until_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def health(self) -> dict[str, Any]:
        response = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        response.raise_for_status()
        return response.json()

    def wait_until_healthy(self, timeout: float) -> None:
        deadline, last = time.monotonic() + timeout, "no answer yet"
        while time.monotonic() < deadline:
            exited = {
                name: process.returncode for name, process in self.processes.items() if process.poll() is not None
            }
            if exited:
                raise RuntimeError(f"Airflow services exited early {exited}\n{self.log_tails()}")
            try:
                health = self.health()
                if all((health.get(name) or {}).get("status") == "healthy" for name in HEALTH_COMPONENTS):
                    return
                last = json.dumps(health)
            except requests.RequestException as error:
                last = repr(error)
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy after {timeout:.0f} s: {last}\n{self.log_tails()}")

    def log_tails(self, lines: int = 40) -> str:
        tails = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(tails)

    def task_logs(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every attempt's log of one task instance, as written by the workers under the Airflow home."""
        folder = self.log_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(path.read_text(errors="replace") for path in sorted(folder.rglob("*.log")))

    def stop(self, grace: float = 20) -> None:
        """SIGTERM every service's group, wait, then SIGKILL whatever is left, descendants that left the group too."""
        descendants: list[psutil.Process] = []
        for process in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                descendants += psutil.Process(process.pid).children(recursive=True)
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        _, alive = psutil.wait_procs(descendants, timeout=max(0.1, deadline - time.monotonic()))
        for leftover in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        psutil.wait_procs(alive, timeout=5)
        self.processes.clear()

    def orphans(self) -> list[psutil.Process]:
        """Processes still running with this Airflow home in their environment (there should be none after stop)."""
        found = []
        marker = f"AIRFLOW_HOME={self.home}"
        for process in psutil.process_iter(["pid"]):
            try:
                if process.pid != os.getpid() and marker in "\0".join(f"{k}={v}" for k, v in process.environ().items()):
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class AirflowClient:
    """The REST API v2 as the UI uses it, authenticated as the simple auth manager's user."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        token = self.token(username, password)
        self.session.headers["Authorization"] = f"Bearer {token}"

    def token(self, username: str, password: str) -> str:
        response = requests.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}/api/v2/{path.lstrip('/')}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 180) -> None:
        """Until the dag-processor has parsed and stored every DAG; fails at once on an import error."""
        wanted, deadline = set(dag_ids), time.monotonic() + timeout
        while time.monotonic() < deadline:
            errors = self.get("importErrors")["import_errors"]
            if errors:
                raise RuntimeError("DAG import errors: " + json.dumps(errors, indent=2))
            found = {dag["dag_id"] for dag in self.get("dags", limit=100)["dags"]}
            if wanted <= found:
                return
            time.sleep(2)
        raise TimeoutError(f"DAGs {sorted(wanted)} not parsed after {timeout:.0f} s")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"dags/{dag_id}", json={"is_paused": paused})

    def ensure_pool(self, name: str, slots: int, description: str) -> None:
        try:
            self.request("PATCH", f"pools/{name}", json={"name": name, "slots": slots, "description": description})
        except RuntimeError:
            self.request("POST", "pools", json={"name": name, "slots": slots, "description": description})

    def trigger(self, dag_id: str, logical_date: datetime | None = None, conf: dict | None = None) -> str:
        """What the UI's Trigger button sends: a logical date (or none), the run's conf and a note."""
        body = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": conf or {},
            "note": "triggered by the medalflow live tests",
        }
        return self.request("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"dags/{dag_id}/dagRuns", limit=100, order_by="id")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)["task_instances"]

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 300, describe: Callable[[str, str], str] | None = None
    ) -> dict[str, Any]:
        """Poll a run until it finishes; a failure names the failed tasks (and their logs, through ``describe``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINISHED_RUN_STATES:
                if run["state"] != "success":
                    raise AssertionError(self.failure_report(dag_id, run_id, describe))
                print(f"{dag_id} run {run_id}: {run['state']} from {run['start_date']} to {run['end_date']}")
                return run
            time.sleep(2)
        raise TimeoutError(f"{dag_id} run {run_id} not finished after {timeout:.0f} s\n" + self.states(dag_id, run_id))

    def wait_for_new_run(
        self, dag_id: str, run_type: str, known: Iterable[str], timeout: float = 180
    ) -> dict[str, Any]:
        """The first run of a type that is not among the ``known`` run ids (e.g. an asset-triggered run)."""
        known_ids, deadline = set(known), time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.runs(dag_id):
                if run["run_type"] == run_type and run["dag_run_id"] not in known_ids:
                    return run
            time.sleep(2)
        raise TimeoutError(f"no new {run_type} run of {dag_id} after {timeout:.0f} s")

    def states(self, dag_id: str, run_id: str) -> str:
        instances = self.task_instances(dag_id, run_id)
        return "\n".join(f"  {ti['task_id']}: {ti['state']}" for ti in sorted(instances, key=lambda ti: ti["task_id"]))

    def failure_report(self, dag_id: str, run_id: str, describe: Callable[[str, str], str] | None) -> str:
        failed = [
            ti["task_id"] for ti in self.task_instances(dag_id, run_id) if ti["state"] not in ("success", "skipped")
        ]
        report = [f"{dag_id} run {run_id} did not succeed; task states:", self.states(dag_id, run_id)]
        if describe:
            report += [describe(run_id, task_id)[-6000:] for task_id in failed[:3]]
        return "\n".join(report)
