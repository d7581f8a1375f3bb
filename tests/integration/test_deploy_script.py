"""./deploy.sh for real, on a git copy of the project: S3, STS and Secrets Manager on the moto server, MWAA on the
stateful stand-in (tests/mwaa_standin.py), whose every request is validated against MWAA's service model.

One scenario, in order, each step's outcome kept for the tests below: connections pushed (and pushed again); a dry
run; refusals that must leave the bucket untouched (wrong account, another environment's settings, a mistyped MWAA
environment, a DAG that fails to import, prod without a confirmation, a credential in the settings); a deployment;
a no-op rerun; a changed DAG and requirements; an update MWAA fails; two rollbacks. Canary values planted in every
secret and credential must never show up in any output or in any version of any object.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from mwaa_standin import MwaaStandIn

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account
BUCKET = "medalflow-mwaa-source-it"
PREFIX = "medalflow/dev"
ENVIRONMENT_NAME = "medalflow-dev"
LAKE_URI = "s3://medalflow-lake-it/lake"
CONNECTIONS_PREFIX = "medalflow-it/dev/connections"
CANARIES = {
    "connection password": "CanaryConnPw7Qx",
    "connection extra": "CanaryExtraTok9Zr",
    "aws secret key": "CanaryAwsSecret4Lm",
    "ignored dags/.env": "CanaryDotEnv2Wk",
    "settings line": "CanarySettingsPw5Jd",
    "process connection": "CanaryProcessConn8Hv",
}


# What infra/mwaa.yaml sets: the same backend arguments as deploy's, in its own order and spacing.
INFRA_OPTIONS = {
    "secrets.backend": "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend",
    "secrets.backend_kwargs": f'{{"connections_prefix": "{CONNECTIONS_PREFIX}", "connections_lookup_pattern": '
    '"^medalflow_", "variables_prefix": "medalflow-it/dev/variables", "variables_lookup_pattern": "^medalflow_"}',
}


def settings_text(environment: str = "dev", **changes: str) -> str:
    values = {
        "MEDALFLOW_ENVIRONMENT": environment,
        "AWS_ACCOUNT_ID": ACCOUNT,
        "MWAA_ENVIRONMENT_NAME": f"medalflow-{environment}",
        "AWS_REGION": "us-east-1",
        "MWAA_BUCKET": BUCKET,
        "MWAA_PREFIX": f"medalflow/{environment}",
        "SECRETS_CONNECTIONS_PREFIX": CONNECTIONS_PREFIX,
        "SECRETS_VARIABLES_PREFIX": "medalflow-it/dev/variables",
        "MWAA_UPDATE_POLL_SECONDS": "0.01",
        "MWAA_UPDATE_TIMEOUT_SECONDS": "5",
        "MEDALFLOW_DBT_TARGET": "athena",
        "MEDALFLOW_LAKE_URI": LAKE_URI,
        "MEDALFLOW_ATHENA_S3_STAGING_DIR": "s3://medalflow-athena-it/results/",
        "MEDALFLOW_ATHENA_S3_DATA_DIR": "s3://medalflow-lake-it/warehouse/",
        "MEDALFLOW_ATHENA_SCHEMA": "medalflow_it",
        **changes,
    }
    return "".join(f"{name}={value}\n" for name, value in values.items())


CONNECTIONS = f"""\
connections:
  medalflow_erp:
    conn_type: postgres
    host: erp.example.com
    port: 5432
    schema: erp
    login: reader
    password: {CANARIES["connection password"]}
  medalflow_partner_api:
    conn_type: http
    host: api.example.com
    extra: {{"token": "{CANARIES["connection extra"]}"}}
