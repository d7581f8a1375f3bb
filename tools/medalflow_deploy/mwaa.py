"""The MWAA half of a deployment: the environment checked, updated, waited for, and smoke-tested.

An update restarts every component and takes MWAA 10 to 30 minutes; deploy.sh waits for it (GetEnvironment every
MWAA_UPDATE_POLL_SECONDS) and reports MWAA's own error when it fails. The smoke test then asks the environment's
Airflow, through MWAA's InvokeRestApi (Airflow's REST API v2), whether every DAG file imported and every DAG the
deployment ships is there.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from medalflow_deploy.artifacts import Log
from medalflow_deploy.config import DeployConfig, DeployError
from medalflow_deploy.s3sync import error_code

# MWAA accepts an update in these states (UPDATE_FAILED: a retry, or a rollback of the failed update).
UPDATABLE_STATUSES = ("AVAILABLE", "UPDATE_FAILED")
# The DAG processor parses the new files within a few minutes of the restart.
SMOKE_TEST_TIMEOUT_SECONDS = 600
# Airflow options whose values are shown masked in what deploy prints.
# (Matched on the option's name within its section: the [secrets] section itself holds nothing secret.)
SECRET_OPTION = re.compile(r"password|secret|token|fernet|sql_alchemy_conn|key$", re.IGNORECASE)


def aws_clients(region: str) -> dict[str, Any]:
    """S3, MWAA, STS and Secrets Manager clients; AWS_ENDPOINT_URL* and the usual credential chain apply."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    clients = {name: session.client(name) for name in ("s3", "mwaa", "sts", "secretsmanager")}
    hostname = urlsplit(clients["mwaa"].meta.endpoint_url).hostname or ""
    if "amazonaws.com" not in hostname:
        # MWAA's API puts "api." or "env." in front of the host; an emulator on 127.0.0.1 has no such names.
        clients["mwaa"] = session.client("mwaa", config=Config(inject_host_prefix=False))
    return clients


def get_environment(mwaa: Any, config: DeployConfig) -> dict[str, Any]:
    """GetEnvironment's description; a missing environment is named (a typo in MWAA_ENVIRONMENT_NAME, say)."""
    try:
        return mwaa.get_environment(Name=config.mwaa_environment_name)["Environment"]
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            raise DeployError(
                f"no MWAA environment {config.mwaa_environment_name!r} in {config.region}: check "
                "MWAA_ENVIRONMENT_NAME and AWS_REGION, or create it first (infra/README.md; deploy.sh updates an "
                "environment, it does not create one)"
            ) from error
        raise


def check_updatable(environment: Mapping[str, Any], config: DeployConfig) -> None:
    status = environment.get("Status", "UNKNOWN")
    if status not in UPDATABLE_STATUSES:
        raise DeployError(
            f"MWAA environment {config.mwaa_environment_name} is {status}: it accepts an update only when "
            f"{' or '.join(UPDATABLE_STATUSES)}; rerun deploy.sh once it is (nothing was uploaded)"
        )


def update_request(config: DeployConfig, versions: Mapping[str, str], current_options: Mapping[str, str]) -> dict:
    """UpdateEnvironment's parameters: paths and versions of the uploads, and deploy's Airflow options merged into
    the ones the environment has (options set elsewhere, e.g. by infra/, are kept)."""
    request: dict[str, Any] = {
        "Name": config.mwaa_environment_name,
        "DagS3Path": config.dags_path,
        "RequirementsS3Path": config.key("requirements.txt"),
        "RequirementsS3ObjectVersion": versions["requirements.txt"],
        "StartupScriptS3Path": config.key("startup.sh"),
        "StartupScriptS3ObjectVersion": versions["startup.sh"],
        "AirflowConfigurationOptions": {**current_options, **_owned_options(config, current_options)},
    }
    if "plugins.zip" in versions:
        request["PluginsS3Path"] = config.key("plugins.zip")
        request["PluginsS3ObjectVersion"] = versions["plugins.zip"]
    return request


def _owned_options(config: DeployConfig, current_options: Mapping[str, str]) -> dict[str, str]:
    """Deploy's options, keeping the environment's own spelling of a JSON value that means the same (infra/mwaa.yaml
    writes backend_kwargs in its own key order and spacing): an equal value must not restart the environment."""
    owned = config.airflow_configuration_options()
    for option, wanted in owned.items():
        current = current_options.get(option)
        if current is not None and current != wanted and _same_json(current, wanted):
            owned[option] = current
    return owned


def _same_json(first: str, second: str) -> bool:
    try:
        return json.loads(first) == json.loads(second)
    except ValueError:
        return False


def _shown(option: str, value: Any) -> str:
    name = option.split(".", 1)[-1]
    return "****" if value is not None and SECRET_OPTION.search(name) else json.dumps(value)


