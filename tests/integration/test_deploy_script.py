"""./deploy.sh for real: S3 on a moto server, MWAA on a recording stand-in checked against MWAA's API model.

moto has no MWAA backend, so AWS_ENDPOINT_URL_MWAA points botocore at a small HTTP server here that answers
GetEnvironment and records UpdateEnvironment; the recorded request is validated with botocore's own ParamValidator
against MWAA's service model, so a parameter MWAA would reject fails the test. Then deploy.sh runs again and must
change nothing: no new object version, no update (an update restarts MWAA).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "medalflow-mwaa-source-it"
PREFIX = "medalflow/dev"
ENVIRONMENT_NAME = "medalflow-dev"
LAKE_URI = "s3://medalflow-lake-it/lake"
SETTINGS = f"""\
MWAA_ENVIRONMENT_NAME={ENVIRONMENT_NAME}
AWS_REGION=us-east-1
MWAA_BUCKET={BUCKET}
MWAA_PREFIX={PREFIX}
SECRETS_CONNECTIONS_PREFIX=medalflow/dev/connections
SECRETS_VARIABLES_PREFIX=medalflow/dev/variables
MEDALFLOW_DBT_TARGET=athena
MEDALFLOW_LAKE_URI={LAKE_URI}
"""
UPDATE_ENVIRONMENT = botocore.session.get_session().get_service_model("mwaa").operation_model("UpdateEnvironment")


class FakeMwaa:
    """MWAA's GetEnvironment and UpdateEnvironment over HTTP, remembering every request and applying updates."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.environment = {
            "Name": ENVIRONMENT_NAME,
            "Status": "AVAILABLE",
            "Arn": f"arn:aws:airflow:us-east-1:000000000000:environment/{ENVIRONMENT_NAME}",
            "DagS3Path": "dags",
            "AirflowConfigurationOptions": {"core.default_task_retries": "2"},
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._record(None)
                self._reply({"Environment": fake.environment})

            def do_PATCH(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._record(body)
                fake.environment = {**fake.environment, **body}
                self._reply({"Arn": fake.environment["Arn"]})

            def _record(self, body):
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "body": body,
                        "signed": self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"),
                    }
                )

            def _reply(self, payload):
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def updates(self) -> list[dict]:
        return [request for request in self.requests if request["method"] == "PATCH"]


def versions_in(s3) -> list[tuple[str, str]]:
    listed = s3.list_object_versions(Bucket=BUCKET)
    return sorted(
        (item["Key"], item["VersionId"]) for item in listed.get("Versions", []) + listed.get("DeleteMarkers", [])
    )


