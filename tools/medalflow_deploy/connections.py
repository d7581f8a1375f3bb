"""``./deploy.sh secrets <env>``: the project's Airflow connections pushed to AWS Secrets Manager.

The connections come from a git-ignored file, ``deploy/connections.<env>.yml`` (deploy/connections.example.yml
documents the format): a mapping of conn_id to Airflow connection fields (conn_type, host, login, password, port,
schema, extra). Each becomes the secret ``<SECRETS_CONNECTIONS_PREFIX>/<conn_id>`` holding the connection as JSON,
which the Amazon provider's SecretsManagerBackend reads. Idempotent: a secret is created when missing, given a new
value only when it differs, and left alone otherwise. No value is ever printed: only conn_ids and what happened.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from medalflow_deploy.artifacts import Log
from medalflow_deploy.config import PLACEHOLDER, DeployConfig, DeployError
from medalflow_deploy.s3sync import error_code

CONNECTION_FIELDS = ("conn_type", "host", "login", "password", "port", "schema", "extra", "description")


def connections_file(root: Path, environment: str) -> Path:
    return root / "deploy" / f"connections.{environment}.yml"


def read_connections(path: Path, config: DeployConfig) -> dict[str, dict[str, Any]]:
    """conn_id -> the connection's fields, checked; errors name the file, conn_id and field, never a value."""
    if not path.is_file():
        raise DeployError(
            f"{path} not found: copy deploy/connections.example.yml to it and fill in {config.environment}'s "
            "connections (the file is git-ignored)"
        )
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise DeployError(f"{path}: not valid YAML{where}") from None
    if not isinstance(document, dict) or not isinstance(document.get("connections"), dict):
        raise DeployError(f"{path}: expected a top-level `connections:` mapping of conn_id to fields")
    connections = {}
    for conn_id, fields in document["connections"].items():
        where = f"{path}: connection {conn_id}"
        if not re.match(config.lookup_pattern, str(conn_id), re.IGNORECASE):
            raise DeployError(
                f"{where}: Airflow would never look it up in Secrets Manager (SECRETS_LOOKUP_PATTERN "
                f"{config.lookup_pattern!r}); name it to match, or keep it out of this file"
            )
        if not isinstance(fields, dict):
            raise DeployError(f"{where}: expected a mapping of connection fields")
        unknown = sorted(set(fields) - set(CONNECTION_FIELDS))
        if unknown:
            raise DeployError(f"{where}: unknown fields {', '.join(unknown)} (known: {', '.join(CONNECTION_FIELDS)})")
        placeholders = sorted(name for name, value in fields.items() if PLACEHOLDER in str(value))
        if placeholders:
            raise DeployError(f"{where}: placeholders ({PLACEHOLDER}) still in {', '.join(placeholders)}")
        if not fields.get("conn_type"):
            raise DeployError(f"{where}: conn_type is required")
        if "port" in fields and fields["port"] is not None and not str(fields["port"]).isdigit():
            raise DeployError(f"{where}: port must be a number")
        if isinstance(fields.get("extra"), str):
            try:
                json.loads(fields["extra"])
            except ValueError:
                raise DeployError(f"{where}: extra must be a mapping or a JSON object") from None
        connections[str(conn_id)] = {name: value for name, value in fields.items() if value is not None}
    if not connections:
        raise DeployError(f"{path}: no connections")
    return connections


def secret_value(fields: dict[str, Any]) -> str:
    """The connection as the JSON SecretsManagerBackend reads (extra as a JSON string, as Airflow stores it)."""
    value = dict(fields)
    if isinstance(value.get("extra"), dict):
        value["extra"] = json.dumps(value["extra"], sort_keys=True)
    if "port" in value:
        value["port"] = int(value["port"])
    return json.dumps(value, sort_keys=True)


def push_connections(
    secretsmanager: Any, config: DeployConfig, connections: dict[str, dict[str, Any]], dry_run: bool, log: Log
) -> dict[str, str]:
    """Create or update each connection's secret only when it differs; conn_id -> created/updated/unchanged."""
    outcome = {}
    for conn_id, fields in sorted(connections.items()):
        name = f"{config.connections_prefix.rstrip('/')}/{conn_id}"
        wanted = secret_value(fields)
        try:
            current = secretsmanager.get_secret_value(SecretId=name).get("SecretString")
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            current = None
        if current is None:
            if not dry_run:
                secretsmanager.create_secret(
                    Name=name, SecretString=wanted, Description=f"medalflow {config.environment}: connection {conn_id}"
                )
            outcome[conn_id] = "created"
        elif _same(current, wanted):
            outcome[conn_id] = "unchanged"
        else:
            if not dry_run:
                secretsmanager.put_secret_value(SecretId=name, SecretString=wanted)
            outcome[conn_id] = "updated"
        verb = outcome[conn_id] if not dry_run or outcome[conn_id] == "unchanged" else f"would be {outcome[conn_id]}"
        log(f"  {name}: {verb}")
    return outcome


def _same(current: str, wanted: str) -> bool:
    try:
        return json.loads(current) == json.loads(wanted)
    except ValueError:
        return False
