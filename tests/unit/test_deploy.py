"""deploy.sh's logic (tools/medalflow_deploy/deploy.py) and the MWAA startup script, without AWS.

S3 runs in-process on moto; MWAA calls go through botocore's Stubber, which checks every request against MWAA's API
model. The startup script is sourced by bash the way MWAA's wrapper sources it, with stand-ins for uv.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import zipfile
from io import BytesIO
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from medalflow_deploy import deploy
from medalflow_deploy.deploy import Artifact, DeployConfig, DeployError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "mwaa-source-test"


def make_config(**changes) -> DeployConfig:
    values = {
        "environment": "dev",
        "mwaa_environment_name": "medalflow-dev",
        "region": REGION,
        "bucket": BUCKET,
        "prefix": "medalflow/dev",
        "connections_prefix": "medalflow/dev/connections",
        "variables_prefix": "medalflow/dev/variables",
        "runtime_settings": {"MEDALFLOW_DBT_TARGET": "athena", "MEDALFLOW_LAKE_URI": "s3://lake-dev/lake"},
    }
    return DeployConfig(**{**values, **changes})


VALID_ENV_FILE = """\
# comment
MWAA_ENVIRONMENT_NAME=medalflow-dev
AWS_REGION=us-east-1
MWAA_BUCKET=mwaa-source-test
MWAA_PREFIX=/medalflow/dev/
SECRETS_CONNECTIONS_PREFIX=medalflow/dev/connections
SECRETS_VARIABLES_PREFIX="medalflow/dev/variables"
export MEDALFLOW_DBT_TARGET=athena
MEDALFLOW_LAKE_URI='s3://lake-dev/lake'
MEDALFLOW_DBT_THREADS=8
"""


# --- settings files ----------------------------------------------------------------------------------------------


def test_parse_env_file_reads_comments_quotes_and_export():
    settings = deploy.parse_env_file(VALID_ENV_FILE, "dev.env")
    assert settings["SECRETS_VARIABLES_PREFIX"] == "medalflow/dev/variables"
    assert settings["MEDALFLOW_DBT_TARGET"] == "athena"
    assert settings["MEDALFLOW_LAKE_URI"] == "s3://lake-dev/lake"
    assert len(settings) == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MWAA_BUCKET=a\nthis is not a setting\n", "dev.env:2: expected NAME=value"),
        ("lower_case=x\n", "dev.env:1: expected NAME=value"),
        ("MWAA_BUCKET=a\nMWAA_BUCKET=b\n", "dev.env:2: MWAA_BUCKET is set twice"),
    ],
)
def test_parse_env_file_rejects_malformed_lines(text, message):
    with pytest.raises(DeployError, match=message):
        deploy.parse_env_file(text, "dev.env")


def test_load_config(tmp_path):
    path = tmp_path / "dev.env"
    path.write_text(VALID_ENV_FILE)
    config = deploy.load_config("dev", path)
    assert config.prefix == "medalflow/dev"
    assert config.dags_path == "medalflow/dev/dags"
    assert config.key("startup.sh") == "medalflow/dev/startup.sh"
    assert dict(config.runtime_settings) == {
        "MEDALFLOW_DBT_TARGET": "athena",
        "MEDALFLOW_DBT_THREADS": "8",
        "MEDALFLOW_LAKE_URI": "s3://lake-dev/lake",
    }
    assert config.airflow_configuration_options() == {
        "secrets.backend": "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
        "secrets.backend_kwargs": '{"connections_prefix": "medalflow/dev/connections", '
        '"variables_prefix": "medalflow/dev/variables"}',
    }


def test_an_empty_prefix_puts_everything_at_the_bucket_root():
    config = make_config(prefix="")
    assert config.dags_path == "dags"
    assert config.key("requirements.txt") == "requirements.txt"


@pytest.mark.parametrize(
    ("remove", "add", "named"),
    [
        ("MWAA_BUCKET", "", "missing settings MWAA_BUCKET"),
        ("MEDALFLOW_LAKE_URI", "", "missing settings MEDALFLOW_LAKE_URI"),
        ("SECRETS_CONNECTIONS_PREFIX", "", "missing settings SECRETS_CONNECTIONS_PREFIX"),
        (None, "MWAA_BUKET=typo\n", "unknown settings MWAA_BUKET"),
        (None, "MEDALFLOW_DBT_PROJECT_DIR=/x\n", "MEDALFLOW_DBT_PROJECT_DIR cannot be set here"),
        (None, "MEDALFLOW_SNOWFLAKE_PASSWORD=x\n", "MEDALFLOW_SNOWFLAKE_PASSWORD look like secrets"),
    ],
)
def test_load_config_errors_name_the_setting(tmp_path, remove, add, named):
    lines = [line for line in VALID_ENV_FILE.splitlines() if not remove or not line.startswith(remove + "=")]
    path = tmp_path / "dev.env"
    path.write_text("\n".join(lines) + "\n" + add)
    with pytest.raises(DeployError, match=named):
        deploy.load_config("dev", path)


def test_load_config_names_every_missing_setting_at_once(tmp_path):
    path = tmp_path / "dev.env"
    path.write_text("MWAA_PREFIX=x\n")
    with pytest.raises(DeployError) as raised:
        deploy.load_config("dev", path)
    for name in ("MWAA_ENVIRONMENT_NAME", "AWS_REGION", "MWAA_BUCKET", "SECRETS_VARIABLES_PREFIX"):
        assert name in str(raised.value)
    assert "MEDALFLOW_DBT_TARGET" in str(raised.value)


def test_load_config_rejects_unknown_environments_and_missing_files(tmp_path):
    with pytest.raises(DeployError, match="unknown environment 'qa'"):
        deploy.load_config("qa", tmp_path / "qa.env")
    with pytest.raises(DeployError, match="no deployment settings for hom"):
        deploy.load_config("hom", tmp_path / "hom.env")


@pytest.mark.parametrize("environment", deploy.ENVIRONMENTS)
def test_committed_settings_are_complete_but_for_their_placeholders(tmp_path, environment):
    committed = PROJECT_ROOT / "deploy" / f"{environment}.env"
    with pytest.raises(DeployError) as raised:
        deploy.load_config(environment, committed)
    assert "placeholders (REPLACE_ME) still in" in str(raised.value)
    assert "missing" not in str(raised.value)
    assert "unknown" not in str(raised.value)

    filled = tmp_path / f"{environment}.env"
    filled.write_text(committed.read_text().replace("REPLACE_ME-aws-region", "eu-west-1").replace("REPLACE_ME-", ""))
    config = deploy.load_config(environment, filled)
    assert config.mwaa_environment_name == f"medalflow-{environment}"
    assert config.connections_prefix == f"medalflow/{environment}/connections"
    assert set(deploy.REQUIRED_RUNTIME_SETTINGS) <= set(config.runtime_settings)


# --- what is uploaded --------------------------------------------------------------------------------------------


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_dags_artifacts_ship_the_project_without_junk(tmp_path):
    for name in (
        "dags/medallion.py",
        "dags/medalflow/__init__.py",
        "dags/medalflow/__pycache__/settings.cpython-312.pyc",
        "dags/medalflow/stray.pyc",
        "dags/config/sources/erp.yml",
        "dags/.DS_Store",
        "dbt_project/dbt_project.yml",
        "dbt_project/models/bronze/bronze_orders.sql",
        "dbt_project/target/manifest.json",
        "dbt_project/target/run_results.json",
        "dbt_project/target/compiled/medalflow/models/x.sql",
        "dbt_project/logs/dbt.log",
        "dbt_project/.user.yml",
        "profiles/profiles.yml",
    ):
        write(tmp_path / name)
    keys = [artifact.key for artifact in deploy.dags_artifacts(tmp_path)]
    assert keys == [
        "dags/config/sources/erp.yml",
        "dags/dbt_project/dbt_project.yml",
        "dags/dbt_project/models/bronze/bronze_orders.sql",
        "dags/dbt_project/target/manifest.json",
        "dags/medalflow/__init__.py",
        "dags/medallion.py",
        "dags/profiles/profiles.yml",
    ]


def test_dags_artifacts_need_the_manifest(tmp_path):
    write(tmp_path / "dags" / "medallion.py")
    write(tmp_path / "dbt_project" / "dbt_project.yml")
    with pytest.raises(DeployError, match="make manifest"):
        deploy.dags_artifacts(tmp_path)


def test_dags_artifacts_refuse_two_files_on_one_key(tmp_path):
    write(tmp_path / "dags" / "dbt_project" / "dbt_project.yml")
    write(tmp_path / "dbt_project" / "dbt_project.yml")
    write(tmp_path / "dbt_project" / "target" / "manifest.json")
    with pytest.raises(DeployError, match=r"same key: dags/dbt_project/dbt_project\.yml"):
        deploy.dags_artifacts(tmp_path)


def test_the_plan_of_this_repository():
    plan = deploy.build_plan(PROJECT_ROOT, make_config())
    keys = {artifact.key for artifact in plan.dags}
    dag_files = {f"dags/{path.name}" for path in (PROJECT_ROOT / "dags").glob("*.py")}
    assert dag_files
    assert dag_files <= keys
    assert {"dags/medalflow/settings.py", "dags/config/sources/erp.yml", "dags/profiles/profiles.yml"} <= keys
    assert {"dags/dbt_project/dbt_project.yml", "dags/dbt_project/target/manifest.json"} <= keys
    assert not [key for key in keys if "__pycache__" in key or key.endswith(".pyc")]
    assert [key for key in keys if "/target/" in key] == ["dags/dbt_project/target/manifest.json"]
    assert not [key for key in keys if key.startswith("dags/dbt_project/logs/")]
    assert plan.requirements.body == (PROJECT_ROOT / "requirements" / "requirements.txt").read_bytes()
    assert plan.requirements.body.startswith(b'--constraint "https://raw.githubusercontent.com/apache/airflow/')
    assert plan.startup_script.key == "startup.sh"


def test_zip_plugins_ships_nothing_for_an_empty_folder(tmp_path):
    assert deploy.zip_plugins(tmp_path / "absent") is None
    write(tmp_path / "plugins" / ".gitkeep")
    write(tmp_path / "plugins" / "__pycache__" / "x.pyc")
    assert deploy.zip_plugins(tmp_path / "plugins") is None


def test_zip_plugins_is_reproducible(tmp_path):
    write(tmp_path / "plugins" / "medalflow_plugins" / "hooks.py", "class Hook: ...\n")
    write(tmp_path / "plugins" / "medalflow_plugins" / "__pycache__" / "hooks.cpython-312.pyc")
    first = deploy.zip_plugins(tmp_path / "plugins")
    hooks = tmp_path / "plugins" / "medalflow_plugins" / "hooks.py"
    os.utime(hooks, (time.time() + 3600, time.time() + 3600))
    assert deploy.zip_plugins(tmp_path / "plugins") == first
    with zipfile.ZipFile(BytesIO(first)) as archive:
        assert archive.namelist() == ["medalflow_plugins/hooks.py"]
        assert archive.read("medalflow_plugins/hooks.py") == b"class Hook: ...\n"
    hooks.write_text("class Hook: pass\n")
    assert deploy.zip_plugins(tmp_path / "plugins") != first


def test_uv_version_comes_from_the_makefile():
    assert deploy.uv_version(PROJECT_ROOT) in (PROJECT_ROOT / "Makefile").read_text()


# --- the startup script ------------------------------------------------------------------------------------------


def rendered_startup_script(tmp_path: Path, **runtime) -> Path:
    settings = {"MEDALFLOW_DBT_TARGET": "athena", "MEDALFLOW_LAKE_URI": "s3://lake dev/it's", **runtime}
    plan = deploy.build_plan(PROJECT_ROOT, make_config(runtime_settings=settings))
    path = tmp_path / "startup.sh"
    path.write_bytes(plan.startup_script.body)
    return path


def test_the_template_has_the_render_markers():
    template = (PROJECT_ROOT / "deploy" / "mwaa_startup.sh").read_text()
    assert template.count(deploy.RENDER_BEGIN + "\n") == 1
    assert template.count(deploy.RENDER_END + "\n") == 1
    with pytest.raises(DeployError, match="markers"):
        deploy.render_startup_script("#!/bin/bash\n", make_config(), {}, "0.1.0")


def test_the_startup_script_carries_the_build_script_and_lock_byte_for_byte(tmp_path):
    script = rendered_startup_script(tmp_path)
    out = tmp_path / "inputs"
    out.mkdir()
    block = f"sed -n '/^{deploy.RENDER_BEGIN}$/,/^{deploy.RENDER_END}$/p' {script}"
    subprocess.run(["bash", "-c", f'source <({block}) && medalflow_write_dbt_inputs "$1"', "_", out], check=True)
    for name, source in deploy.DBT_BUILD_INPUTS.items():
        assert (out / name).read_bytes() == (PROJECT_ROOT / source).read_bytes(), name


def test_a_here_document_cannot_be_cut_short():
    with pytest.raises(DeployError, match="would end its here-document early"):
        deploy.render_startup_script(
            (PROJECT_ROOT / "deploy" / "mwaa_startup.sh").read_text(),
            make_config(),
            {"dbt.lock.txt": "dbt-core==1\nMEDALFLOW_END_OF_DBT_LOCK_TXT\n"},
            "0.1.0",
        )


FAKE_UV = """#!/usr/bin/env bash
# Stands in for uv: records its arguments; `uv venv DIR` makes DIR, `uv pip sync` puts a dbt there.
echo "$*" >> "$FAKE_UV_LOG"
[ -z "${FAKE_UV_FAIL:-}" ] || exit 1
case "$1" in
  venv) mkdir -p "${@: -1}/bin" ;;
  pip) dbt=$(dirname "$5")/dbt; printf '#!/bin/sh\\necho dbt 1.11\\n' > "$dbt"; chmod +x "$dbt" ;;
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


