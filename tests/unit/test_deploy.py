"""deploy.sh's logic (tools/medalflow_deploy/) and the MWAA startup script, without a deploy run.

S3 and Secrets Manager run in-process on moto; MWAA calls go through botocore's Stubber, which checks every request
against MWAA's API model. The startup script is sourced by bash the way MWAA's wrapper sources it, with stand-ins for
uv (tests/integration/test_deploy_script.py runs whole deployments).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import zipfile
from io import BytesIO
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from medalflow_deploy import artifacts, checks, config, connections, deploy, history, mwaa, s3sync
from medalflow_deploy.artifacts import Artifact, DeployPlan
from medalflow_deploy.config import DeployConfig, DeployError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "mwaa-source-test"
ACCOUNT = "123456789012"


def make_config(**changes) -> DeployConfig:
    values = {
        "environment": "dev",
        "mwaa_environment_name": "medalflow-dev",
        "account_id": ACCOUNT,
        "region": REGION,
        "bucket": BUCKET,
        "prefix": "medalflow/dev",
        "connections_prefix": "medalflow/dev/connections",
        "variables_prefix": "medalflow/dev/variables",
        "poll_seconds": 0.001,
        "timeout_seconds": 1.0,
        "runtime_settings": {
            "MEDALFLOW_ENVIRONMENT": "dev",
            "MEDALFLOW_DBT_TARGET": "athena",
            "MEDALFLOW_LAKE_URI": "s3://lake-dev/lake",
        },
    }
    return DeployConfig(**{**values, **changes})


VALID_ENV_FILE = """\
# comment
MEDALFLOW_ENVIRONMENT=dev
MWAA_ENVIRONMENT_NAME=medalflow-dev
AWS_ACCOUNT_ID=123456789012
AWS_REGION=us-east-1
MWAA_BUCKET=mwaa-source-test
MWAA_PREFIX=/medalflow/dev/
SECRETS_CONNECTIONS_PREFIX=medalflow/dev/connections
SECRETS_VARIABLES_PREFIX="medalflow/dev/variables"
export MEDALFLOW_DBT_TARGET=athena
MEDALFLOW_LAKE_URI='s3://lake-dev/lake'
MEDALFLOW_DBT_THREADS=8
"""


def env_file(tmp_path: Path, text: str = VALID_ENV_FILE, name: str = "dev.env") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- settings files ----------------------------------------------------------------------------------------------


def test_parse_env_file_reads_comments_quotes_and_export():
    settings = config.parse_env_file(VALID_ENV_FILE, "dev.env")
    assert settings["SECRETS_VARIABLES_PREFIX"] == "medalflow/dev/variables"
    assert settings["MEDALFLOW_DBT_TARGET"] == "athena"
    assert settings["MEDALFLOW_LAKE_URI"] == "s3://lake-dev/lake"
    assert len(settings) == 11


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MWAA_BUCKET=a\nthis is not a setting hunter2\n", "dev.env:2: expected NAME=value"),
        ("lower_case=hunter2\n", "dev.env:1: expected NAME=value"),
        ("MWAA_BUCKET=a\nMWAA_BUCKET=hunter2\n", "dev.env:2: MWAA_BUCKET is set twice"),
    ],
)
def test_parse_env_file_rejects_malformed_lines_without_quoting_them(text, message):
    with pytest.raises(DeployError, match=message) as raised:
        config.parse_env_file(text, "dev.env")
    assert "hunter2" not in str(raised.value)


def test_load_config(tmp_path):
    loaded = config.load_config("dev", env_file(tmp_path))
    assert loaded.prefix == "medalflow/dev"
    assert loaded.account_id == ACCOUNT
    assert loaded.dags_path == "medalflow/dev/dags"
    assert loaded.key("startup.sh") == "medalflow/dev/startup.sh"
    assert (loaded.poll_seconds, loaded.timeout_seconds, loaded.startup_budget_seconds) == (30, 3600, 180)
    assert dict(loaded.runtime_settings) == {
        "MEDALFLOW_DBT_TARGET": "athena",
        "MEDALFLOW_DBT_THREADS": "8",
        "MEDALFLOW_ENVIRONMENT": "dev",
        "MEDALFLOW_LAKE_URI": "s3://lake-dev/lake",
    }
    options = loaded.airflow_configuration_options()
    assert options["secrets.backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    assert json.loads(options["secrets.backend_kwargs"]) == {
        "connections_prefix": "medalflow/dev/connections",
        "connections_lookup_pattern": "^medalflow_",
        "variables_prefix": "medalflow/dev/variables",
        "variables_lookup_pattern": "^medalflow_",
    }


def test_the_backend_kwargs_are_what_the_providers_backend_accepts():
    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend

    backend = SecretsManagerBackend(**make_config().secrets_backend_kwargs())
    assert backend.connections_prefix == "medalflow/dev/connections"
    with mock_aws():  # a conn_id outside the pattern is never looked up: no call, no secret needed
        assert backend.get_conn_value("aws_default") is None


def test_an_empty_prefix_puts_everything_at_the_bucket_root():
    at_root = make_config(prefix="")
    assert at_root.dags_path == "dags"
    assert at_root.key("requirements.txt") == "requirements.txt"


@pytest.mark.parametrize(
    ("remove", "add", "named"),
    [
        ("MWAA_BUCKET", "", "missing settings MWAA_BUCKET"),
        ("AWS_ACCOUNT_ID", "", "missing settings AWS_ACCOUNT_ID"),
        ("MEDALFLOW_ENVIRONMENT", "", "missing settings MEDALFLOW_ENVIRONMENT"),
        ("MEDALFLOW_LAKE_URI", "", "missing settings MEDALFLOW_LAKE_URI"),
        (None, "MWAA_BUKET=typo\n", "unknown settings MWAA_BUKET"),
        (None, "MEDALFLOW_DBT_PROJECT_DIR=/x\n", "MEDALFLOW_DBT_PROJECT_DIR cannot be set here"),
        (None, "MWAA_UPDATE_POLL_SECONDS=soon\n", "MWAA_UPDATE_POLL_SECONDS must be a number of seconds"),
        (None, "STARTUP_DBT_BUILD_BUDGET_SECONDS=290\n", "STARTUP_DBT_BUILD_BUDGET_SECONDS is above 240"),
    ],
)
def test_load_config_errors_name_the_setting(tmp_path, remove, add, named):
    lines = [line for line in VALID_ENV_FILE.splitlines() if not remove or not line.startswith(remove + "=")]
    with pytest.raises(DeployError, match=named):
        config.load_config("dev", env_file(tmp_path, "\n".join(lines) + "\n" + add))


def test_an_account_id_is_twelve_digits(tmp_path):
    text = VALID_ENV_FILE.replace("AWS_ACCOUNT_ID=123456789012", "AWS_ACCOUNT_ID=1234")
    with pytest.raises(DeployError, match="AWS_ACCOUNT_ID must be the 12 digits"):
        config.load_config("dev", env_file(tmp_path, text))


def test_settings_for_one_environment_are_refused_for_another(tmp_path):
    with pytest.raises(DeployError, match=r"dev.env:2: MEDALFLOW_ENVIRONMENT is 'dev', not 'prod'"):
        config.load_config("prod", env_file(tmp_path))


CANARY = "Hunter2Canary9Xq"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"MEDALFLOW_SNOWFLAKE_PASSWORD={CANARY}", "its name says it holds a credential"),
        (f"MEDALFLOW_API_TOKEN={CANARY}", "its name says it holds a credential"),
        (f"MEDALFLOW_ERP_DSN=postgresql://reader:{CANARY}@erp:5432/erp", "its name says it holds a credential"),
        (f"MEDALFLOW_ERP_URL=postgresql://reader:{CANARY}@erp:5432/erp", "a URL with user:password@"),
        ("MEDALFLOW_LAKE_KEY_ID=AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("MEDALFLOW_CERT=-----BEGIN RSA PRIVATE KEY-----MIIEow", "a private key"),
        ("MEDALFLOW_PARTNER=ghp1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uV2", "a token or secret key"),
    ],
)
def test_a_credential_in_the_settings_is_refused_without_echoing_it(tmp_path, line, reason):
    with pytest.raises(DeployError) as raised:
        config.load_config("dev", env_file(tmp_path, VALID_ENV_FILE + line + "\n"))
    message = str(raised.value)
    name, value = line.split("=", 1)
    assert f"dev.env:13: {name} looks like a credential (" in message
    assert reason in message
    assert "./deploy.sh secrets dev" in message
    assert value not in message
    assert CANARY not in message


@pytest.mark.parametrize(
    "line",
    [
        "MEDALFLOW_LAKE_URI_2=s3://my-lake-bucket-with-a-long-name-0123456789/lake/raw",
        "MEDALFLOW_SNS_TOPIC_ARN=arn:aws:sns:eu-west-1:123456789012:medalflow-alerts-production-topic",
        "MEDALFLOW_ATHENA_S3_DATA_DIR=s3://lake/warehouse/",
    ],
)
def test_ordinary_settings_are_not_taken_for_credentials(tmp_path, line):
    assert config.load_config("dev", env_file(tmp_path, VALID_ENV_FILE + line + "\n"))


def test_load_config_rejects_unknown_environments_and_missing_files(tmp_path):
    with pytest.raises(DeployError, match="unknown environment 'qa'"):
        config.load_config("qa", tmp_path / "qa.env")
    with pytest.raises(DeployError, match="no deployment settings for hom"):
        config.load_config("hom", tmp_path / "hom.env")


@pytest.mark.parametrize("environment", config.ENVIRONMENTS)
def test_committed_settings_are_complete_but_for_their_placeholders(tmp_path, environment):
    committed = PROJECT_ROOT / "deploy" / f"{environment}.env"
    with pytest.raises(DeployError) as raised:
        config.load_config(environment, committed)
    assert "placeholders (REPLACE_ME) still in" in str(raised.value)
    assert "AWS_ACCOUNT_ID" in str(raised.value)
    assert "missing" not in str(raised.value)
    assert "unknown" not in str(raised.value)

    filled = committed.read_text().replace("REPLACE_ME-aws-region", "eu-west-1")
    filled = filled.replace("REPLACE_ME-dev-account-id", "111111111111").replace(
        "REPLACE_ME-hom-and-prod-account-id", "222222222222"
    )
    loaded = config.load_config(environment, env_file(tmp_path, filled.replace("REPLACE_ME-", ""), "x.env"))
    assert loaded.mwaa_environment_name == f"medalflow-{environment}-airflow"  # infra/mwaa.yaml's name
    assert loaded.connections_prefix == f"medalflow/{environment}/connections"
    assert loaded.runtime_settings["MEDALFLOW_ENVIRONMENT"] == environment
    assert set(config.REQUIRED_RUNTIME_SETTINGS) <= set(loaded.runtime_settings)
    # DEV in an account of its own, HOM and PROD in another.
    assert loaded.account_id == ("111111111111" if environment == "dev" else "222222222222")


# --- what ships: the git-tracked runtime ---------------------------------------------------------------------------


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def git(root: Path, *arguments: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "-C", str(root), *identity, *arguments], check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git checkout with tracked, untracked, ignored and deleted files in each shipped folder and beyond."""
    for name in (
        "dags/medallion.py",
        "dags/medalflow/__init__.py",
        "dags/config/sources/erp.yml",
        "dags/deleted_dag.py",
        "dbt_project/dbt_project.yml",
        "dbt_project/models/bronze/bronze_orders.sql",
        "profiles/profiles.yml",
        "plugins/medalflow_dbt_docs.py",
        "plugins/.gitkeep",
        "tools/medalflow_deploy/deploy.py",
        "tests/unit/test_x.py",
    ):
        write(tmp_path / name)
    write(tmp_path / ".gitignore", ".env\n__pycache__/\ndbt_project/target/\n")
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "--quiet", "-m", "init")
    (tmp_path / "dags" / "deleted_dag.py").unlink()
    write(tmp_path / "dags" / ".env", "AIRFLOW_CONN_X=postgres://u:secret@h/db")  # ignored
    write(tmp_path / "dags" / "scratch.py")  # untracked
    write(tmp_path / "dags" / "medalflow" / "__pycache__" / "settings.cpython-312.pyc")
    write(tmp_path / "dbt_project" / "target" / "manifest.json", '{"local": true}')
    return tmp_path


