"""Drives the real compose stack: a Docker engine, the images, `docker compose up`, the demo pipeline through Airflow's
REST API as the UI's toggles do, what it built, and the metrics Prometheus scraped. Used by
tests/compose/test_compose_stack.py and benchmarks/compose_stack.py.

Where no registry answers, the third-party images are local stand-ins built from Debian packages
(scripts/build_standin_images.sh, docs/compose-standins.md). The containers reach the package registries through this
machine's proxy: its CA (the host's bundle) goes into the image through docker/extra-ca-certificates/, and proxy
variables set here are passed on as build arguments, never written anywhere.
"""

from __future__ import annotations

import filecmp
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = PROJECT_ROOT / "scripts" / "docker_engine.sh"
STANDIN_SCRIPT = PROJECT_ROOT / "scripts" / "build_standin_images.sh"
HOST_CA_BUNDLE = Path(os.environ.get("MEDALFLOW_HOST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
EXTRA_CA = PROJECT_ROOT / "docker" / "extra-ca-certificates" / "host-ca-bundle.crt"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")

# The demo window the seeding services load and the extraction DAGs are scheduled for (docker-compose.yml's
# MEDALFLOW_DEMO_START/END defaults): one day, so one run of each daily extraction.
DEMO_START, DEMO_END = date(2026, 1, 5), date(2026, 1, 6)
DAILY_EXTRACTIONS = ("extract_erp", "extract_partner_api", "extract_file_drops")
MEDALLION = "medallion"
OBSERVABILITY = "observability"
# A service of each image built from the Dockerfile: medalflow-airflow:local, then medalflow-demo:local.
IMAGE_SERVICES = ("airflow-init", "partner-api")


class StackError(RuntimeError):
    """The stack could not be set up or did not do what it should; the message says what and where to look."""


class ApiError(StackError):
    """Airflow's REST API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def run(command: list[str], *, env: dict[str, str] | None = None, check: bool = True, timeout: float = 3600) -> str:
    """Run a command; on failure raise StackError with its output's end (never echoing the environment)."""
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-40:]
        raise StackError(f"`{' '.join(command[:4])} ...` exited {result.returncode}:\n" + "\n".join(output))
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Engine:
    """A Docker engine: started by scripts/docker_engine.sh when none answers, and then stopped by it afterwards."""

    started_here: bool = False

    def ensure(self) -> None:
        if os.geteuid() != 0 and shutil.which("sudo") is None:
            raise StackError("the compose test needs root (or passwordless sudo) to install and start a Docker engine")
        answers = subprocess.run([str(ENGINE_SCRIPT), "status"], check=False).returncode == 0
        if answers and run(["docker", "compose", "version"], check=False):
            return
        run([str(ENGINE_SCRIPT), "install"], timeout=900)
        if subprocess.run([str(ENGINE_SCRIPT), "status"], check=False).returncode != 0:
            run([str(ENGINE_SCRIPT), "start"], timeout=120)
            self.started_here = True

    def stop(self) -> None:
        if self.started_here:
            run([str(ENGINE_SCRIPT), "stop"], timeout=120)
            self.started_here = False


def build_environment() -> dict[str, str]:
    """The environment of `docker compose build`: this machine's proxy variables (compose passes them on as build
    arguments, docker-compose.yml's x-build-args) and nothing written to disk."""
    return {name: value for name, value in os.environ.items() if name in PROXY_VARIABLES or not name.startswith("_")}


def install_host_ca() -> None:
    """The host CA bundle (it holds the proxy CA) as the image extra CA; git-ignored, kept as is: no rebuild."""
    if not HOST_CA_BUNDLE.is_file():
        return
    if not EXTRA_CA.exists() or not filecmp.cmp(HOST_CA_BUNDLE, EXTRA_CA, shallow=False):
        shutil.copyfile(HOST_CA_BUNDLE, EXTRA_CA)


def build_images(*, classic_builder: bool = False) -> None:
    """The stand-ins (skipped when current), then the project's two images from its Dockerfile (layer-cached)."""
    run([str(STANDIN_SCRIPT)], timeout=1800)
    install_host_ca()
    env = build_environment()
    if classic_builder:
        env["DOCKER_BUILDKIT"] = "0"
    settings = StackSettings.generate()  # compose needs the required variables even to build
    # One service per image, the Airflow one first: the demo image's build then reuses its layers, where building
    # all services at once would build the shared stage twice in parallel on the classic builder.
    for service in IMAGE_SERVICES:
        run(["docker", "compose", "--env-file", str(settings.write()), "build", service], env=env, timeout=3600)


@dataclass
class StackSettings:
    """A .env of the test's own: generated passwords and free host ports, so a developer's stack is not touched."""

    values: dict[str, str]
    path: Path = field(default_factory=lambda: PROJECT_ROOT / ".local" / "compose-test" / "compose.env")

    @classmethod
    def generate(cls) -> StackSettings:
        return cls({
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "MINIO_ROOT_PASSWORD": secrets.token_hex(16),
            "PARTNER_API_PASSWORD": secrets.token_hex(16),
            "AIRFLOW_UID": "50000",
            "AIRFLOW_PORT": str(free_port()),
            "POSTGRES_PORT": str(free_port()),
            "MINIO_PORT": str(free_port()),
            "MINIO_CONSOLE_PORT": str(free_port()),
            "PARTNER_API_PORT": str(free_port()),
            "PROMETHEUS_PORT": str(free_port()),
        })  # fmt: skip

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600)
        self.path.write_text("".join(f"{name}={value}\n" for name, value in self.values.items()))
        return self.path