def environment_changes(environment: Mapping[str, Any], request: Mapping[str, Any]) -> list[str]:
    """What the request would change in the environment, one line per field with old and new values (an option
    whose name says it is secret is masked)."""
    changes = []
    for name, wanted in request.items():
        current = environment.get(name)
        if name == "AirflowConfigurationOptions":
            current = current or {}
            changes += [
                f"{name}[{option}]: {_shown(option, current.get(option))} -> {_shown(option, wanted[option])}"
                for option in sorted(wanted)
                if current.get(option) != wanted[option]
            ]
        elif name != "Name" and current != wanted:
            changes.append(f"{name}: {current} -> {wanted}")
    return changes


def wait_until_available(
    mwaa: Any,
    config: DeployConfig,
    log: Log,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll GetEnvironment until the update ends; AVAILABLE returns, UPDATE_FAILED or the timeout raise."""
    started = clock()
    last_status = None
    while True:
        environment = get_environment(mwaa, config)
        status = environment.get("Status")
        if status != last_status:
            log(f"  {config.mwaa_environment_name}: {status} ({clock() - started:.0f} s)")
            last_status = status
        if status == "AVAILABLE":
            return environment
        if status in ("UPDATE_FAILED", "UNAVAILABLE", "CREATE_FAILED", "DELETED"):
            error = (environment.get("LastUpdate") or {}).get("Error") or {}
            raise DeployError(
                f"MWAA environment {config.mwaa_environment_name} is {status}: "
                f"{error.get('ErrorCode', 'no error code')}: {error.get('ErrorMessage', 'no error message')}. "
                "The CloudWatch logs of the environment say more; `./deploy.sh --rollback "
                f"{config.environment}` returns to the previous deployment"
            )
        if clock() - started > config.timeout_seconds:
            raise DeployError(
                f"MWAA environment {config.mwaa_environment_name} is still {status} after "
                f"{config.timeout_seconds:.0f} s (MWAA_UPDATE_TIMEOUT_SECONDS): the update goes on in AWS; check "
                "it in the MWAA console and rerun deploy.sh once it is AVAILABLE"
            )
        sleep(config.poll_seconds)


def invoke_rest_api(mwaa: Any, config: DeployConfig, path: str, query: Mapping[str, Any] | None = None) -> Any:
    """One GET on the environment's Airflow REST API (v2) through MWAA."""
    request: dict[str, Any] = {"Name": config.mwaa_environment_name, "Path": path, "Method": "GET"}
    if query:
        request["QueryParameters"] = dict(query)
    try:
        response = mwaa.invoke_rest_api(**request)
    except Exception as error:
        code = error_code(error)
        if code in ("RestApiClientException", "RestApiServerException"):
            raise DeployError(f"smoke test: Airflow answered GET {path} with an error ({code})") from error
        raise
    return response.get("RestApiResponse") or {}


def list_dag_ids(mwaa: Any, config: DeployConfig) -> set[str]:
    dag_ids: set[str] = set()
    offset = 0
    while True:
        page = invoke_rest_api(mwaa, config, "/dags", {"limit": 100, "offset": offset})
        dags = page.get("dags", [])
        dag_ids.update(dag["dag_id"] for dag in dags)
        offset += len(dags)
        if not dags or offset >= page.get("total_entries", 0):
            return dag_ids


def smoke_test(
    mwaa: Any,
    config: DeployConfig,
    expected_dag_ids: Iterable[str],
    log: Log,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Zero import errors and every expected DAG present, waiting (up to SMOKE_TEST_TIMEOUT_SECONDS, or the update
    timeout when shorter) for the DAG processor to parse the new files after the restart."""
    expected = set(expected_dag_ids)
    timeout = min(config.timeout_seconds, SMOKE_TEST_TIMEOUT_SECONDS)
    started = clock()
    while True:
        errors = invoke_rest_api(mwaa, config, "/importErrors", {"limit": 100})
        present = list_dag_ids(mwaa, config)
        missing = sorted(expected - present)
        import_errors = errors.get("import_errors", [])
        if not import_errors and not missing:
            log(f"  smoke test: {len(expected)} DAGs present, 0 import errors")
            return
        if clock() - started > timeout:
            files = sorted({item.get("filename", "?") for item in import_errors})
            raise DeployError(
                f"smoke test failed on {config.mwaa_environment_name}: "
                f"{errors.get('total_entries', len(import_errors))} import errors ({', '.join(files) or 'none'}); "
                f"DAGs missing: {', '.join(missing) or 'none'}. The DAG processor's logs in CloudWatch say why; "
                f"`./deploy.sh --rollback {config.environment}` returns to the previous deployment"
            )
        sleep(config.poll_seconds)