def test_only_tracked_runtime_files_ship(checkout):
    assert artifacts.tracked_files(checkout) == [
        "dags/config/sources/erp.yml",
        "dags/medalflow/__init__.py",
        "dags/medallion.py",
        "dbt_project/dbt_project.yml",
        "dbt_project/models/bronze/bronze_orders.sql",
        "plugins/medalflow_dbt_docs.py",
        "profiles/profiles.yml",
    ]


def test_the_dag_folder_holds_dags_the_dbt_project_with_the_given_manifest_and_profiles(checkout):
    files = artifacts.tracked_files(checkout)
    shipped = {item.key: item.body for item in artifacts.dags_artifacts(checkout, files, b'{"built": "athena"}')}
    assert sorted(shipped) == [
        "dags/config/sources/erp.yml",
        "dags/dbt_project/dbt_project.yml",
        "dags/dbt_project/models/bronze/bronze_orders.sql",
        "dags/dbt_project/target/manifest.json",
        "dags/medalflow/__init__.py",
        "dags/medallion.py",
        "dags/profiles/profiles.yml",
    ]
    assert shipped["dags/dbt_project/target/manifest.json"] == b'{"built": "athena"}'  # not the local one


def test_dbt_and_airflow_parse_without_the_laptops_settings_or_credentials(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    monkeypatch.setenv("MEDALFLOW_DUCKDB_PATH", "/laptop/warehouse.duckdb")
    environment = artifacts.dbt_environment(PROJECT_ROOT, make_config())
    assert "AWS_SECRET_ACCESS_KEY" not in environment
    assert "MEDALFLOW_DUCKDB_PATH" not in environment
    assert environment["MEDALFLOW_DBT_TARGET"] == "athena"
    assert environment["MEDALFLOW_DBT_PROJECT_DIR"] == str(PROJECT_ROOT / "dbt_project")


def test_outside_a_git_checkout_nothing_ships(tmp_path):
    with pytest.raises(DeployError, match="not a git checkout"):
        artifacts.tracked_files(tmp_path)


def test_two_files_on_one_key_are_refused(tmp_path):
    write(tmp_path / "dags" / "dbt_project" / "dbt_project.yml")
    write(tmp_path / "dbt_project" / "dbt_project.yml")
    files = ["dags/dbt_project/dbt_project.yml", "dbt_project/dbt_project.yml"]
    with pytest.raises(DeployError, match=r"same key: dags/dbt_project/dbt_project\.yml"):
        artifacts.dags_artifacts(tmp_path, files, b"{}")


def test_the_plan_of_this_repository():
    plan = artifacts.build_plan(PROJECT_ROOT, make_config(), manifest=b'{"metadata": {}}')
    keys = {item.key for item in plan.dags}
    tracked = artifacts.tracked_files(PROJECT_ROOT, ["dags"])
    tracked_dag_files = {name for name in tracked if name.count("/") == 1 and name.endswith(".py")}
    assert tracked_dag_files
    assert tracked_dag_files <= keys
    assert {"dags/medalflow/settings.py", "dags/profiles/profiles.yml", "dags/dbt_project/dbt_project.yml"} <= keys
    assert [key for key in keys if "/target/" in key] == ["dags/dbt_project/target/manifest.json"]
    assert not [key for key in keys if "__pycache__" in key or key.endswith(".pyc") or key.startswith("dags/tools")]
    assert plan.requirements.body == (PROJECT_ROOT / "requirements" / "requirements.txt").read_bytes()
    assert plan.startup_script.key == "startup.sh"
    assert plan.plugins is not None
    assert len(plan.dags_digest()) == 64


def test_zip_plugins_ships_nothing_when_there_are_none():
    assert artifacts.zip_plugins([]) is None


def test_zip_plugins_is_reproducible():
    files = [Artifact("medalflow_plugins/hooks.py", b"class Hook: ...\n"), Artifact("a.py", b"")]
    first = artifacts.zip_plugins(files)
    assert artifacts.zip_plugins(list(reversed(files))) == first
    with zipfile.ZipFile(BytesIO(first)) as archive:
        assert archive.namelist() == ["a.py", "medalflow_plugins/hooks.py"]
        assert archive.read("medalflow_plugins/hooks.py") == b"class Hook: ...\n"
    assert artifacts.zip_plugins([Artifact("a.py", b"changed")]) != first


def test_uv_version_comes_from_the_makefile():
    assert artifacts.uv_version(PROJECT_ROOT) in (PROJECT_ROOT / "Makefile").read_text()


# --- checks -------------------------------------------------------------------------------------------------------


def plan_with(manifest: dict | None = None, startup: bytes | None = None) -> DeployPlan:
    plan = artifacts.build_plan(PROJECT_ROOT, make_config(), manifest=json.dumps(manifest or {"metadata": {}}).encode())
    if startup is not None:
        plan = DeployPlan(plan.dags, plan.requirements, Artifact("startup.sh", startup), plan.plugins)
    return plan


def test_the_rendered_startup_script_passes_its_checks():
    checks.check_startup_script(plan_with(), make_config())


def test_a_startup_script_that_is_not_bash_is_refused():
    with pytest.raises(DeployError, match=r"not valid bash \(bash -n\)"):
        checks.check_startup_script(plan_with(startup=b"if then fi (\n"), make_config())


def test_a_startup_script_without_a_budget_is_refused():
    with pytest.raises(DeployError, match="no dbt build budget"):
        checks.check_startup_script(plan_with(startup=b"echo hello\n"), make_config())


def test_the_manifest_must_be_built_for_the_targets_adapter():
    checks.check_manifest_target(plan_with({"metadata": {"adapter_type": "athena"}}), PROJECT_ROOT, make_config())
    with pytest.raises(DeployError, match="built for duckdb, but dev runs athena"):
        checks.check_manifest_target(plan_with({"metadata": {"adapter_type": "duckdb"}}), PROJECT_ROOT, make_config())
    unknown = make_config(runtime_settings={"MEDALFLOW_DBT_TARGET": "bigquery"})
    with pytest.raises(DeployError, match="MEDALFLOW_DBT_TARGET=bigquery is not a target of profiles"):
        checks.check_manifest_target(plan_with(), PROJECT_ROOT, unknown)


def test_requirements_resolve_under_mwaas_constraints_from_uvs_cache():
    log: list[str] = []
    checks.check_requirements(PROJECT_ROOT, plan_with(), log.append)
    assert log == ["  requirements.txt resolves under MWAA's constraints (from uv's cache)"]


def test_requirements_that_need_an_unreachable_index_say_so(tmp_path, monkeypatch):
    # An empty cache and an index nobody listens on: what a laptop without network access and a cold cache sees.
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/simple")
    with pytest.raises(DeployError, match="PyPI cannot be reached from here"):
        checks.check_requirements(PROJECT_ROOT, plan_with(), lambda _: None)


def test_requirements_pointing_at_other_constraints_are_refused():
    plan = plan_with()
    other = plan.requirements.body.replace(b"constraints-3.3.1", b"constraints-3.0.0")
    plan = DeployPlan(plan.dags, Artifact("requirements.txt", other), plan.startup_script, plan.plugins)
    with pytest.raises(DeployError, match="is a copy of another file"):
        checks.check_requirements(PROJECT_ROOT, plan, lambda _: None)


def test_the_callers_account_must_be_the_environments():
    with mock_aws():
        sts = boto3.client("sts", region_name=REGION)
        assert checks.check_account(sts, make_config()).startswith("arn:aws:")
        with pytest.raises(DeployError, match="for account 123456789012, but dev lives in 999999999999"):
            checks.check_account(sts, make_config(account_id="999999999999"))


# --- the startup script ------------------------------------------------------------------------------------------


def rendered_startup_script(tmp_path: Path, budget: int = 180, **runtime) -> Path:
    settings = {"MEDALFLOW_DBT_TARGET": "athena", "MEDALFLOW_LAKE_URI": "s3://lake dev/it's", **runtime}
    plan = artifacts.build_plan(
        PROJECT_ROOT, make_config(runtime_settings=settings, startup_budget_seconds=budget), manifest=b"{}"
    )
    path = tmp_path / "startup.sh"
    path.write_bytes(plan.startup_script.body)
    return path


def test_the_template_has_the_render_markers():
    template = (PROJECT_ROOT / "deploy" / "mwaa_startup.sh").read_text()
    assert template.count(artifacts.RENDER_BEGIN + "\n") == 1
    assert template.count(artifacts.RENDER_END + "\n") == 1
    with pytest.raises(DeployError, match="markers"):
        artifacts.render_startup_script("#!/bin/bash\n", make_config(), {}, "0.1.0")


def test_the_startup_script_carries_the_build_script_and_lock_byte_for_byte(tmp_path):
    script = rendered_startup_script(tmp_path)
    out = tmp_path / "inputs"
    out.mkdir()
    block = f"sed -n '/^{artifacts.RENDER_BEGIN}$/,/^{artifacts.RENDER_END}$/p' {script}"
    subprocess.run(["bash", "-c", f'source <({block}) && medalflow_write_dbt_inputs "$1"', "_", out], check=True)
    for name, source in artifacts.DBT_BUILD_INPUTS.items():
        assert (out / name).read_bytes() == (PROJECT_ROOT / source).read_bytes(), name


def test_a_here_document_cannot_be_cut_short():
    with pytest.raises(DeployError, match="would end its here-document early"):
        artifacts.render_startup_script(
            (PROJECT_ROOT / "deploy" / "mwaa_startup.sh").read_text(),
            make_config(),
            {"dbt.lock.txt": "dbt-core==1\nMEDALFLOW_END_OF_DBT_LOCK_TXT\n"},
            "0.1.0",
        )


FAKE_UV = """#!/usr/bin/env bash
# Stands in for uv: records its arguments; `uv venv DIR` makes DIR, `uv pip sync` puts a dbt there (after
# FAKE_UV_SLEEP seconds: a slow PyPI).
echo "$*" >> "$FAKE_UV_LOG"
[ -z "${FAKE_UV_FAIL:-}" ] || exit 1
case "$1" in
  venv) mkdir -p "${@: -1}/bin" ;;
  pip) dbt=$(dirname "$5")/dbt; printf '#!/bin/sh\\necho dbt 1.11\\n' > "$dbt"; chmod +x "$dbt"
       sleep "${FAKE_UV_SLEEP:-0}" ;;
esac
"""


def source_like_mwaa(script: Path, home: Path, component: str, **env) -> tuple[subprocess.CompletedProcess, dict]:
    """Source the script in bash as MWAA's wrapper does, then print the environment the Airflow processes get."""
    fake_bin = home / "fake-bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "uv").write_text(FAKE_UV)
    (fake_bin / "uv").chmod(0o755)
    environment = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "MWAA_AIRFLOW_COMPONENT": component,
        "FAKE_UV_LOG": str(home / "uv.log"),
        **env,
    }
    command = f'source "{script}"; echo "flags=$-"; echo "still running"; env -0 > "{home}/env"'
    completed = subprocess.run(["bash", "-c", command], env=environment, capture_output=True, text=True, check=True)
    exported = dict(item.split("=", 1) for item in (home / "env").read_text().split("\0") if "=" in item)
    return completed, exported


