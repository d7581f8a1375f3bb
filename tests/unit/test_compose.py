"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The Compose Specification's JSON schema catches what Compose itself would reject; the other tests catch what a
schema cannot: images and build inputs that exist, the Airflow 3 components sharing one configuration, the project
folders mounted where the settings point, healthchecks, and no secret written in the file.
"""

from __future__ import annotations

import copy
import fnmatch
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
    commands = {name: services[name]["command"] for name in AIRFLOW_COMPONENTS}
    assert commands == AIRFLOW_COMPONENTS
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