def test_startup_script_builds_dbt_and_exports_the_settings(tmp_path):
    script = rendered_startup_script(tmp_path)
    home = tmp_path / "airflow"
    home.mkdir()
    completed, exported = source_like_mwaa(script, home, "worker")

    assert "still running" in completed.stdout  # sourced: it must not exit the wrapper's shell
    flags = next(line for line in completed.stdout.splitlines() if line.startswith("flags="))
    assert "e" not in flags.removeprefix("flags=")
    assert "u" not in flags.removeprefix("flags=")
    assert exported["MEDALFLOW_DBT_EXECUTABLE"] == f"{home}/dbt_venv/bin/dbt"
    assert exported["MEDALFLOW_DBT_PROJECT_DIR"] == f"{home}/dags/dbt_project"
    assert exported["MEDALFLOW_DBT_PROFILES_DIR"] == f"{home}/dags/profiles"
    assert exported["MEDALFLOW_DBT_TARGET"] == "athena"
    assert exported["MEDALFLOW_LAKE_URI"] == "s3://lake dev/it's"
    assert exported["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "False"
    assert "medalflow_environment" not in exported  # the script's own variables stay out of Airflow's environment

    calls = (home / "uv.log").read_text().splitlines()
    assert calls[0].startswith("venv ")
    assert calls[0].endswith(f"{home}/dbt_venv")
    assert calls[1].startswith(f"pip sync --quiet --python {home}/dbt_venv/bin/python ")
    assert calls[1].endswith("/dbt.lock.txt")
    lock_digest = hashlib.sha256((PROJECT_ROOT / "requirements/lock/dbt.lock.txt").read_bytes()).hexdigest()
    assert (home / "dbt_venv" / ".medalflow-requirements.sha256").read_text().strip() == lock_digest
    assert "dbt virtualenv ready" in completed.stdout


def test_startup_script_is_fast_and_idempotent_when_the_venv_exists(tmp_path):
    script = rendered_startup_script(tmp_path)
    home = tmp_path / "airflow"
    home.mkdir()
    source_like_mwaa(script, home, "scheduler")
    started = time.monotonic()
    completed, exported = source_like_mwaa(script, home, "scheduler")
    elapsed = time.monotonic() - started

    assert "is up to date" in completed.stdout
    assert len((home / "uv.log").read_text().splitlines()) == 2  # the first run's two calls, none since
    assert exported["MEDALFLOW_DBT_EXECUTABLE"] == f"{home}/dbt_venv/bin/dbt"
    assert elapsed < 2, f"a second start took {elapsed:.1f} s"


def test_startup_script_skips_dbt_on_the_api_server(tmp_path):
    script = rendered_startup_script(tmp_path)
    home = tmp_path / "airflow"
    home.mkdir()
    completed, exported = source_like_mwaa(script, home, "webserver")
    assert "not built here" in completed.stdout
    assert not (home / "uv.log").exists()
    assert not (home / "dbt_venv").exists()
    assert exported["MEDALFLOW_LAKE_URI"] == "s3://lake dev/it's"


def test_a_failed_build_is_reported_and_airflow_still_gets_its_settings(tmp_path):
    script = rendered_startup_script(tmp_path)
    home = tmp_path / "airflow"
    home.mkdir()
    completed, exported = source_like_mwaa(script, home, "worker", FAKE_UV_FAIL="1")
    assert "dbt's virtualenv is not ready" in completed.stderr
    assert "still running" in completed.stdout
    assert exported["MEDALFLOW_DBT_TARGET"] == "athena"


def test_the_unrendered_template_says_so(tmp_path):
    home = tmp_path / "airflow"
    home.mkdir()
    completed, _ = source_like_mwaa(PROJECT_ROOT / "deploy" / "mwaa_startup.sh", home, "worker")
    assert "unrendered template" in completed.stderr
    assert not (home / "uv.log").exists()


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
    config = make_config()
    s3.put_object(Bucket=BUCKET, Key="medalflow/dev/dags/removed_dag.py", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="medalflow/dev/requirements.txt", Body=b"not under dags/: left alone")
    artifacts = [Artifact("dags/a.py", b"a"), Artifact("dags/pkg/b.py", b"b")]
    log: list[str] = []

    report = deploy.sync_dags(s3, config, artifacts, dry_run=False, log=log.append)
    assert report.uploaded == ["medalflow/dev/dags/a.py", "medalflow/dev/dags/pkg/b.py"]
    assert report.deleted == ["medalflow/dev/dags/removed_dag.py"]
    assert keys_in(s3) == {
        "medalflow/dev/dags/a.py": b"a",
        "medalflow/dev/dags/pkg/b.py": b"b",
        "medalflow/dev/requirements.txt": b"not under dags/: left alone",
    }

    again = deploy.sync_dags(s3, config, [artifacts[0], Artifact("dags/pkg/b.py", b"b2")], False, log.append)
    assert (again.uploaded, again.deleted, again.unchanged) == (["medalflow/dev/dags/pkg/b.py"], [], 1)
    assert keys_in(s3, "medalflow/dev/dags/pkg/") == {"medalflow/dev/dags/pkg/b.py": b"b2"}


def test_sync_dags_dry_run_writes_nothing(s3):
    s3.put_object(Bucket=BUCKET, Key="medalflow/dev/dags/removed_dag.py", Body=b"old")
    log: list[str] = []
    report = deploy.sync_dags(s3, make_config(), [Artifact("dags/a.py", b"a")], dry_run=True, log=log.append)
    assert report.uploaded == ["medalflow/dev/dags/a.py"]
    assert report.deleted == ["medalflow/dev/dags/removed_dag.py"]
    assert keys_in(s3) == {"medalflow/dev/dags/removed_dag.py": b"old"}
    assert "  would delete s3://mwaa-source-test/medalflow/dev/dags/removed_dag.py" in log


def test_sync_dags_deletes_stale_keys_in_batches(s3, monkeypatch):
    monkeypatch.setattr(deploy, "DELETE_BATCH", 2)  # S3's limit is 1000 keys a call; 5 keys make three calls here
    for number in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"medalflow/dev/dags/old/{number}.py", Body=b"")
    calls = []
    s3.meta.events.register("before-parameter-build.s3.DeleteObjects", lambda params, **_: calls.append(params))
    report = deploy.sync_dags(s3, make_config(), [], dry_run=False, log=lambda _: None)
    assert len(report.deleted) == 5
    assert [len(call["Delete"]["Objects"]) for call in calls] == [2, 2, 1]
    assert keys_in(s3) == {}