@pytest.fixture
def home(tmp_path) -> Path:
    folder = tmp_path / "airflow"
    folder.mkdir()
    return folder


def test_startup_script_builds_dbt_and_exports_the_settings(tmp_path, home):
    completed, exported = source_like_mwaa(rendered_startup_script(tmp_path), home, "worker")

    assert "still running" in completed.stdout  # sourced: it must not exit the wrapper's shell
    flags = next(line for line in completed.stdout.splitlines() if line.startswith("flags="))
    assert "e" not in flags.removeprefix("flags=")
    assert "u" not in flags.removeprefix("flags=")
    assert exported["MEDALFLOW_DBT_EXECUTABLE"] == f"{home}/dbt_venv/bin/dbt"
    assert exported["MEDALFLOW_DBT_PROJECT_DIR"] == f"{home}/dags/dbt_project"
    assert exported["MEDALFLOW_DBT_PROFILES_DIR"] == f"{home}/dags/profiles"
    assert exported["MEDALFLOW_DBT_STARTUP_MARKER"] == f"{home}/medalflow_dbt_startup_failed.txt"
    assert exported["MEDALFLOW_DBT_TARGET"] == "athena"
    assert exported["MEDALFLOW_LAKE_URI"] == "s3://lake dev/it's"
    assert exported["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "False"
    assert "medalflow_environment" not in exported  # the script's own variables stay out of Airflow's environment
    assert not (home / "medalflow_dbt_startup_failed.txt").exists()

    calls = (home / "uv.log").read_text().splitlines()
    assert calls[0].startswith("venv ")
    assert calls[0].endswith(f"{home}/dbt_venv")
    assert calls[1].startswith(f"pip sync --quiet --python {home}/dbt_venv/bin/python ")
    assert calls[1].endswith("/dbt.lock.txt")
    lock_digest = hashlib.sha256((PROJECT_ROOT / "requirements/lock/dbt.lock.txt").read_bytes()).hexdigest()
    assert (home / "dbt_venv" / ".medalflow-requirements.sha256").read_text().strip() == lock_digest
    assert "dbt virtualenv ready" in completed.stdout


def test_startup_script_is_fast_and_idempotent_when_the_venv_exists(tmp_path, home):
    script = rendered_startup_script(tmp_path)
    source_like_mwaa(script, home, "scheduler")
    started = time.monotonic()
    completed, exported = source_like_mwaa(script, home, "scheduler")
    elapsed = time.monotonic() - started

    assert "is up to date" in completed.stdout
    assert len((home / "uv.log").read_text().splitlines()) == 2  # the first run's two calls, none since
    assert exported["MEDALFLOW_DBT_EXECUTABLE"] == f"{home}/dbt_venv/bin/dbt"
    assert elapsed < 2, f"a second start took {elapsed:.1f} s"


def test_startup_script_skips_dbt_on_the_api_server(tmp_path, home):
    completed, exported = source_like_mwaa(rendered_startup_script(tmp_path), home, "webserver")
    assert "not built here" in completed.stdout
    assert not (home / "uv.log").exists()
    assert not (home / "dbt_venv").exists()
    assert exported["MEDALFLOW_LAKE_URI"] == "s3://lake dev/it's"


def test_a_failed_build_leaves_a_marker_and_airflow_still_gets_its_settings(tmp_path, home):
    completed, exported = source_like_mwaa(rendered_startup_script(tmp_path), home, "worker", FAKE_UV_FAIL="1")
    assert "dbt's virtualenv is not ready" in completed.stderr
    assert "still running" in completed.stdout
    assert exported["MEDALFLOW_DBT_TARGET"] == "athena"
    marker = (home / "medalflow_dbt_startup_failed.txt").read_text()
    assert "on component worker" in marker
    assert "building dbt's virtualenv failed (exit 1)" in marker
    assert not (home / "dbt_venv").exists()  # no half-built venv that would look usable


def test_a_build_slower_than_its_budget_is_stopped_and_the_component_starts(tmp_path, home):
    script = rendered_startup_script(tmp_path, budget=1)
    started = time.monotonic()
    completed, exported = source_like_mwaa(script, home, "worker", FAKE_UV_SLEEP="30")
    assert time.monotonic() - started < 15  # stopped at the budget (plus timeout's grace), not after 30 s
    assert "still running" in completed.stdout
    marker = (home / "medalflow_dbt_startup_failed.txt").read_text()
    assert "took longer than its budget of 1 s (STARTUP_DBT_BUILD_BUDGET_SECONDS) and was stopped" in marker
    assert not (home / "dbt_venv").exists()
    assert exported["MEDALFLOW_LAKE_URI"] == "s3://lake dev/it's"

    # The next start (a restart, a new worker) builds again and clears the marker.
    completed, _ = source_like_mwaa(script, home, "worker")
    assert "dbt virtualenv ready" in completed.stdout
    assert not (home / "medalflow_dbt_startup_failed.txt").exists()


def test_the_unrendered_template_says_so(home):
    completed, _ = source_like_mwaa(PROJECT_ROOT / "deploy" / "mwaa_startup.sh", home, "worker")
    assert "unrendered template" in completed.stderr
    assert not (home / "uv.log").exists()


def test_dbt_tasks_fail_with_the_startup_scripts_reason(tmp_path, home, monkeypatch):
    from medalflow import dbt_commands, medallion
    from medalflow.settings import DbtUnavailableError, get_settings

    source_like_mwaa(rendered_startup_script(tmp_path, budget=1), home, "worker", FAKE_UV_SLEEP="30")
    monkeypatch.setenv("MEDALFLOW_DBT_STARTUP_MARKER", str(home / "medalflow_dbt_startup_failed.txt"))
    monkeypatch.setenv("MEDALFLOW_DBT_EXECUTABLE", str(home / "dbt_venv" / "bin" / "dbt"))
    with pytest.raises(DbtUnavailableError, match="took longer than its budget of 1 s") as raised:
        dbt_commands.run_dbt(["--version"])
    assert "startup log in CloudWatch" in str(raised.value)
    with pytest.raises(DbtUnavailableError, match="could not build its virtualenv"):
        medallion.execution_config(get_settings(), medallion.execution_mode())

    monkeypatch.delenv("MEDALFLOW_DBT_STARTUP_MARKER")  # no marker: a plain missing executable is named
    with pytest.raises(DbtUnavailableError, match=r"dbt executable .*dbt_venv/bin/dbt not found"):
        dbt_commands.run_dbt(["--version"])


# --- S3 ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def keys_in(s3, prefix: str = "") -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed}


def test_sync_dags_uploads_changes_and_deletes_what_the_project_lost(s3):
    settings = make_config()
    s3.put_object(Bucket=BUCKET, Key="medalflow/dev/dags/removed_dag.py", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="medalflow/dev/requirements.txt", Body=b"not under dags/: left alone")
    files = [Artifact("dags/a.py", b"a"), Artifact("dags/pkg/b.py", b"b")]
    log: list[str] = []

    report = s3sync.sync_dags(s3, settings, files, dry_run=False, log=log.append)
    assert report.uploaded == ["medalflow/dev/dags/a.py", "medalflow/dev/dags/pkg/b.py"]
    assert report.deleted == ["medalflow/dev/dags/removed_dag.py"]
    assert keys_in(s3) == {
        "medalflow/dev/dags/a.py": b"a",
        "medalflow/dev/dags/pkg/b.py": b"b",
        "medalflow/dev/requirements.txt": b"not under dags/: left alone",
    }

    again = s3sync.sync_dags(s3, settings, [files[0], Artifact("dags/pkg/b.py", b"b2")], False, log.append)
    assert (again.uploaded, again.deleted, again.unchanged) == (["medalflow/dev/dags/pkg/b.py"], [], 1)
    assert keys_in(s3, "medalflow/dev/dags/pkg/") == {"medalflow/dev/dags/pkg/b.py": b"b2"}


def test_sync_dags_dry_run_writes_nothing(s3):
    s3.put_object(Bucket=BUCKET, Key="medalflow/dev/dags/removed_dag.py", Body=b"old")
    log: list[str] = []
    report = s3sync.sync_dags(s3, make_config(), [Artifact("dags/a.py", b"a")], dry_run=True, log=log.append)
    assert report.uploaded == ["medalflow/dev/dags/a.py"]
    assert report.deleted == ["medalflow/dev/dags/removed_dag.py"]
    assert keys_in(s3) == {"medalflow/dev/dags/removed_dag.py": b"old"}
    assert "  would delete s3://mwaa-source-test/medalflow/dev/dags/removed_dag.py" in log


def test_sync_dags_deletes_stale_keys_in_batches(s3, monkeypatch):
    monkeypatch.setattr(s3sync, "DELETE_BATCH", 2)  # S3's limit is 1000 keys a call; 5 keys make three calls here
    for number in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"medalflow/dev/dags/old/{number}.py", Body=b"")
    calls = []
    s3.meta.events.register("before-parameter-build.s3.DeleteObjects", lambda params, **_: calls.append(params))
    report = s3sync.sync_dags(s3, make_config(), [], dry_run=False, log=lambda _: None)
    assert len(report.deleted) == 5
    assert [len(call["Delete"]["Objects"]) for call in calls] == [2, 2, 1]
    assert keys_in(s3) == {}


