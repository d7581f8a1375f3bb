"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The Compose Specification's JSON schema catches what Compose itself would reject; the other tests catch what a
schema cannot: images and build inputs that exist, the Airflow 3 components sharing one configuration, the project
folders mounted where the settings point, healthchecks, and no secret written in the file.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.machinery
import importlib.util
import json
import re
from itertools import pairwise
from pathlib import Path

import jsonschema
import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
SCHEMA = PROJECT_ROOT.parent / "shared" / "schemas" / "compose-spec.json"
AIRFLOW_COMPONENTS = {
    "airflow-api-server": ["airflow", "api-server"],
    "airflow-scheduler": ["airflow", "scheduler"],
    "airflow-dag-processor": ["airflow", "dag-processor"],
    "airflow-triggerer": ["airflow", "triggerer"],
    "airflow-worker": ["airflow", "celery", "worker"],
}
AIRFLOW_SERVICES = ["airflow-init", *AIRFLOW_COMPONENTS]
DEMO_SERVICES = ["partner-api", "erp-seed", "file-drops-seed"]
ONE_SHOT_SERVICES = {"airflow-init", "minio-init", "erp-seed", "file-drops-seed"}
METRICS_SERVICES = {"statsd-exporter", "prometheus"}
STATSD_MAPPINGS = PROJECT_ROOT / "docker" / "statsd-exporter" / "mappings.yml"
PROMETHEUS_CONFIG = PROJECT_ROOT / "docker" / "prometheus" / "prometheus.yml"
# The compose test's stand-in for the StatsD exporter: its rule matching is the real exporter's (glob per component,
# first match wins, unmatched names with `_` for other characters), so the mapping file can be checked here.
STATSD_EXPORTER_STANDIN = PROJECT_ROOT / "tests" / "compose" / "standins" / "statsd_exporter"
# What the image must not carry: requirements/dev.txt's test and lint tools.
TEST_TOOLS = {"pytest", "pytest-timeout", "ruff", "moto", "selenium"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY\b|_KEY_", re.IGNORECASE)
# ${VAR}, ${VAR:-default}, ${VAR:?message}; not $${VAR}, which compose passes to the container's shell as ${VAR}.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(\w+)(?::?([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_compose_file_follows_the_compose_specification(compose):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)

    broken = copy.deepcopy(compose)
    broken["services"]["airflow-scheduler"]["helthcheck"] = {}
    assert not validator.is_valid(broken), "the schema check would not notice a misspelt key"


def test_the_stack_has_its_services(services):
    assert set(services) == {
        "postgres",
        "minio",
        "minio-init",
        "redis",
        *METRICS_SERVICES,
        *DEMO_SERVICES,
        *AIRFLOW_SERVICES,
    }


def dockerignore_allows(path: str) -> bool:
    """Whether .dockerignore lets a path into the build context (its last matching pattern decides)."""
    allowed = True
    for pattern in (PROJECT_ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        if fnmatch.fnmatch(path.rstrip("/"), pattern.removeprefix("!")):
            allowed = negated
    return allowed


def test_every_service_has_an_image_that_exists_or_is_built_here(services):
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    built_here = {service["image"] for service in services.values() if "build" in service}
    assert built_here == {"medalflow-airflow:local", "medalflow-demo:local"}
    for name, service in services.items():
        assert "image" in service, name
        if "build" in service:
            context = PROJECT_ROOT / service["build"]["context"]
            assert (context / "Dockerfile").is_file(), name
            assert re.search(rf"^FROM \S+ AS {service['build']['target']}$", dockerfile, re.M), name
        elif service["image"] in built_here:
            continue
        else:
            repository, _, tag = service["image"].rpartition(":")
            assert repository, f"{name}: pin the image's tag ({service['image']})"
            assert tag not in ("", "latest"), f"{name}: pin the image's tag ({service['image']})"


def test_the_dockerfile_copies_files_that_reach_the_build_context():
    copies = re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+\S+\s*$", (PROJECT_ROOT / "Dockerfile").read_text(), re.M)
    assert copies, "no COPY line found"
    for source in copies:
        assert (PROJECT_ROOT / source).exists(), source
        assert dockerignore_allows(source), f"{source} is excluded by .dockerignore"
    for private in (".env", ".venv/airflow/bin/python", ".local/warehouse.duckdb", "dags/medallion.py"):
        assert not dockerignore_allows(private), f"{private} would be sent to the Docker daemon"


def test_the_dockerfile_builds_from_the_lock_files_with_the_shared_script():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    runtime_sync = (
        "uv pip sync --python /opt/venv/airflow/bin/python /opt/medalflow/requirements/lock/airflow-runtime.lock.txt"
    )
    assert runtime_sync in dockerfile
    assert "airflow.lock.txt" not in dockerfile.split(" AS demo", 1)[0], "the Airflow image syncs the full lock"
    dbt_build = r"build_dbt_venv\.sh \\\s+/opt/venv/dbt /opt/medalflow/requirements/lock/dbt\.lock\.txt"
    assert re.search(dbt_build, dockerfile)
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (PROJECT_ROOT / "Makefile").read_text(), re.M).group(1)
    assert f"ARG UV_VERSION={makefile_uv}\n" in dockerfile


def test_the_airflow_services_share_one_environment_block(services):
    shared = services["airflow-scheduler"]["environment"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"] is shared, f"{name} has an environment of its own"
    raw = COMPOSE_FILE.read_text()
    for name in AIRFLOW_SERVICES:
        block = raw.split(f"\n  {name}:\n", 1)[1]
        assert block.lstrip().startswith("<<: *airflow-common"), f"{name} does not merge x-airflow-common"


def test_the_airflow_services_are_the_airflow_3_components_with_celery_as_on_mwaa(services):
    commands = {name: services[name]["command"][: len(command)] for name, command in AIRFLOW_COMPONENTS.items()}
    assert commands == AIRFLOW_COMPONENTS
    assert services["airflow-worker"]["command"][3:] == ["--without-mingle", "--without-gossip"]
    environment = services["airflow-scheduler"]["environment"]
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert environment["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert "@postgres:5432/airflow" in environment["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in AIRFLOW_COMPONENTS:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_the_init_service_migrates_and_sets_the_admin_user_up(services):
    script = services["airflow-init"]["command"][-1]
    assert "airflow db migrate" in script
    assert "admin_passwords.json" in script
    environment = services["airflow-init"]["environment"]
    passwords_file = environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert passwords_file == "/opt/airflow/secrets/admin_passwords.json"
    for name in AIRFLOW_COMPONENTS:
        depends_on = services[name]["depends_on"]
        assert depends_on["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["minio-init"]["condition"] == "service_completed_successfully", name


def test_the_init_service_hands_the_volumes_to_airflow_uid_and_drops_root(services):
    """Named volumes start root-owned: the init service chowns them, as Airflow's compose file does, then runs as
    AIRFLOW_UID; dbt's target/ is a volume over the mounted project, so nothing is written into the checkout."""
    init = services["airflow-init"]
    script = init["command"][-1]
    assert init["user"] == "0:0"
    as_root = script.split("setpriv", 1)[0]
    assert 'chown -R "${AIRFLOW_UID:-50000}:0"' in as_root, "the init service does not chown the volumes"
    for target in ("/opt/airflow/logs", "/opt/airflow/data", "/opt/airflow/secrets", "/opt/airflow/dbt_project/target"):
        assert target in as_root, target
    assert 'setpriv --reuid="${AIRFLOW_UID:-50000}" --regid=0' in script
    assert script.index("chown") < script.index("setpriv") < script.index("airflow db migrate")
    for name in AIRFLOW_COMPONENTS:
        assert services[name]["user"] == "${AIRFLOW_UID:-50000}:0", name
        assert "dbt-target:/opt/airflow/dbt_project/target" in services[name]["volumes"], name


def test_the_init_service_publishes_dbt_docs_for_the_ui(services):
    script = services["airflow-init"]["command"][-1]
    assert "python -m medalflow.dbt_commands docs generate" in script
    assert "publish_docs(" in script
    assert "docs_uri()" in script
    assert services["airflow-init"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_long_running_containers_reap_orphans_with_an_init_process(services):
    for name, service in services.items():
        if "build" in service:
            assert service.get("init") is True, f"{name}: no init process reaps orphaned task and dbt processes"


def test_the_demo_sources_are_seeded_and_tools_reach_only_the_demo_containers(services):
    airflow_environment = services["airflow-scheduler"]["environment"]
    assert "tools" not in airflow_environment["PYTHONPATH"]
    for name in AIRFLOW_SERVICES:
        assert not any(volume.startswith("./tools") for volume in services[name]["volumes"]), name
    for name in DEMO_SERVICES:
        assert "./tools:/opt/medalflow/tools:ro" in services[name]["volumes"], name
        assert services[name]["environment"]["PYTHONPATH"].endswith(":/opt/medalflow/tools"), name
    erp_seed = services["erp-seed"]["command"]
    assert erp_seed[:3] == ["python", "-m", "medalflow_demo.erp"]
    assert erp_seed[erp_seed.index("--url") + 1].endswith("@postgres:5432/erp")
    erp = json.loads(re.sub(INTERPOLATION, "x", airflow_environment["AIRFLOW_CONN_MEDALFLOW_ERP"]))
    assert (erp["host"], erp["schema"]) == ("postgres", "erp")
    # One demo world for the three sources: payments and shipments refer to the ERP's orders.
    partner_api = services["partner-api"]["command"]
    assert partner_api[partner_api.index("--world-start") + 1] == erp_seed[erp_seed.index("--world-start") + 1]
    assert partner_api[partner_api.index("--world-end") + 1] == erp_seed[erp_seed.index("--end") + 1]
    drops = services["file-drops-seed"]["environment"]
    assert (drops["DEMO_START"], drops["DEMO_END"]) == (erp_seed[erp_seed.index("--start") + 1], erp_seed[-1])
    inbox = services["file-drops-seed"]["environment"]["LAKE_INBOX"]
    assert inbox == airflow_environment["MEDALFLOW_LAKE_URI"] + "/inbox"
    assert "write_file_drops" in services["file-drops-seed"]["command"][-1]


def test_the_runtime_lock_has_no_test_tools_and_agrees_with_the_full_lock():
    def pins(path: Path) -> dict[str, str]:
        found = re.findall(r"^([A-Za-z0-9_.\[\],-]+)==(\S+)", path.read_text(), re.M)
        return {re.sub(r"\[.*\]", "", name).lower(): version for name, version in found}

    runtime = pins(PROJECT_ROOT / "requirements" / "lock" / "airflow-runtime.lock.txt")
    full = pins(PROJECT_ROOT / "requirements" / "lock" / "airflow.lock.txt")
    assert "apache-airflow" in runtime
    assert "apache-airflow-providers-celery" in runtime
    assert not TEST_TOOLS & set(runtime), f"the runtime lock carries test tools: {sorted(TEST_TOOLS & set(runtime))}"
    differing = {name: (version, full[name]) for name, version in runtime.items() if full.get(name, version) != version}
    assert not differing, f"runtime and full lock disagree (runtime, full): {differing}"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "-o requirements/lock/airflow-runtime.lock.txt" in makefile, "`make lock` does not rebuild the runtime lock"


def test_the_dockerfile_needs_no_buildkit_front_end_and_takes_an_extra_ca():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I), "a syntax line makes BuildKit fetch an image"
    assert "COPY docker/extra-ca-certificates/ /usr/local/share/ca-certificates/" in dockerfile
    assert "update-ca-certificates" in dockerfile
    assert dockerignore_allows("docker/extra-ca-certificates/proxy-ca.crt")
    assert not dockerignore_allows("docker/extra-ca-certificates/proxy-ca.key")


def test_the_init_service_creates_the_pool_the_medallion_takes_on_duckdb(services, monkeypatch):
    """A task whose pool does not exist is never scheduled: the duckdb target's writer pool must exist."""
    from medalflow.medallion import dbt_pool
    from medalflow.settings import get_settings

    environment = services["airflow-init"]["environment"]
    monkeypatch.setenv("MEDALFLOW_DBT_TARGET", environment["MEDALFLOW_DBT_TARGET"])
    monkeypatch.delenv("MEDALFLOW_DUCKDB_POOL", raising=False)
    pool = dbt_pool(get_settings())
    assert pool
    assert re.search(rf"^\s*airflow pools set {pool} 1 ", services["airflow-init"]["command"][-1], re.M)


def test_the_project_folders_are_mounted_where_the_settings_point(services):
    environment = services["airflow-scheduler"]["environment"]
    expected = {
        "./dags": environment["AIRFLOW__CORE__DAGS_FOLDER"],
        "./plugins": environment["AIRFLOW__CORE__PLUGINS_FOLDER"],
        "./dbt_project": environment["MEDALFLOW_DBT_PROJECT_DIR"],
        "./profiles": environment["MEDALFLOW_DBT_PROFILES_DIR"],
    }
    for name in AIRFLOW_SERVICES:
        mounts = dict(volume.split(":")[:2] for volume in services[name]["volumes"])
        for source, target in expected.items():
            assert mounts.get(source) == target, f"{name} does not mount {source} at {target}"
            assert (PROJECT_ROOT / source).is_dir(), source
        assert mounts["airflow-secrets"] == "/opt/airflow/secrets"
    assert environment["MEDALFLOW_DBT_EXECUTABLE"] == "/opt/venv/dbt/bin/dbt"
    assert environment["PYTHONPATH"].split(":")[0] == expected["./dags"]


def test_the_services_reach_each_other_by_service_name(services):
    environment = services["airflow-scheduler"]["environment"]
    assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/"
    assert "@postgres:5432/airflow" in environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert environment["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    erp = json.loads(environment["AIRFLOW_CONN_MEDALFLOW_ERP"])
    assert (erp["host"], erp["schema"]) == ("postgres", "erp")
    partner = json.loads(environment["AIRFLOW_CONN_MEDALFLOW_PARTNER_API"])
    assert (partner["host"], partner["port"]) == ("partner-api", 8085)
    command = services["partner-api"]["command"]
    assert command[:3] == ["python", "-m", "medalflow_demo.partner_api"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from the other containers
    assert command[command.index("--port") + 1] == "8085"
    assert command[command.index("--username") + 1] == partner["login"]
    assert command[command.index("--password") + 1] == partner["password"]


def test_postgres_holds_the_metadata_and_the_erp(compose, services):
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_DB"] == "airflow"
    (config,) = postgres["configs"]
    assert config["target"].startswith("/docker-entrypoint-initdb.d/")
    assert compose["configs"][config["source"]]["content"].strip() == "CREATE DATABASE erp;"


def test_long_running_services_have_healthchecks(services):
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("restart") == "no", f"{name} runs once and must not restart"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name


# Settings whose names look like secrets but are not: a flag allowing the public demo PII key.
NOT_SECRETS = {"MEDALFLOW_PII_ALLOW_DEMO_KEY"}


def secret_like(name: str) -> bool:
    if name in NOT_SECRETS:
        return False
    return bool(SECRET_NAME.search(name)) and not name.endswith("_CMD") and not name.endswith("_FILE")


def test_no_secret_is_written_in_the_compose_file(services):
    raw = COMPOSE_FILE.read_text()
    for name, service in services.items():
        environment = service.get("environment", {})
        for variable, value in environment.items():
            if secret_like(variable):
                assert INTERPOLATION.fullmatch(str(value)), f"{name}: {variable} must come from .env, not be written"
            if variable.endswith("_CMD"):
                assert value.startswith("cat /opt/airflow/secrets/"), f"{name}: {variable} reads a generated file"
            if variable.startswith("AIRFLOW_CONN_") and "password" in value:
                password = json.loads(re.sub(INTERPOLATION, "interpolated", value))["password"]
                assert password == "interpolated", f"{name}: {variable} has a literal password"
        command = service.get("command", [])
        for option, value in pairwise(command if isinstance(command, list) else []):
            if option.startswith("-") and SECRET_NAME.search(option):
                assert INTERPOLATION.fullmatch(value), f"{name}: the value of {option} must come from .env"
    # A secret variable never falls back to a default written here (${VAR:-default}).
    for variable, kind, default in INTERPOLATION.findall(raw):
        if secret_like(variable):
            assert kind == "?", f"${{{variable}}} must be required (:?) and come from .env, not default to {default!r}"
    assert not re.search(r"[A-Za-z0-9_-]{43}=", raw), "something shaped like a Fernet key is written in the file"
    assert "FERNET_KEY:" not in raw.replace("FERNET_KEY_CMD:", "")


def test_every_setting_read_from_env_is_documented():
    documented = (PROJECT_ROOT / "docs" / "compose.md").read_text()
    variables = {variable for variable, _, _ in INTERPOLATION.findall(COMPOSE_FILE.read_text())}
    assert variables
    missing = sorted(variable for variable in variables if f"`{variable}`" not in documented)
    assert not missing, f"docs/compose.md does not describe {missing}"


# --- the demo flow and the start-up -----------------------------------------------------------------------------------


def test_the_extraction_dags_are_scheduled_for_the_seeded_days(services):
    """Unpausing an extraction runs the days the seeding loaded, and no other (dags/medalflow/dag_defaults.py)."""
    environment = services["airflow-scheduler"]["environment"]
    erp_seed = services["erp-seed"]["command"]
    seeded = (erp_seed[erp_seed.index("--start") + 1], erp_seed[erp_seed.index("--end") + 1])
    window = (environment["MEDALFLOW_EXTRACTION_WINDOW_START"], environment["MEDALFLOW_EXTRACTION_WINDOW_END"])
    assert window == seeded
    drops = services["file-drops-seed"]["environment"]
    assert (drops["DEMO_START"], drops["DEMO_END"]) == window


def test_health_is_seen_within_seconds_and_the_worker_ping_is_throttled(services, compose):
    for name, service in services.items():
        if name not in ONE_SHOT_SERVICES:
            interval = service["healthcheck"]["interval"]
            assert int(interval.removesuffix("s")) <= 5, (
                f"{name}: `up --wait` would see it healthy up to {interval} late"
            )
    worker_check = services["airflow-worker"]["healthcheck"]["test"]
    assert worker_check[0] == "CMD-SHELL"
    script = worker_check[1]
    assert "inspect ping" in script
    assert "-mmin -1" in script
    # The stamp is written only when the ping answered.
    assert re.search(r"inspect ping [^\n]*\\\n\s*&& touch", script), script


def test_the_init_service_builds_dbt_docs_beside_the_migration_and_fails_when_dbt_does(services):
    script = services["airflow-init"]["command"][-1]
    docs = script.index("python -m medalflow.dbt_commands docs generate")
    assert docs < script.index("airflow db migrate"), "dbt waits for the migration"
    assert re.search(r"\) > \S+ 2>&1 &\n\s*dbt_docs=\$\$!", script), "dbt's job does not run in the background"
    assert script.index("airflow pools set") < script.index('wait "$$dbt_docs"'), "init ends before dbt has"
    assert "exit 1" in script.split('wait "$$dbt_docs"', 1)[1]


# --- metrics: Airflow's StatsD -> the StatsD exporter -> Prometheus ---------------------------------------------------


def statsd_exporter_standin():
    loader = importlib.machinery.SourceFileLoader("statsd_exporter_standin", str(STATSD_EXPORTER_STANDIN))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exporter():
    standin = statsd_exporter_standin()
    entries = yaml.safe_load(STATSD_MAPPINGS.read_text())["mappings"]
    return standin.Exporter([standin.Rule(number, entry) for number, entry in enumerate(entries, 1)])


def test_airflow_sends_statsd_to_the_exporter_that_prometheus_scrapes(services):
    environment = services["airflow-scheduler"]["environment"]
    assert environment["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert environment["AIRFLOW__METRICS__STATSD_PREFIX"] == "airflow"
    exporter_service = services[environment["AIRFLOW__METRICS__STATSD_HOST"]]
    assert exporter_service["image"].startswith("prom/statsd-exporter:")
    command = exporter_service["command"]
    assert f"--statsd.listen-udp=:{environment['AIRFLOW__METRICS__STATSD_PORT']}" in command
    mount = next(volume for volume in exporter_service["volumes"] if volume.startswith("./docker/statsd-exporter/"))
    source, target, mode = mount.split(":")
    assert (PROJECT_ROOT / source).resolve() == STATSD_MAPPINGS
    assert f"--statsd.mapping-config={target}" in command
    assert mode == "ro"
    # Airflow resolves the StatsD host when a process starts: every component starts after the exporter.
    for name in AIRFLOW_COMPONENTS:
        assert services[name]["depends_on"]["statsd-exporter"]["condition"] == "service_healthy", name
    assert "statsd-exporter" in services["airflow-init"]["depends_on"]

    web_port = next(option.rsplit(":", 1)[1] for option in command if option.startswith("--web.listen-address="))
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert "./docker/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scraped = {
        target
        for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert f"statsd-exporter:{web_port}" in scraped
    assert prometheus["ports"] == ["127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"]


def test_the_image_has_the_statsd_client_at_mwaas_version():
    """Without the `statsd` package Airflow logs an error and sends nothing; MWAA's image has the constraints' one."""
    constraints = (PROJECT_ROOT / "requirements" / "constraints" / "airflow_constraints.txt").read_text()
    mwaa_version = re.search(r"^statsd==(\S+)$", constraints, re.M).group(1)
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert f"ARG STATSD_VERSION={mwaa_version}\n" in dockerfile
    assert '"statsd==${STATSD_VERSION}"' in dockerfile.split(" AS demo", 1)[0]


@pytest.mark.parametrize(
    ("statsd", "kind", "prometheus", "labels"),
    [
        ("airflow.scheduler_heartbeat", "counter", "airflow_scheduler_heartbeat_total", {}),
        ("airflow.dagrun.duration.success.medallion", "timer", "airflow_dagrun_duration_seconds",
         {"dag_id": "medallion", "state": "success"}),
        ("airflow.dagrun.schedule_delay.extract_erp", "timer", "airflow_dagrun_schedule_delay_seconds",
         {"dag_id": "extract_erp"}),
        ("airflow.dag.medallion.silver__orders_run.duration", "timer", "airflow_task_duration_seconds",
         {"dag_id": "medallion", "task_id": "silver__orders_run"}),
        ("airflow.ti.finish.extract_erp.extract_orders.success", "counter", "airflow_ti_finish_total",
         {"dag_id": "extract_erp", "task_id": "extract_orders", "state": "success"}),
        ("airflow.ti.queued.default.medallion.dbt_producer", "gauge", "airflow_task_instances",
         {"state": "queued", "queue": "default", "dag_id": "medallion", "task_id": "dbt_producer"}),
        ("airflow.pool.open_slots.duckdb_writer", "gauge", "airflow_pool_open_slots", {"pool": "duckdb_writer"}),
        ("airflow.operator_failures_PythonOperator", "counter", "airflow_operator_failures_total",
         {"operator": "PythonOperator"}),
        ("airflow.executor.queued_tasks.CeleryExecutor", "gauge", "airflow_executor_queued_tasks",
         {"executor": "CeleryExecutor"}),
        ("airflow.task_instance_created_EmptyOperator", "counter", "airflow_task_instance_created_total",
         {"operator": "EmptyOperator"}),
        ("airflow.scheduler.tasks.executable", "gauge", "airflow_scheduler_tasks_executable", {}),
    ],
)  # fmt: skip
def test_airflow_metric_names_map_to_readable_prometheus_names_with_labels(exporter, statsd, kind, prometheus, labels):
    name, mapped_labels, _ = exporter.map(statsd, kind)
    assert (name, mapped_labels) == (prometheus, labels)


def test_every_airflow_metric_with_ids_in_its_name_gets_labels_and_its_plain_twin_is_dropped(exporter):
    """Airflow's registry of metrics (legacy names with {dag_id}, {task_id}... and the same metric without them):
    the DAG, task, run and pool metrics come out labelled, and their twin without ids is dropped."""
    from airflow._shared.observability.metrics import metrics_registry

    registry = yaml.safe_load((Path(metrics_registry.__file__).parent / "metrics_template.yaml").read_text())
    covered = ("dag_id", "task_id", "pool_name", "operator_name")
    sample = {"dag_id": "some_dag", "task_id": "group__some_task", "state": "success", "queue": "default",
              "pool_name": "default_pool", "operator_name": "PythonOperator", "bundle_name": "dags-folder",
              "file_name": "medallion__py", "hostname": "host", "job_id": "1", "return_code": "0"}  # fmt: skip
    checked = []
    for metric in registry["metrics"]:
        legacy, variables = metric.get("legacy_name", "-"), metric.get("name_variables") or []
        # Not mapped: the edge executor's (not used), the OpenLineage provider's and the pre-Airflow-3 task job's.
        skipped = legacy.startswith(("edge_worker.", "ol.", "local_task_job."))
        if legacy == "-" or not set(variables) & set(covered) or skipped:
            continue
        kind = {"counter": "counter", "gauge": "gauge", "timer": "timer"}[metric["type"]]
        name, labels, _ = exporter.map("airflow." + legacy.format(**sample), kind)
        assert labels, f"{legacy}: no labels ({name})"
        carried = {sample[variable] for variable in variables if variable in covered}
        assert carried <= set(labels.values()), f"{legacy}: {labels} lacks {carried}"
        assert exporter.map("airflow." + metric["name"], kind) is None, f"{metric['name']}: its twin is not dropped"
        checked.append(legacy)
    assert len(checked) >= 15, checked


def test_one_prometheus_name_has_one_type_and_one_set_of_labels(exporter):
    """The exporter drops samples whose name it has seen with other labels: rules sharing a name must agree."""
    seen = {}
    for rule in exporter.rules:
        if rule.action == "drop" or "$" in rule.name:
            continue
        labels = frozenset(rule.labels)
        assert seen.setdefault(rule.name, labels) == labels, rule.name