"""


def git(root: Path, *arguments: str) -> None:
    environment = {
        **os.environ,
        "GIT_AUTHOR_NAME": "it",
        "GIT_AUTHOR_EMAIL": "it@example.com",
        "GIT_COMMITTER_NAME": "it",
        "GIT_COMMITTER_EMAIL": "it@example.com",
    }
    subprocess.run(["git", "-C", str(root), *arguments], check=True, capture_output=True, env=environment)


COPIED_PATHS = (
    "dags",
    "plugins",
    "dbt_project",
    "profiles",
    "requirements",
    "scripts",
    "Makefile",
    "deploy",
    ".gitignore",
)


def copy_of_the_project(target: Path) -> Path:
    """This checkout's git-tracked runtime, dbt project and deploy files (as they are in the work tree), as a git
    repository of its own: tests change and commit files there, never in the shared checkout."""
    tracked = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "ls-files", "-z", "--", *COPIED_PATHS],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (PROJECT_ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, target / name)
    git(target, "init", "--quiet")
    git(target, "add", ".")
    git(target, "commit", "--quiet", "-m", "copy")
    # Never shipped: a git-ignored .env and an untracked scratch file under dags/.
    (target / "dags" / ".env").write_text(
        f"AIRFLOW_CONN_MEDALFLOW_ERP=postgres://u:{CANARIES['ignored dags/.env']}@h/db\n"
    )
    (target / "dags" / "scratch_dag.py").write_text("raise RuntimeError('untracked: never shipped')\n")
    return target


def versions_in(s3) -> list[tuple[str, str]]:
    listed = s3.list_object_versions(Bucket=BUCKET)
    return sorted(
        (item["Key"], item["VersionId"]) for item in listed.get("Versions", []) + listed.get("DeleteMarkers", [])
    )


def objects_in(s3) -> dict[str, str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


def history_in(s3) -> list[dict]:
    try:
        body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/deployments/history.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return json.loads(body)["deployments"]


@pytest.fixture(scope="module")
def scenario(moto_endpoint, tmp_path_factory):
    root = copy_of_the_project(tmp_path_factory.mktemp("project"))
    work = tmp_path_factory.mktemp("deploy")
    settings = work / "dev.env"
    settings.write_text(settings_text())
    connections = work / "connections.dev.yml"
    connections.write_text(CONNECTIONS)
    empty = work / "no-aws-config"  # no profile of the machine's applies
    empty.write_text("")

    def boto(service: str):
        return boto3.client(
            service,
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="t",
            aws_secret_access_key="t",
        )

    s3 = boto("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dags/retired_dag.py", Body=b"# gone from the project")
    mwaa = MwaaStandIn(s3, BUCKET, account=ACCOUNT)
    mwaa.add_environment(ENVIRONMENT_NAME, AirflowConfigurationOptions={"core.default_task_retries": "2"})
    mwaa.add_environment("medalflow-prod", dags_path="medalflow/prod/dags")

    environment = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "MEDALFLOW_"))}
    environment.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ENDPOINT_URL_MWAA=mwaa.url,
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY=CANARIES["aws secret key"],
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AIRFLOW_CONN_MEDALFLOW_ERP=f"postgres://u:{CANARIES['process connection']}@h/db",
    )
    outputs: list[str] = []

    def run(*arguments: str, config: Path = settings, environment_name: str = "dev", stdin=subprocess.DEVNULL) -> dict:
        started = time.monotonic()
        command = [str(PROJECT_ROOT / "deploy.sh"), "--project-root", str(root), *arguments]
        if config is not None:
            command += ["--config", str(config)]
        completed = subprocess.run(
            [*command, environment_name], env=environment, capture_output=True, text=True, timeout=600, stdin=stdin
        )
        outputs.append(completed.stdout + completed.stderr)
        return {
            "code": completed.returncode,
            "output": completed.stdout + completed.stderr,
            "objects": objects_in(s3),
            "versions": versions_in(s3),
            "history": history_in(s3),
            "requests": len(mwaa.requests),
            "seconds": time.monotonic() - started,
            "environment": json.loads(json.dumps(mwaa.environments[ENVIRONMENT_NAME])),
        }

    steps: dict[str, dict] = {}
    steps["secrets"] = run("secrets", "--connections", str(connections))
    steps["secrets again"] = run("secrets", "--connections", str(connections))
    steps["start"] = run("--dry-run", "--skip-smoke-test")  # a dry run needs no smoke test; also: what was there
    steps["dry run"] = steps["start"]

    wrong_account = work / "wrong-account.env"
    wrong_account.write_text(settings_text(AWS_ACCOUNT_ID="999999999999"))
    steps["wrong account"] = run(config=wrong_account)
    steps["other environment's settings"] = run(environment_name="prod")
    mistyped = work / "mistyped.env"
    mistyped.write_text(settings_text(MWAA_ENVIRONMENT_NAME="medalflow-dve"))
    steps["mistyped environment"] = run(config=mistyped)
    with_credential = work / "with-credential.env"
    with_credential.write_text(
        settings_text() + f"MEDALFLOW_ERP_URL=postgresql://reader:{CANARIES['settings line']}@erp/db\n"
    )
    steps["credential in settings"] = run(config=with_credential)
    prod = work / "prod.env"
    prod.write_text(settings_text("prod"))
    steps["prod without confirmation"] = run(config=prod, environment_name="prod")

    broken = root / "dags" / "broken_dag.py"
    broken.write_text("from airflow.sdk import dag\nimport medalflow.no_such_module  # fails to import\n")
    git(root, "add", "dags/broken_dag.py")
    steps["broken dag"] = run()
    git(root, "rm", "--quiet", "-f", "dags/broken_dag.py")

    steps["first"] = run()
    steps["rerun"] = run()

    dag_file = root / "dags" / "maintenance.py"
    dag_file.write_text(dag_file.read_text() + "\n# changed\n")
    requirements = root / "requirements" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# changed\n")
    git(root, "commit", "--quiet", "-am", "change")
    steps["changed"] = run()

    requirements.write_text(requirements.read_text() + "# changed again\n")
    git(root, "commit", "--quiet", "-am", "change again")
    mwaa.fail_next_update("INCORRECT_REQUIREMENTS", "pip could not install the requirements")
    steps["update failed"] = run()

    steps["rollback"] = run("--rollback")
    steps["rollback dry run"] = run("--rollback", "--dry-run")
    steps["rollback again"] = run("--rollback")
    steps["nothing left to roll back"] = run("--rollback")

    # hom's first deployment, the way infra/README.md orders it: upload before the environment exists, create it
    # (here: the stand-in) with the printed versions, then deploy.
    hom = work / "hom.env"
    hom.write_text(settings_text("hom", MWAA_PREFIX=""))
    steps["hom upload only"] = run("--upload-only", config=hom, environment_name="hom")
    parameters = dict(re.findall(r"(\w+S3ObjectVersion)=(\S+)", steps["hom upload only"]["output"]))
    mwaa.add_environment(
        "medalflow-hom",
        RequirementsS3Path="requirements.txt",
        RequirementsS3ObjectVersion=parameters["RequirementsS3ObjectVersion"],
        StartupScriptS3Path="startup.sh",
        StartupScriptS3ObjectVersion=parameters["StartupScriptS3ObjectVersion"],
        PluginsS3Path="plugins.zip",
        PluginsS3ObjectVersion=parameters["PluginsS3ObjectVersion"],
        AirflowConfigurationOptions=INFRA_OPTIONS,
    )
    steps["hom first deploy"] = run(config=hom, environment_name="hom")

    yield {
        "s3": s3,
        "mwaa": mwaa,
        "steps": steps,
        "outputs": outputs,
        "root": root,
        "secretsmanager": boto("secretsmanager"),
    }
    mwaa.close()


def refused_untouched(scenario, step: str, message: str) -> None:
    steps = scenario["steps"]
    outcome = steps[step]
    assert outcome["code"] != 0, outcome["output"]
    assert message in outcome["output"]
    assert "Traceback" not in outcome["output"]


# --- refusals: nothing written ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("wrong account", "these AWS credentials are for account 123456789012, but dev lives in 999999999999"),
        ("other environment's settings", "MEDALFLOW_ENVIRONMENT is 'dev', not 'prod'"),
        ("mistyped environment", "no MWAA environment 'medalflow-dve' in us-east-1"),
        ("credential in settings", "MEDALFLOW_ERP_URL looks like a credential (its value looks like a URL with user:"),
        ("prod without confirmation", "needs a confirmation: run it on a terminal, or pass --yes"),
        ("broken dag", "1 DAG files fail to import, nothing uploaded: dags/broken_dag.py"),
    ],
)
def test_refusals_come_before_any_write(scenario, step, message):
    steps = scenario["steps"]
    refused_untouched(scenario, step, message)
    # Every refusal ran before the first deployment: the bucket is as the dry run found it.
    assert steps[step]["versions"] == steps["start"]["versions"]


def test_no_update_was_sent_before_the_first_deployment(scenario):
    first_update = next(
        index for index, request in enumerate(scenario["mwaa"].requests) if request["operation"] == "UpdateEnvironment"
    )
    assert first_update >= scenario["steps"]["broken dag"]["requests"]


def test_a_dry_run_writes_nothing(scenario):
    dry = scenario["steps"]["dry run"]
    assert dry["code"] == 0, dry["output"]
    assert list(dry["objects"]) == [f"{PREFIX}/dags/retired_dag.py"]
    assert f"would upload s3://{BUCKET}/{PREFIX}/dags/medallion.py" in dry["output"]
    assert f"would delete s3://{BUCKET}/{PREFIX}/dags/retired_dag.py" in dry["output"]
    assert "would change RequirementsS3ObjectVersion: None -> (new version)" in dry["output"]
    assert 'would change AirflowConfigurationOptions[secrets.backend]: null -> "airflow.providers' in dry["output"]
    assert "dry run: nothing was written" in dry["output"]
    assert dry["history"] == []


# --- the deployment ------------------------------------------------------------------------------------------------


def test_only_the_runtime_ships(scenario):
    first = scenario["steps"]["first"]
    assert first["code"] == 0, first["output"]
    keys = set(first["objects"])
    dags = f"{PREFIX}/dags/"
    root = scenario["root"]
    tracked = subprocess.run(
        ["git", "-C", str(root), "ls-files", "dags"], capture_output=True, text=True
    ).stdout.split()
    assert {PREFIX + "/" + name for name in tracked} <= keys
    assert dags + ".env" not in keys  # git-ignored
    assert dags + "scratch_dag.py" not in keys  # untracked
    assert not [key for key in keys if key.removeprefix(dags).split("/")[0] in ("tools", "tests", "deploy")]
    assert not [key for key in keys if "medalflow_deploy" in key or key.endswith("deploy.sh")]
    assert [key for key in keys if "/target/" in key] == [dags + "dbt_project/target/manifest.json"]
    assert dags + "retired_dag.py" not in keys
    pinned = {f"{PREFIX}/requirements.txt", f"{PREFIX}/startup.sh", f"{PREFIX}/plugins.zip"}
    assert {key for key in keys if not key.startswith(dags)} == pinned | {f"{PREFIX}/deployments/history.json"}


def test_the_manifest_is_built_for_the_environments_target(scenario):
    s3 = scenario["s3"]
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/dags/dbt_project/target/manifest.json")["Body"].read()
    assert json.loads(body)["metadata"]["adapter_type"] == "athena"
    assert not (scenario["root"] / "dbt_project" / "target").exists()  # the local target is never touched


def test_the_update_fits_mwaas_api_and_waits_for_available(scenario):
    mwaa, s3 = scenario["mwaa"], scenario["s3"]
    assert mwaa.problems == []
    assert all(request["signed"] for request in mwaa.requests)
    first_update = mwaa.calls("UpdateEnvironment")[0]["params"]
    history = scenario["steps"]["first"]["history"]
    assert len(history) == 1
    record = history[0]
    assert first_update["DagS3Path"] == f"{PREFIX}/dags"
    assert first_update["RequirementsS3ObjectVersion"] == record["pinned"]["requirements.txt"]
    assert first_update["StartupScriptS3ObjectVersion"] == record["pinned"]["startup.sh"]
    assert first_update["PluginsS3ObjectVersion"] == record["pinned"]["plugins.zip"]
    options = first_update["AirflowConfigurationOptions"]
    assert options["core.default_task_retries"] == "2"  # set outside deploy.sh: kept
    assert json.loads(options["secrets.backend_kwargs"]) == {
        "connections_prefix": CONNECTIONS_PREFIX,
        "connections_lookup_pattern": "^medalflow_",
        "variables_prefix": "medalflow-it/dev/variables",
        "variables_lookup_pattern": "^medalflow_",
    }
    output = scenario["steps"]["first"]["output"]
    assert f"{ENVIRONMENT_NAME}: UPDATING" in output
    assert f"{ENVIRONMENT_NAME}: AVAILABLE" in output
    assert "smoke test: 7 DAGs present, 0 import errors" in output
    assert [call["params"]["Path"] for call in mwaa.calls("InvokeRestApi")][:2] == ["/importErrors", "/dags"]
    startup = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/startup.sh")["Body"].read().decode()
    assert f"export MEDALFLOW_LAKE_URI={LAKE_URI}" in startup
    assert "medalflow_dbt_build_budget=180" in startup


def test_the_deployment_is_recorded(scenario):
    first = scenario["steps"]["first"]
    record = first["history"][0]
    assert record["status"] == "succeeded"
    assert record["who"].startswith("arn:aws:")
    assert len(record["git_commit"]) == 40
    assert record["git_dirty"] is False
    dags = f"{PREFIX}/dags/"
    assert set(record["dags"]) == {key for key in first["objects"] if key.startswith(dags)}
    assert set(record["dags"].items()) <= set(first["versions"])
    # The DAG ids the DagBag check found are the ones the environment shows (the smoke test's list).
    assert sorted(record["dag_ids"]) == scenario["mwaa"].dag_ids(ENVIRONMENT_NAME)
    assert "medallion" in record["dag_ids"]


def test_a_rerun_changes_nothing(scenario):
    first, rerun = scenario["steps"]["first"], scenario["steps"]["rerun"]
    assert rerun["code"] == 0, rerun["output"]
    assert rerun["versions"] == first["versions"]  # not one object written, the history included
    assert f"MWAA environment {ENVIRONMENT_NAME} already runs this deployment: nothing to do" in rerun["output"]
    assert "reused" in rerun["output"]  # the manifest and the DagBag answer: no dbt, no Airflow started again


def test_a_changed_dag_and_requirements_are_deployed(scenario):
    changed, first = scenario["steps"]["changed"], scenario["steps"]["first"]
    assert changed["code"] == 0, changed["output"]
    new_versions = sorted(set(changed["versions"]) - set(first["versions"]))
    assert [key for key, _ in new_versions] == [
        f"{PREFIX}/dags/maintenance.py",
        f"{PREFIX}/deployments/history.json",
        f"{PREFIX}/requirements.txt",
    ]
    assert "1 uploaded, 0 deleted" in changed["output"]
    assert len(changed["history"]) == 2


def test_a_failed_update_is_reported_with_mwaas_error(scenario):
    failed = scenario["steps"]["update failed"]
    assert failed["code"] == 1
    assert "is UPDATE_FAILED: INCORRECT_REQUIREMENTS: pip could not install the requirements" in failed["output"]
    assert "--rollback dev" in failed["output"]
    assert failed["history"][-1]["status"] == "failed"


def test_rollback_returns_to_the_previous_deployment(scenario):
    steps, s3, mwaa = scenario["steps"], scenario["s3"], scenario["mwaa"]
    changed_record = steps["changed"]["history"][-1]
    first_record = steps["first"]["history"][0]

    # After the failed update MWAA runs the changed deployment still: the rollback goes back to it (a retry of
    # nothing), and records that it did.
    rollback = steps["rollback"]
    assert rollback["code"] == 0, rollback["output"]
    assert rollback["history"][-1]["restores"] == changed_record["id"]
    assert rollback["environment"]["RequirementsS3ObjectVersion"] == changed_record["pinned"]["requirements.txt"]

    # The next rollback steps back once more, to the first deployment: its DAG objects and its pinned versions.
    again = steps["rollback again"]
    assert again["code"] == 0, again["output"]
    assert again["history"][-1]["restores"] == first_record["id"]
    assert again["environment"]["Status"] == "AVAILABLE"
    assert again["environment"]["RequirementsS3ObjectVersion"] == first_record["pinned"]["requirements.txt"]
    for key, version in first_record["dags"].items():
        old = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == old, key
    assert f"restore s3://{BUCKET}/{PREFIX}/dags/maintenance.py" in again["output"]
    assert "rolled back to " + first_record["id"] in again["output"]
    assert mwaa.problems == []

    nothing = steps["nothing left to roll back"]
    assert nothing["code"] == 1
    assert "nothing earlier to roll back to" in nothing["output"]
    assert nothing["versions"] == again["versions"]


def test_a_rollback_dry_run_writes_nothing(scenario):
    steps = scenario["steps"]
    dry = steps["rollback dry run"]
    assert dry["code"] == 0, dry["output"]
    assert dry["versions"] == steps["rollback"]["versions"]
    assert dry["environment"] == steps["rollback"]["environment"]
    assert f"would restore s3://{BUCKET}/{PREFIX}/dags/maintenance.py" in dry["output"]
    assert "would change RequirementsS3ObjectVersion" in dry["output"]


# --- secrets --------------------------------------------------------------------------------------------------------


def test_connections_are_pushed_idempotently(scenario):
    steps, secretsmanager = scenario["steps"], scenario["secretsmanager"]
    assert steps["secrets"]["code"] == 0, steps["secrets"]["output"]
    assert f"{CONNECTIONS_PREFIX}/medalflow_erp: created" in steps["secrets"]["output"]
    assert "2 created, 0 updated, 0 unchanged" in steps["secrets"]["output"]
    assert "0 created, 0 updated, 2 unchanged" in steps["secrets again"]["output"]
    value = json.loads(secretsmanager.get_secret_value(SecretId=f"{CONNECTIONS_PREFIX}/medalflow_erp")["SecretString"])
    assert value["password"] == CANARIES["connection password"]
    assert value["conn_type"] == "postgres"


def test_the_secrets_backend_reads_the_pushed_connection(scenario, monkeypatch, moto_endpoint):
    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "t")
    first_update = scenario["mwaa"].calls("UpdateEnvironment")[0]["params"]
    kwargs = json.loads(first_update["AirflowConfigurationOptions"]["secrets.backend_kwargs"])
    backend = SecretsManagerBackend(**kwargs, region_name="us-east-1")
    connection = backend.get_connection("medalflow_erp")
    assert connection.host == "erp.example.com"
    assert connection.password == CANARIES["connection password"]
    assert backend.get_connection("aws_default") is None  # not ours: never looked up


# --- no secret anywhere ---------------------------------------------------------------------------------------------


def test_no_canary_in_any_output_or_object_version(scenario):
    s3 = scenario["s3"]
    for output in scenario["outputs"]:
        for name, canary in CANARIES.items():
            assert canary not in output, name
    listed = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    assert len(listed) > 100
    for item in listed:
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"], VersionId=item["VersionId"])["Body"].read()
        for name, canary in CANARIES.items():
            assert canary.encode() not in body, (name, item["Key"])
    logs = scenario["root"] / ".local" / "deploy"
    for path in (path for path in logs.rglob("*") if path.is_file()):
        for name, canary in CANARIES.items():
            assert canary.encode() not in path.read_bytes(), (name, path)


def test_a_first_deployment_uploads_before_the_environment_exists_then_is_recorded(scenario):
    steps, mwaa = scenario["steps"], scenario["mwaa"]
    upload = steps["hom upload only"]
    assert upload["code"] == 0, upload["output"]
    assert {"dags/medallion.py", "requirements.txt", "startup.sh", "plugins.zip"} <= set(upload["objects"])
    assert "the mwaa stack's parameters (infra/README.md): PluginsS3ObjectVersion=" in upload["output"]

    first = steps["hom first deploy"]
    assert first["code"] == 0, first["output"]
    assert "MWAA environment medalflow-hom already runs this deployment: nothing to do" in first["output"]
    assert "smoke-testing and recording it" in first["output"]
    assert not [call for call in mwaa.calls("UpdateEnvironment") if call["params"]["Name"] == "medalflow-hom"]
    history = json.loads(scenario["s3"].get_object(Bucket=BUCKET, Key="deployments/history.json")["Body"].read())
    assert [record["environment"] for record in history["deployments"]] == ["hom"]