def test_publish_versioned_keeps_the_version_of_unchanged_content(s3):
    settings = make_config()
    artifact = Artifact("requirements.txt", b"apache-airflow==3.3.1\n")
    first = s3sync.publish_versioned(s3, settings, artifact, dry_run=False, log=lambda _: None)
    assert first == s3.head_object(Bucket=BUCKET, Key="medalflow/dev/requirements.txt")["VersionId"]
    assert s3sync.publish_versioned(s3, settings, artifact, dry_run=False, log=lambda _: None) == first

    changed = Artifact("requirements.txt", b"apache-airflow==3.3.1\ns3fs\n")
    assert s3sync.publish_versioned(s3, settings, changed, dry_run=True, log=lambda _: None) == s3sync.PENDING_VERSION
    second = s3sync.publish_versioned(s3, settings, changed, dry_run=False, log=lambda _: None)
    assert second not in (first, s3sync.PENDING_VERSION)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="medalflow/dev/requirements.txt")["Versions"]
    assert len(versions) == 2


def test_restore_dags_brings_back_recorded_versions_and_drops_newer_files(s3):
    settings = make_config()
    s3sync.sync_dags(s3, settings, [Artifact("dags/a.py", b"a1"), Artifact("dags/b.py", b"b1")], False, print)
    recorded = s3sync.current_versions(s3, BUCKET, "medalflow/dev/dags/")
    s3sync.sync_dags(s3, settings, [Artifact("dags/a.py", b"a2"), Artifact("dags/c.py", b"c2")], False, print)

    preview = s3sync.restore_dags(s3, settings, recorded, dry_run=True, log=lambda _: None)
    assert keys_in(s3, "medalflow/dev/dags/")["medalflow/dev/dags/a.py"] == b"a2"  # a dry run restores nothing
    assert preview.uploaded == ["medalflow/dev/dags/a.py", "medalflow/dev/dags/b.py"]
    report = s3sync.restore_dags(s3, settings, recorded, dry_run=False, log=lambda _: None)
    assert report.deleted == ["medalflow/dev/dags/c.py"]
    assert keys_in(s3, "medalflow/dev/dags/") == {"medalflow/dev/dags/a.py": b"a1", "medalflow/dev/dags/b.py": b"b1"}