def test_publish_versioned_keeps_the_version_of_unchanged_content(s3):
    config = make_config()
    artifact = Artifact("requirements.txt", b"apache-airflow==3.3.1\n")
    first = deploy.publish_versioned(s3, config, artifact, dry_run=False, log=lambda _: None)
    assert first == s3.head_object(Bucket=BUCKET, Key="medalflow/dev/requirements.txt")["VersionId"]
    assert deploy.publish_versioned(s3, config, artifact, dry_run=False, log=lambda _: None) == first

    changed = Artifact("requirements.txt", b"apache-airflow==3.3.1\ns3fs\n")
    assert deploy.publish_versioned(s3, config, changed, dry_run=True, log=lambda _: None) == deploy.PENDING_VERSION
    second = deploy.publish_versioned(s3, config, changed, dry_run=False, log=lambda _: None)
    assert second not in (first, deploy.PENDING_VERSION)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="medalflow/dev/requirements.txt")["Versions"]
    assert len(versions) == 2


def test_content_is_recognised_by_its_digest_when_the_etag_is_not_an_md5():
    class HeadOnly:  # what SSE-KMS does: the ETag is not the content's MD5
        def head_object(self, **request):
            return {"Metadata": {"sha256": hashlib.sha256(b"same").hexdigest()}}

    assert deploy._is_current(HeadOnly(), BUCKET, "k", Artifact("k", b"same"), '"not-an-md5"', None)
    assert not deploy._is_current(HeadOnly(), BUCKET, "k", Artifact("k", b"other"), '"not-an-md5"', None)