@dataclass
class Stack:
    """One compose project of the test's own, brought up and torn down with its volumes."""

    project: str = "medalflow-compose-test"
    settings: StackSettings = field(default_factory=StackSettings.generate)
    token: str | None = None

    def compose(self, *arguments: str, timeout: float = 900, check: bool = True) -> str:
        command = ["docker", "compose", "--project-name", self.project, "--env-file", str(self.settings.path)]
        return run([*command, *arguments], timeout=timeout, check=check)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.values['AIRFLOW_PORT']}"

    def up(self) -> float:
        """`docker compose up --wait` (every service healthy, the one-shots done); returns the seconds it took."""
        self.settings.write()
        began = time.monotonic()
        try:
            self.compose("up", "--detach", "--wait", "--wait-timeout", "600", timeout=900)
        except StackError as error:
            raise StackError(f"{error}\n\n{self.unhealthy_report()}") from None
        return time.monotonic() - began

    def unhealthy_report(self) -> str:
        states = self.compose("ps", "--all", "--format", "{{.Service}}: {{.State}} {{.Status}}", check=False)
        logs = self.compose("logs", "--no-color", "--tail", "30", check=False)
        return f"services:\n{states}\nlast log lines:\n{logs[-6000:]}"

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300, check=False)

    # --- Airflow's REST API, as the UI uses it ------------------------------------------------------------------

    def admin_password(self) -> str:
        path = "/opt/airflow/secrets/admin_passwords.json"
        passwords = json.loads(self.compose("exec", "-T", "airflow-api-server", "cat", path))
        return passwords["admin"]

    def request(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                content = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:2000]
            raise ApiError(error.code, f"{method} {path}: HTTP {error.code}: {detail}") from None
        return content if raw else json.loads(content or b"null")

    def sign_in(self) -> None:
        """A JWT from /auth/token with the generated admin password, as the UI's login gets one."""
        self.token = None
        self.token = self.request("POST", "/auth/token", {"username": "admin", "password": self.admin_password()})[
            "access_token"
        ]

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        """The dag-processor has parsed them (the UI lists them)."""
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while missing and time.monotonic() < deadline:
            missing = [dag_id for dag_id in missing if not self._dag_exists(dag_id)]
            if missing:
                time.sleep(3)
        if missing:
            errors = self.request("GET", "/api/v2/importErrors")
            raise StackError(f"DAGs {missing} not parsed after {timeout:.0f} s; import errors: {errors}")

    def _dag_exists(self, dag_id: str) -> bool:
        try:
            self.request("GET", f"/api/v2/dags/{dag_id}")
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    def start_demo(self) -> float:
        """What docs/compose.md tells the user to do in the UI: unpause the medallion, then the three daily
        extractions. Each extraction then runs the demo window's days (its schedule is limited to them and catches
        up), and their raw Assets start the medallion. Returns when the first extraction was unpaused."""
        self.wait_for_dags([MEDALLION, *DAILY_EXTRACTIONS])
        self.request("PATCH", f"/api/v2/dags/{MEDALLION}", {"is_paused": False})
        began = time.monotonic()
        for dag_id in DAILY_EXTRACTIONS:
            self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        return began

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after")["dag_runs"]

    def wait_for_runs(self, dag_id: str, count: int, deadline: float) -> list[dict[str, Any]]:
        """Once ``count`` runs of the DAG exist and all succeeded, those runs; StackError when one fails or time
        runs out."""
        while time.monotonic() < deadline:
            runs = self.dag_runs(dag_id)
            if any(run["state"] == "failed" for run in runs):
                raise StackError(f"a {dag_id} run failed: {self.failed_tasks(dag_id)}")
            # A task that failed once fails the demo at once, rather than after the retries' delays.
            if retrying := self.tasks_in_states(dag_id, ("up_for_retry", "failed")):
                run_id, task_id, try_number = retrying[0]
                names = [f"{run}:{task}" for run, task, _ in retrying[:10]]
                raise StackError(f"{dag_id}: task(s) failed: {names}; the end of {task_id}'s log:\n"
                                 f"{self.task_log_tail(dag_id, run_id, task_id, try_number)}")  # fmt: skip
            if len(runs) >= count and all(run["state"] == "success" for run in runs):
                return runs
            time.sleep(3)
        states = [(run["dag_run_id"], run["state"]) for run in self.dag_runs(dag_id)]
        raise StackError(f"{dag_id}: {count} successful run(s) expected in time, found {states}\n"
                         f"{self.unhealthy_report()}")  # fmt: skip

    def wait_for_demo(self, timeout: float = 1500) -> dict[str, list[dict[str, Any]]]:
        """The runs of the demo started by start_demo: each extraction's run per demo day, then the medallion's run
        their Assets started, all succeeded. By DAG id."""
        deadline = time.monotonic() + timeout
        days = (DEMO_END - DEMO_START).days
        runs = {dag_id: self.wait_for_runs(dag_id, days, deadline) for dag_id in DAILY_EXTRACTIONS}
        runs[MEDALLION] = self.wait_for_runs(MEDALLION, 1, deadline)
        return runs

    def tasks_in_states(self, dag_id: str, states: tuple[str, ...]) -> list[tuple[str, str, int]]:
        """(run id, task id, try number) of the DAG's task instances in those states, over all its runs."""
        query = urllib.parse.urlencode([("state", state) for state in states])
        found = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?{query}")["task_instances"]
        return [(task["dag_run_id"], task["task_id"], task["try_number"]) for task in found]

    def task_log_tail(self, dag_id: str, run_id: str, task_id: str, try_number: int, lines: int = 25) -> str:
        """The last lines of a task instance's log, as the UI's Logs tab shows it (best effort: for an error)."""
        path = (f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/"
                f"{urllib.parse.quote(task_id)}/logs/{max(try_number, 1)}?full_content=true")  # fmt: skip
        try:
            content = self.request("GET", path)["content"]
        except (StackError, OSError, KeyError, ValueError) as error:
            return f"(no log: {error})"
        if isinstance(content, list):  # structured log lines: the event and, for an exception, its details
            content = "\n".join(
                " ".join(str(line.get(key, "")) for key in ("event", "error_detail") if line.get(key))
                if isinstance(line, dict) else str(line)
                for line in content
            )  # fmt: skip
        text = str(content)
        # From the last traceback when there is one: the cause, not the lines the task wrote before it.
        text = text[text.rfind("Traceback") :] if "Traceback" in text else text
        return "\n".join(line[:300] for line in text.splitlines()[-lines:])

    def failed_tasks(self, dag_id: str) -> list[str]:
        failed = []
        for run in self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]:
            instances = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")
            failed += [
                f"{run['dag_run_id']}:{task['task_id']}"
                for task in instances["task_instances"]
                if task["state"] in ("failed", "upstream_failed")
            ]
        return failed

    # --- what the pipeline built ----------------------------------------------------------------------------------

    def erp_monthly_orders(self) -> list[tuple[str, int, str]]:
        """Live orders by month straight from the seeded ERP: (month, count, sales)."""
        query = (
            "select to_char(date_trunc('month', order_date), 'YYYY-MM-DD'), count(*), sum(sale_amount_brl) "
            "from orders where deleted_at is null and status != 'cancelled' group by 1 order by 1"
        )
        user = self.settings.values.get("POSTGRES_USER", "medalflow")
        out = self.compose("exec", "-T", "postgres", "psql", "-U", user, "-d", "erp", "-At", "-F", ",", "-c", query)
        rows = (line.split(",") for line in out.split())
        return [(month, int(count), f"{float(amount):.2f}") for month, count, amount in rows]

    def gold_monthly_orders(self) -> list[tuple[str, int, str]]:
        """gold.agg_monthly_orders from the DuckDB file in the data volume, read in a container (dbt's DuckDB)."""
        script = (
            "import duckdb, json; c = duckdb.connect('/opt/airflow/data/warehouse.duckdb', read_only=True); "
            "print(json.dumps([[str(m), n, f'{float(s):.2f}'] for m, n, s in c.execute("
            "'select order_month, order_count, sales_brl from gold.agg_monthly_orders order by 1').fetchall()]))"
        )
        out = self.compose("exec", "-T", "airflow-scheduler", "/opt/venv/dbt/bin/python", "-c", script)
        return [tuple(row) for row in json.loads(out)]

    # --- the metrics Prometheus scraped ---------------------------------------------------------------------------

    def prometheus_query(self, query: str) -> list[dict[str, Any]]:
        """An instant query through Prometheus's HTTP API: the result's series (``metric`` labels, ``value``)."""
        port = self.settings.values["PROMETHEUS_PORT"]
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=30) as response:
            answer = json.loads(response.read())
        if answer.get("status") != "success":
            raise StackError(f"Prometheus query {query!r}: {answer}")
        return answer["data"]["result"]

    def wait_for_metric(self, query: str, timeout: float = 90) -> list[dict[str, Any]]:
        """The query's series once there are any (Prometheus scrapes the StatsD exporter every 5 s)."""
        deadline = time.monotonic() + timeout
        while not (series := self.prometheus_query(query)) and time.monotonic() < deadline:
            time.sleep(3)
        if not series:
            known = self.prometheus_query('{__name__=~"airflow_.+"}')
            names = sorted({entry["metric"]["__name__"] for entry in known})
            raise StackError(f"Prometheus has no series for {query!r} after {timeout:.0f} s; Airflow metrics it has: "
                             f"{names}")  # fmt: skip
        return series

    def run_observability(self, timeout: float = 600) -> list[dict[str, Any]]:
        """What docs/compose.md says fills the Pipeline health page: switch on the ``observability`` DAG (hourly; its
        latest interval runs at once), which models the demo's runs and publishes them for the page."""
        self.wait_for_dags([OBSERVABILITY])
        self.request("PATCH", f"/api/v2/dags/{OBSERVABILITY}", {"is_paused": False})
        return self.wait_for_runs(OBSERVABILITY, 1, time.monotonic() + timeout)

    def pipeline_health(self, days: int = 30) -> dict[str, Any]:
        """The medalflow page's figures, from its JSON endpoint (plugins/medalflow_observability.py)."""
        return self.request("GET", f"/medalflow/api/page-data?days={days}")

    def dbt_docs_page(self) -> tuple[bytes, bytes]:
        """The dbt docs site through the UI's plugin route: the page and its manifest."""
        return (
            self.request("GET", "/dbt-docs/index.html", raw=True),
            self.request("GET", "/dbt-docs/manifest.json", raw=True),
        )