def test_restoring_an_expired_version_is_named(s3):
    s3.put_object(Bucket=BUCKET, Key="medalflow/dev/dags/a.py", Body=b"a")
    with pytest.raises(DeployError, match="version 0000 is gone"):
        s3sync.restore_dags(s3, make_config(), {"medalflow/dev/dags/a.py": "0000"}, False, lambda _: None)


def test_content_is_recognised_by_its_digest_when_the_etag_is_not_an_md5():
    class HeadOnly:  # what SSE-KMS does: the ETag is not the content's MD5
        def head_object(self, **request):
            return {"Metadata": {"sha256": hashlib.sha256(b"same").hexdigest()}}

    assert s3sync.is_current(HeadOnly(), BUCKET, "k", Artifact("k", b"same"), '"not-an-md5"', None)
    assert not s3sync.is_current(HeadOnly(), BUCKET, "k", Artifact("k", b"other"), '"not-an-md5"', None)


def test_an_unversioned_or_missing_bucket_is_refused():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        with pytest.raises(DeployError, match=f"s3://{BUCKET} does not exist"):
            s3sync.check_bucket_versioning(s3, BUCKET)
        s3.create_bucket(Bucket=BUCKET)
        with pytest.raises(DeployError, match="versioning never enabled: MWAA needs it Enabled"):
            s3sync.check_bucket_versioning(s3, BUCKET)