def test_an_unversioned_bucket_is_refused():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        with pytest.raises(DeployError, match="versioning never enabled: MWAA needs it Enabled"):
            deploy.check_bucket_versioning(s3, BUCKET)


# --- MWAA (every request checked against MWAA's API model by the Stubber) ---------------------------------------

VERSIONS = {"requirements.txt": "req-v2", "startup.sh": "startup-v2"}


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
        "AirflowConfigurationOptions": {"core.default_timezone": "utc"},
        **changes,
    }


def test_update_environment_sends_new_versions_and_keeps_other_options():
    mwaa = mwaa_client()
    config = make_config()
    expected = {
        "Name": "medalflow-dev",
        "DagS3Path": "medalflow/dev/dags",
        "RequirementsS3Path": "medalflow/dev/requirements.txt",
        "RequirementsS3ObjectVersion": "req-v2",
        "StartupScriptS3Path": "medalflow/dev/startup.sh",
        "StartupScriptS3ObjectVersion": "startup-v2",
        "AirflowConfigurationOptions": {"core.default_timezone": "utc", **config.airflow_configuration_options()},
    }
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", {"Environment": environment()}, {"Name": "medalflow-dev"})
        arn = "arn:aws:airflow:us-east-1:000000000000:environment/medalflow-dev"
        stub.add_response("update_environment", {"Arn": arn}, expected)
        log: list[str] = []
        assert deploy.update_environment(mwaa, config, VERSIONS, dry_run=False, log=log.append)
        stub.assert_no_pending_responses()
    assert "  RequirementsS3ObjectVersion: req-v1 -> req-v2" in log
    assert "  AirflowConfigurationOptions[secrets.backend]" in log


