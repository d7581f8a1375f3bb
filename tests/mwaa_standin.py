"""A stateful stand-in for AWS MWAA's API over HTTP, for deploy tests (moto has no MWAA backend).

Point botocore at it with ``AWS_ENDPOINT_URL_MWAA`` (deploy turns off MWAA's host prefix for a non-AWS endpoint).
Every request is checked against botocore's service model: the operation is found from the method and path, and the
parameters (path and body) are validated with botocore's ParamValidator against the operation's input shape, so a
request MWAA would reject fails here too. An unknown operation or an invalid request is answered with an error and
remembered: tests assert ``standin.problems == []``.

What it models:

* GetEnvironment: the environment's description (Status, paths, object versions, options, LastUpdate);
* UpdateEnvironment: status UPDATING, then AVAILABLE after ``polls_per_update`` GetEnvironment calls; or, when told
  with ``fail_next_update(code, message)``, UPDATE_FAILED with ``LastUpdate.Error`` and the previous settings kept
  (MWAA rolls a failed update back);
* InvokeRestApi: Airflow's REST API v2 ``GET /importErrors`` and ``GET /dags``, answered from what the environment
  would load: the DAG ids declared in its DAG folder in S3 (``dag_id="..."`` in a DAG file, ``dag_id:`` in a source
  config), and the import errors set in ``import_errors``;
* CreateCliToken: a token.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.session
from botocore.validate import ParamValidator

MWAA_MODEL = botocore.session.get_session().get_service_model("mwaa")
ROUTES = []
for _name in MWAA_MODEL.operation_names:
    _operation = MWAA_MODEL.operation_model(_name)
    _pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", _operation.http["requestUri"].split("?")[0])
    ROUTES.append((_operation.http["method"], re.compile(f"^{_pattern}$"), _operation))
SUPPORTED = {"GetEnvironment", "UpdateEnvironment", "InvokeRestApi", "CreateCliToken"}
# UpdateEnvironment fields that land in the description as they are.
DESCRIBED_FIELDS = {
    "DagS3Path",
    "RequirementsS3Path",
    "RequirementsS3ObjectVersion",
    "PluginsS3Path",
    "PluginsS3ObjectVersion",
    "StartupScriptS3Path",
    "StartupScriptS3ObjectVersion",
    "AirflowConfigurationOptions",
    "AirflowVersion",
    "EnvironmentClass",
    "MaxWorkers",
    "MinWorkers",
}


class MwaaStandIn:
    def __init__(
        self, s3: Any, bucket: str, account: str = "123456789012", region: str = "us-east-1", polls_per_update: int = 2
    ) -> None:
        self.s3, self.bucket, self.account, self.region = s3, bucket, account, region
        self.polls_per_update = polls_per_update
        self.environments: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.import_errors: list[dict[str, Any]] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self._failure: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what tests set up and read -----------------------------------------------------------------------------

    def add_environment(self, name: str, dags_path: str = "dags", **description: Any) -> None:
        self.environments[name] = {
            "Name": name,
            "Arn": f"arn:aws:airflow:{self.region}:{self.account}:environment/{name}",
            "Status": "AVAILABLE",
            "AirflowVersion": "3.3.1",
            "DagS3Path": dags_path,
            "SourceBucketArn": f"arn:aws:s3:::{self.bucket}",
            "AirflowConfigurationOptions": {},
            **description,
        }

    def fail_next_update(self, code: str, message: str) -> None:
        self._failure = (code, message)

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [request for request in self.requests if request["operation"] == operation]

    def dag_ids(self, name: str) -> list[str]:
        """What the environment would load, by the project's two ways of declaring a DAG: a ``dag_id="..."`` in a
        top-level DAG file, and a ``dag_id:`` in each source config the generator (extract_sources.py) reads."""
        prefix = self.environments[name]["DagS3Path"].rstrip("/") + "/"
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        found: set[str] = set()
        for item in listed:
            relative = item["Key"][len(prefix) :]
            if "/" not in relative and relative.endswith(".py"):
                pattern = r"""dag_id\s*=\s*["']([\w.-]+)["']"""
            elif relative.startswith("config/sources/") and relative.endswith((".yml", ".yaml")):
                pattern = r"""^\s+dag_id:\s*["']?([\w.-]+)"""
            else:
                continue
            text = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read().decode()
            found.update(re.findall(pattern, text, flags=re.MULTILINE))
        return sorted(found)

    # --- the API --------------------------------------------------------------------------------------------------

    def _get_environment(self, params: dict[str, Any]) -> tuple[int, dict]:
        name = params["Name"]
        if name not in self.environments:
            return 404, {"__type": "ResourceNotFoundException", "message": f"Environment {name} not found"}
        environment = self.environments[name]
        if environment["Status"] == "UPDATING":
            pending = self._pending[name]
            pending["polls"] -= 1
            if pending["polls"] <= 0:
                if pending["failure"]:
                    code, message = pending["failure"]
                    environment.update(pending["previous"])
                    environment["Status"] = "UPDATE_FAILED"
                    environment["LastUpdate"] = {
                        "Status": "FAILED",
                        "Error": {"ErrorCode": code, "ErrorMessage": message},
                    }
                else:
                    environment["Status"] = "AVAILABLE"
                    environment["LastUpdate"] = {"Status": "SUCCESS"}
                del self._pending[name]
        return 200, {"Environment": environment}

    def _update_environment(self, params: dict[str, Any]) -> tuple[int, dict]:
        name = params["Name"]
        if name not in self.environments:
            return 404, {"__type": "ResourceNotFoundException", "message": f"Environment {name} not found"}
        environment = self.environments[name]
        if environment["Status"] not in ("AVAILABLE", "UPDATE_FAILED"):
            return 400, {"__type": "ValidationException", "message": f"Environment is {environment['Status']}"}
        changed = {key: value for key, value in params.items() if key in DESCRIBED_FIELDS}
        self._pending[name] = {
            "polls": self.polls_per_update,
            "failure": self._failure,
            "previous": {key: environment.get(key) for key in changed},
        }
        self._failure = None
        environment.update(changed)
        environment["Status"] = "UPDATING"
        environment["LastUpdate"] = {"Status": "PENDING"}
        return 200, {"Arn": environment["Arn"]}

    def _invoke_rest_api(self, params: dict[str, Any]) -> tuple[int, dict]:
        name = params["Name"]
        if name not in self.environments:
            return 404, {"__type": "ResourceNotFoundException", "message": f"Environment {name} not found"}
        if params["Method"] != "GET":
            return 400, {"__type": "RestApiClientException", "message": "only GET is modelled"}
        path = params["Path"]
        if path == "/importErrors":
            body = {"import_errors": self.import_errors, "total_entries": len(self.import_errors)}
        elif path == "/dags":
            dag_ids = self.dag_ids(name)
            query = params.get("QueryParameters") or {}
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
            page = [{"dag_id": dag_id, "is_paused": True} for dag_id in dag_ids[offset : offset + limit]]
            body = {"dags": page, "total_entries": len(dag_ids)}
        else:
            return 400, {"__type": "RestApiClientException", "message": f"{path} is not modelled"}
        return 200, {"RestApiStatusCode": 200, "RestApiResponse": body}

    def _create_cli_token(self, params: dict[str, Any]) -> tuple[int, dict]:
        return 200, {"CliToken": "token", "WebServerHostname": f"{params['Name']}.example.com"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self
        operations: dict[str, Callable[[dict[str, Any]], tuple[int, dict]]] = {
            "GetEnvironment": self._get_environment,
            "UpdateEnvironment": self._update_environment,
            "InvokeRestApi": self._invoke_rest_api,
            "CreateCliToken": self._create_cli_token,
        }

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                body = json.loads(raw) if raw else {}
                routes = (route for route in ROUTES if route[0] == self.command)
                found = next(((op, m) for _, pattern, op in routes if (m := pattern.match(path))), None)
                if found is None:
                    standin.problems.append(f"unknown operation: {self.command} {path}")
                    return self._reply(404, {"__type": "UnknownOperationException", "message": path})
                operation, match = found
                params = {**{key: unquote(value) for key, value in match.groupdict().items()}, **body}
                with standin._lock:
                    standin.requests.append(
                        {
                            "operation": operation.name,
                            "params": params,
                            "signed": self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"),
                        }
                    )
                    report = ParamValidator().validate(params, operation.input_shape)
                    if report.has_errors():
                        standin.problems.append(f"{operation.name}: {report.generate_report()}")
                        return self._reply(400, {"__type": "ValidationException", "message": "invalid request"})
                    if operation.name not in SUPPORTED:
                        standin.problems.append(f"operation not modelled: {operation.name}")
                        return self._reply(400, {"__type": "ValidationException", "message": "not modelled"})
                    status, payload = operations[operation.name](params)
                return self._reply(status, payload)

            def do_GET(self) -> None:
                self._serve()

            def do_PATCH(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_DELETE(self) -> None:
                self._serve()

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status >= 400:
                    self.send_header("x-amzn-ErrorType", payload["__type"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