# --- MWAA (every request checked against MWAA's API model by the Stubber) ---------------------------------------

VERSIONS = {"requirements.txt": "req-v2", "startup.sh": "startup-v2"}
NAME = {"Name": "medalflow-dev"}


def mwaa_client():
    return boto3.client("mwaa", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def environment(**changes) -> dict:
    return {
        "Name": "medalflow-dev",
        "Status": "AVAILABLE",
        "DagS3Path": "medalflow/dev/dags",
        "RequirementsS3Path": "medalflow/dev/requirements.txt",
        "RequirementsS3ObjectVersion": "req-v1",
        "StartupScriptS3Path": "medalflow/dev/startup.sh",
        "StartupScriptS3ObjectVersion": "startup-v1",
        "AirflowConfigurationOptions": {"core.default_timezone": "utc", "webserver.secret_key": "old"},
        **changes,
    }


def test_update_request_sends_new_versions_and_keeps_other_options():
    settings = make_config()
    request = mwaa.update_request(settings, VERSIONS, environment()["AirflowConfigurationOptions"])
    assert request["RequirementsS3ObjectVersion"] == "req-v2"
    assert request["AirflowConfigurationOptions"]["core.default_timezone"] == "utc"
    assert "PluginsS3Path" not in request
    with_plugins = mwaa.update_request(settings, {**VERSIONS, "plugins.zip": "p1"}, {})
    assert (with_plugins["PluginsS3Path"], with_plugins["PluginsS3ObjectVersion"]) == (
        "medalflow/dev/plugins.zip",
        "p1",
    )


def test_changes_show_old_and_new_values_and_mask_secret_options():
    request = mwaa.update_request(make_config(), VERSIONS, {"core.default_timezone": "utc"})
    request["AirflowConfigurationOptions"]["webserver.secret_key"] = "new-secret-value"
    changes = mwaa.environment_changes(environment(), request)
    assert "RequirementsS3ObjectVersion: req-v1 -> req-v2" in changes
    assert [
        line for line in changes if line.startswith('AirflowConfigurationOptions[secrets.backend]: null -> "airflow.')
    ]
    assert "AirflowConfigurationOptions[webserver.secret_key]: **** -> ****" in changes
    assert not [line for line in changes if "new-secret-value" in line or ": old" in line]


def test_wait_until_available_polls_until_the_update_ends():
    client = mwaa_client()
    log: list[str] = []
    with Stubber(client) as stub:
        for status in ("UPDATING", "UPDATING", "AVAILABLE"):
            stub.add_response("get_environment", {"Environment": environment(Status=status)}, NAME)
        mwaa.wait_until_available(client, make_config(), log.append, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert [line.split(" (")[0] for line in log] == ["  medalflow-dev: UPDATING", "  medalflow-dev: AVAILABLE"]


def test_a_failed_update_reports_mwaas_error():
    client = mwaa_client()
    failed = environment(
        Status="UPDATE_FAILED",
        LastUpdate={"Status": "FAILED", "Error": {"ErrorCode": "INVALID_PLUGINS", "ErrorMessage": "bad zip"}},
    )
    with Stubber(client) as stub:
        stub.add_response("get_environment", {"Environment": failed}, NAME)
        with pytest.raises(DeployError, match=r"is UPDATE_FAILED: INVALID_PLUGINS: bad zip.*--rollback dev"):
            mwaa.wait_until_available(client, make_config(), lambda _: None, sleep=lambda _: None)


def test_an_update_that_outlasts_the_timeout_is_reported():
    client = mwaa_client()
    ticks = iter(range(0, 100, 10))
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("get_environment", {"Environment": environment(Status="UPDATING")}, NAME)
        with pytest.raises(DeployError, match=r"still UPDATING after 15 s \(MWAA_UPDATE_TIMEOUT_SECONDS\)"):
            mwaa.wait_until_available(
                client, make_config(timeout_seconds=15), lambda _: None, sleep=lambda _: None, clock=lambda: next(ticks)
            )


@pytest.mark.parametrize("status", ["UPDATING", "CREATING", "DELETING", "ROLLING_BACK"])
def test_an_environment_busy_elsewhere_is_not_updated(status):
    with pytest.raises(DeployError, match=f"medalflow-dev is {status}: it accepts an update only when AVAILABLE"):
        mwaa.check_updatable(environment(Status=status), make_config())
    mwaa.check_updatable(environment(Status="UPDATE_FAILED"), make_config())  # a retry, or a rollback


def test_a_missing_environment_is_named():
    client = mwaa_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_environment", "ResourceNotFoundException", http_status_code=404)
        with pytest.raises(DeployError, match="no MWAA environment 'medalflow-dev' in us-east-1: check"):
            mwaa.get_environment(client, make_config())


def rest_api(stub: Stubber, path: str, response: dict, query: dict) -> None:
    request = {"Name": "medalflow-dev", "Path": path, "Method": "GET", "QueryParameters": query}
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": response}, request)


def test_the_smoke_test_waits_for_the_dags_and_passes():
    client = mwaa_client()
    log: list[str] = []
    with Stubber(client) as stub:
        rest_api(stub, "/importErrors", {"import_errors": [], "total_entries": 0}, {"limit": 100})
        rest_api(stub, "/dags", {"dags": [{"dag_id": "a"}], "total_entries": 1}, {"limit": 100, "offset": 0})
        rest_api(stub, "/importErrors", {"import_errors": [], "total_entries": 0}, {"limit": 100})
        rest_api(stub, "/dags", {"dags": [{"dag_id": "a"}], "total_entries": 2}, {"limit": 100, "offset": 0})
        rest_api(stub, "/dags", {"dags": [{"dag_id": "b"}], "total_entries": 2}, {"limit": 100, "offset": 1})
        mwaa.smoke_test(client, make_config(), ["a", "b"], log.append, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert log == ["  smoke test: 2 DAGs present, 0 import errors"]


def test_the_smoke_test_reports_import_errors_and_missing_dags():
    client = mwaa_client()
    ticks = iter([0, 700])  # started, then past the smoke test's time limit
    errors = {"import_errors": [{"filename": "/usr/local/airflow/dags/medallion.py"}], "total_entries": 1}
    with Stubber(client) as stub:
        rest_api(stub, "/importErrors", errors, {"limit": 100})
        rest_api(stub, "/dags", {"dags": [], "total_entries": 0}, {"limit": 100, "offset": 0})
        with pytest.raises(DeployError, match=r"1 import errors \(/usr/local/airflow/dags/medallion.py\).*missing: a"):
            mwaa.smoke_test(client, make_config(timeout_seconds=999), ["a"], print, clock=lambda: next(ticks))


def test_an_emulator_endpoint_gets_no_host_prefix(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    clients = mwaa.aws_clients(REGION)
    assert clients["s3"].meta.endpoint_url == "http://127.0.0.1:5999"
    assert clients["mwaa"].meta.endpoint_url == "http://127.0.0.1:5999"
    assert clients["mwaa"].meta.config.inject_host_prefix is False
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    clients = mwaa.aws_clients(REGION)
    assert clients["mwaa"].meta.endpoint_url == "https://airflow.us-east-1.amazonaws.com"
    assert clients["mwaa"].meta.config.inject_host_prefix is True


# --- history and rollback ----------------------------------------------------------------------------------------


def record(id: str, status: str = history.SUCCEEDED, restores: str | None = None) -> history.Deployment:
    return history.Deployment(
        id=id, environment="dev", time="t", who="me", git_commit="c", git_dirty=False, dags_digest="d", dags={},
        pinned={}, status=status, restores=restores,
    )  # fmt: skip


def test_rollback_steps_back_one_successful_deployment_at_a_time():
    assert history.rollback_target([record("a"), record("b")]).id == "a"
    assert history.rollback_target([record("a"), record("b"), record("c", history.FAILED)]).id == "b"
    assert history.rollback_target([record("a"), record("b"), record("c"), record("r", restores="b")]).id == "a"
    with pytest.raises(DeployError, match="nothing earlier to roll back to"):
        history.rollback_target([record("a"), record("b"), record("r", restores="a")])
    with pytest.raises(DeployError, match="no deployment is recorded"):
        history.rollback_target([])


def test_history_round_trips_through_the_bucket(s3):
    settings = make_config()
    assert history.load(s3, settings) == []
    history.append(s3, settings, record("a"))
    history.append(s3, settings, record("b", history.FAILED))
    assert [(item.id, item.status) for item in history.load(s3, settings)] == [("a", "succeeded"), ("b", "failed")]
    assert "medalflow/dev/deployments/history.json" in keys_in(s3)


# --- confirmation ------------------------------------------------------------------------------------------------


def test_prod_needs_its_name_typed_or_yes():
    prod = make_config(environment="prod")
    deploy.confirm(prod, "Deploying to", deploy.Options(), ask=lambda _: "prod")
    with pytest.raises(DeployError, match="not confirmed: prod left as it was"):
        deploy.confirm(prod, "Deploying to", deploy.Options(), ask=lambda _: "y")
    deploy.confirm(prod, "Deploying to", deploy.Options(assume_yes=True), ask=lambda _: "n")
    deploy.confirm(prod, "Deploying to", deploy.Options(dry_run=True), ask=lambda _: "n")
    deploy.confirm(make_config(), "Deploying to", deploy.Options(), ask=lambda _: "n")  # dev: no question


def test_prod_without_a_terminal_or_yes_is_refused(monkeypatch):
    monkeypatch.setattr("sys.stdin", BytesIO(b""))  # a CI job: stdin is no terminal
    with pytest.raises(DeployError, match="needs a confirmation: run it on a terminal, or pass --yes"):
        deploy.confirm(make_config(environment="prod"), "Deploying to", deploy.Options())


# --- secrets -----------------------------------------------------------------------------------------------------

CONNECTIONS = f"""\
connections:
  medalflow_erp:
    conn_type: postgres
    host: erp
    port: 5432
    login: reader
    password: {CANARY}
  medalflow_partner_api:
    conn_type: http
    host: api
    extra: {{token: {CANARY}}}
"""


def test_the_example_connections_file_is_valid_but_for_its_placeholders(tmp_path):
    example = PROJECT_ROOT / "deploy" / "connections.example.yml"
    with pytest.raises(DeployError, match=r"connection medalflow_erp: placeholders \(REPLACE_ME\) still in password"):
        connections.read_connections(example, make_config())
    filled = env_file(tmp_path, example.read_text().replace("REPLACE_ME", "x"), "connections.dev.yml")
    assert sorted(connections.read_connections(filled, make_config())) == [
        "medalflow_erp",
        "medalflow_partner_api",
        "medalflow_slack",
    ]


def test_real_connections_files_are_git_ignored():
    ignored = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "check-ignore", "-q", "deploy/connections.dev.yml"], check=False
    )
    assert ignored.returncode == 0
    example = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "check-ignore", "-q", "deploy/connections.example.yml"], check=False
    )
    assert example.returncode == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("connections:\n  aws_default:\n    conn_type: aws\n", "connection aws_default: Airflow would never look it"),
        ("connections:\n  medalflow_x:\n    host: h\n", "connection medalflow_x: conn_type is required"),
        ("connections:\n  medalflow_x:\n    conn_type: http\n    passwd: p\n", "unknown fields passwd"),
        ("connections:\n  medalflow_x:\n    conn_type: http\n    port: eighty\n", "port must be a number"),
        ("medalflow_x: {}\n", "expected a top-level `connections:` mapping"),
        (f"connections:\n  medalflow_x: [{CANARY}\n", "not valid YAML at line"),
    ],
)
def test_a_bad_connections_file_is_named_without_its_values(tmp_path, text, message):
    with pytest.raises(DeployError, match=message) as raised:
        connections.read_connections(env_file(tmp_path, text, "connections.dev.yml"), make_config())
    assert CANARY not in str(raised.value)