def test_update_environment_adds_plugins_when_there_are_some():
    request = deploy.update_request(make_config(), {**VERSIONS, "plugins.zip": "plugins-v1"}, {})
    assert request["PluginsS3Path"] == "medalflow/dev/plugins.zip"
    assert request["PluginsS3ObjectVersion"] == "plugins-v1"
    assert "PluginsS3Path" not in deploy.update_request(make_config(), VERSIONS, {})


def test_an_environment_already_running_the_deployment_is_not_restarted():
    mwaa = mwaa_client()
    config = make_config()
    current = environment(
        RequirementsS3ObjectVersion="req-v2",
        StartupScriptS3ObjectVersion="startup-v2",
        AirflowConfigurationOptions=config.airflow_configuration_options(),
        Status="UPDATING",  # not updatable, but there is nothing to update
    )
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", {"Environment": current}, {"Name": "medalflow-dev"})
        log: list[str] = []
        assert not deploy.update_environment(mwaa, config, VERSIONS, dry_run=False, log=log.append)
        stub.assert_no_pending_responses()  # and no update_environment call, or the Stubber would have failed
    assert log == ["MWAA environment medalflow-dev already runs this deployment: not updated"]


def test_a_dry_run_does_not_update():
    mwaa = mwaa_client()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", {"Environment": environment()}, {"Name": "medalflow-dev"})
        assert deploy.update_environment(mwaa, make_config(), VERSIONS, dry_run=True, log=lambda _: None)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["UPDATING", "CREATING", "ROLLING_BACK"])