def objects_in(s3) -> dict[str, str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


@pytest.fixture(scope="module")
def deployment(moto_endpoint, tmp_path_factory):
    """A dry run, a deployment and a rerun against the same bucket and environment; what each left behind."""
    settings = tmp_path_factory.mktemp("deploy") / "dev.env"
    settings.write_text(SETTINGS)
    mwaa = FakeMwaa()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ENDPOINT_URL_MWAA=mwaa.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dags/retired_dag.py", Body=b"# gone from the project")

    def run(*arguments: str) -> dict:
        started = time.monotonic()
        completed = subprocess.run(
            [str(PROJECT_ROOT / "deploy.sh"), "--config", str(settings), *arguments, "dev"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return {
            "output": completed.stdout,
            "seconds": time.monotonic() - started,
            "objects": objects_in(s3),
            "versions": versions_in(s3),
            "requests": list(mwaa.requests),
        }

    return {"s3": s3, "mwaa": mwaa, "dry": run("--dry-run"), "first": run(), "second": run()}


def test_a_dry_run_writes_nothing(deployment):
    dry = deployment["dry"]
    assert list(dry["objects"]) == [f"{PREFIX}/dags/retired_dag.py"]
    assert [request["method"] for request in dry["requests"]] == ["GET"]
    assert f"would upload s3://{BUCKET}/{PREFIX}/dags/medallion.py" in dry["output"]
    assert f"would delete s3://{BUCKET}/{PREFIX}/dags/retired_dag.py" in dry["output"]
    assert f"would update MWAA environment {ENVIRONMENT_NAME}" in dry["output"]
    assert "dry run: nothing was written" in dry["output"]


def test_the_objects_land_under_the_right_keys(deployment):
    keys = set(deployment["first"]["objects"])
    dags = f"{PREFIX}/dags/"
    expected_python = {
        dags + path.relative_to(PROJECT_ROOT / "dags").as_posix()
        for path in (PROJECT_ROOT / "dags").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected_python
    assert expected_python <= keys
    assert {dags + "medallion.py", dags + "medalflow/settings.py", dags + "config/sources/erp.yml"} <= keys
    assert {dags + "dbt_project/dbt_project.yml", dags + "profiles/profiles.yml"} <= keys
    assert [key for key in keys if "/target/" in key] == [dags + "dbt_project/target/manifest.json"]
    assert not [key for key in keys if "__pycache__" in key or key.endswith(".pyc") or "/logs/" in key]
    assert dags + "retired_dag.py" not in keys  # gone from the project, so gone from MWAA
    pinned = {f"{PREFIX}/requirements.txt", f"{PREFIX}/startup.sh", f"{PREFIX}/plugins.zip"}
    assert {key for key in keys if not key.startswith(dags)} == pinned

    s3 = deployment["s3"]

    def body(key: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    assert body(f"{PREFIX}/requirements.txt") == (PROJECT_ROOT / "requirements" / "requirements.txt").read_bytes()
    manifest = PROJECT_ROOT / "dbt_project" / "target" / "manifest.json"
    assert body(dags + "dbt_project/target/manifest.json") == manifest.read_bytes()
    startup = body(f"{PREFIX}/startup.sh").decode()
    assert f"export MEDALFLOW_LAKE_URI={LAKE_URI}" in startup
    subprocess.run(["bash", "-n"], input=startup, text=True, check=True)


def test_the_environment_update_fits_mwaas_api(deployment):
    updates = [request for request in deployment["first"]["requests"] if request["method"] == "PATCH"]
    assert len(updates) == 1
    update = updates[0]
    assert update["signed"]
    assert update["path"] == f"/environments/{ENVIRONMENT_NAME}"
    params = {"Name": unquote(update["path"].rsplit("/", 1)[1]), **update["body"]}
    report = ParamValidator().validate(params, UPDATE_ENVIRONMENT.input_shape)
    assert not report.has_errors(), report.generate_report()

    s3 = deployment["s3"]

    def version(key: str) -> str:
        return s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["VersionId"]

    assert params["DagS3Path"] == f"{PREFIX}/dags"
    assert params["RequirementsS3Path"] == f"{PREFIX}/requirements.txt"
    assert params["RequirementsS3ObjectVersion"] == version("requirements.txt")
    assert params["StartupScriptS3Path"] == f"{PREFIX}/startup.sh"
    assert params["StartupScriptS3ObjectVersion"] == version("startup.sh")
    assert params["PluginsS3Path"] == f"{PREFIX}/plugins.zip"
    assert params["PluginsS3ObjectVersion"] == version("plugins.zip")
    options = params["AirflowConfigurationOptions"]
    assert options["core.default_task_retries"] == "2"  # set outside deploy.sh: kept
    assert options["secrets.backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    assert json.loads(options["secrets.backend_kwargs"]) == {
        "connections_prefix": "medalflow/dev/connections",
        "variables_prefix": "medalflow/dev/variables",
    }


def test_the_validator_would_catch_a_request_mwaa_rejects():
    wrong = {"Name": ENVIRONMENT_NAME, "RequirementsS3ObjectVersion": 7, "StartupScriptVersion": "v1"}
    report = ParamValidator().validate(wrong, UPDATE_ENVIRONMENT.input_shape)
    assert report.has_errors()
    assert "RequirementsS3ObjectVersion" in report.generate_report()
    assert "StartupScriptVersion" in report.generate_report()


def test_a_rerun_changes_nothing(deployment):
    first, second = deployment["first"], deployment["second"]
    assert second["objects"] == first["objects"]
    assert second["versions"] == first["versions"]  # not one object written again
    assert [request["method"] for request in second["requests"][len(first["requests"]) :]] == ["GET"]
    assert f"MWAA environment {ENVIRONMENT_NAME} already runs this deployment: not updated" in second["output"]
    assert "0 uploaded, 0 deleted" in second["output"]
    assert second["seconds"] < 30