def test_connections_are_created_updated_or_left_alone(tmp_path, capsys):
    wanted = connections.read_connections(env_file(tmp_path, CONNECTIONS, "c.yml"), make_config())
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        log: list[str] = []
        assert connections.push_connections(client, make_config(), wanted, True, log.append) == {
            "medalflow_erp": "created",
            "medalflow_partner_api": "created",
        }
        assert client.list_secrets()["SecretList"] == []  # a dry run writes nothing
        assert set(connections.push_connections(client, make_config(), wanted, False, log.append).values()) == {
            "created"
        }
        assert set(connections.push_connections(client, make_config(), wanted, False, log.append).values()) == {
            "unchanged"
        }
        wanted["medalflow_erp"]["host"] = "erp2"
        outcome = connections.push_connections(client, make_config(), wanted, False, log.append)
        assert outcome == {"medalflow_erp": "updated", "medalflow_partner_api": "unchanged"}
        stored = json.loads(client.get_secret_value(SecretId="medalflow/dev/connections/medalflow_erp")["SecretString"])
        assert stored == {
            "conn_type": "postgres", "host": "erp2", "login": "reader", "password": CANARY, "port": 5432
        }  # fmt: skip
        api = client.get_secret_value(SecretId="medalflow/dev/connections/medalflow_partner_api")["SecretString"]
        assert json.loads(json.loads(api)["extra"]) == {"token": CANARY}

        from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend

        backend = SecretsManagerBackend(**make_config().secrets_backend_kwargs(), region_name=REGION)
        assert backend.get_connection("medalflow_erp").password == CANARY
    assert log[0] == "  medalflow/dev/connections/medalflow_erp: would be created"
    assert not [line for line in log if CANARY in line]


# --- the command line --------------------------------------------------------------------------------------------


def test_main_reports_settings_errors_without_a_traceback(capsys):
    assert deploy.main(["dev"]) == 1  # the committed deploy/dev.env still has its placeholders
    assert "deploy: error:" in capsys.readouterr().err


def test_main_takes_secrets_and_an_environment_in_any_order():
    parsed = deploy.parse_arguments(["secrets", "--dry-run", "hom"])
    assert (parsed.command, parsed.environment, parsed.dry_run) == ("secrets", "hom", True)
    parsed = deploy.parse_arguments(["--rollback", "prod", "--yes"])
    assert (parsed.command, parsed.environment, parsed.rollback, parsed.yes) == ("deploy", "prod", True, True)
    with pytest.raises(SystemExit):
        deploy.parse_arguments(["secrets", "qa"])