def test_an_environment_busy_elsewhere_is_not_updated(status):
    mwaa = mwaa_client()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", {"Environment": environment(Status=status)}, {"Name": "medalflow-dev"})
        with pytest.raises(DeployError, match=f"medalflow-dev is {status}: rerun deploy.sh once it is AVAILABLE"):
            deploy.update_environment(mwaa, make_config(), VERSIONS, dry_run=False, log=lambda _: None)


def test_a_missing_environment_is_named():
    mwaa = mwaa_client()
    with Stubber(mwaa) as stub:
        stub.add_client_error("get_environment", "ResourceNotFoundException", http_status_code=404)
        with pytest.raises(DeployError, match="no MWAA environment 'medalflow-dev' in us-east-1"):
            deploy.update_environment(mwaa, make_config(), VERSIONS, dry_run=False, log=lambda _: None)


def test_an_emulator_endpoint_gets_no_host_prefix(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    s3, mwaa = deploy.aws_clients(REGION)
    assert s3.meta.endpoint_url == "http://127.0.0.1:5999"
    assert mwaa.meta.endpoint_url == "http://127.0.0.1:5999"
    assert mwaa.meta.config.inject_host_prefix is False
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    _, mwaa = deploy.aws_clients(REGION)
    assert mwaa.meta.endpoint_url == "https://airflow.us-east-1.amazonaws.com"
    assert mwaa.meta.config.inject_host_prefix is True


# --- the command line --------------------------------------------------------------------------------------------


def test_main_reports_settings_errors_without_a_traceback(capsys):
    assert deploy.main(["dev"]) == 1  # the committed deploy/dev.env still has its placeholders
    assert "deploy: error:" in capsys.readouterr().err


def test_main_reports_aws_errors_without_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = tmp_path / "dev.env"
    settings.write_text(VALID_ENV_FILE)
    with mock_aws():  # no bucket at all
        assert deploy.main(["dev", "--config", str(settings)]) == 1
    error = capsys.readouterr().err
    assert "deploy: AWS error:" in error
    assert "NoSuchBucket" in error
