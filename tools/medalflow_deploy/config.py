"""deploy/<env>.env: one environment's deployment settings, read and checked before anything touches AWS.

The file is committed and its MEDALFLOW_* settings end up in plain text in the startup script in S3, so a setting that
carries a credential is refused, by its name or by the look of its value. Error messages name the file, the line and
the setting, never the value: the value may be the very secret the check is about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENVIRONMENTS = ("dev", "hom", "prod")
PLACEHOLDER = "REPLACE_ME"
SECRETS_MANAGER_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
# The secrets backend looks up only the project's connections and variables (medalflow_erp, ...); anything else,
# MWAA's aws_default (the execution role) first of all, stays with Airflow's own sources and costs no
# Secrets Manager call.
DEFAULT_LOOKUP_PATTERN = "^medalflow_"

# deploy/<env>.env: the deployment settings, each required unless it has a default here.
DEPLOY_SETTINGS: dict[str, str | None] = {
    "MWAA_ENVIRONMENT_NAME": None,
    "AWS_ACCOUNT_ID": None,
    "AWS_REGION": None,
    "MWAA_BUCKET": None,
    "MWAA_PREFIX": "",
    "SECRETS_CONNECTIONS_PREFIX": None,
    "SECRETS_VARIABLES_PREFIX": None,
    "SECRETS_LOOKUP_PATTERN": DEFAULT_LOOKUP_PATTERN,
    # How often and how long deploy.sh polls an updating environment (MWAA takes 10 to 30 minutes).
    "MWAA_UPDATE_POLL_SECONDS": "30",
    "MWAA_UPDATE_TIMEOUT_SECONDS": "3600",
    # The startup script's own budget for building dbt's virtualenv, well inside MWAA's 5-minute limit.
    "STARTUP_DBT_BUILD_BUDGET_SECONDS": "180",
}
NUMERIC_SETTINGS = ("MWAA_UPDATE_POLL_SECONDS", "MWAA_UPDATE_TIMEOUT_SECONDS", "STARTUP_DBT_BUILD_BUDGET_SECONDS")
# MWAA kills a startup script after 5 minutes; the rest of the script (and uv's own install) needs some of it.
STARTUP_LIMIT_SECONDS = 300
STARTUP_MAX_BUDGET_SECONDS = 240
# The file says which environment it is for, so `--config dev.env prod` cannot deploy dev's settings to prod.
ENVIRONMENT_SETTING = "MEDALFLOW_ENVIRONMENT"
# MEDALFLOW_* lines are runtime settings the startup script exports to every Airflow process; these must be there.
REQUIRED_RUNTIME_SETTINGS = (ENVIRONMENT_SETTING, "MEDALFLOW_DBT_TARGET", "MEDALFLOW_LAKE_URI")
# The startup script derives these from MWAA's layout; a value in deploy/<env>.env would only be overwritten.
LAYOUT_SETTINGS = ("MEDALFLOW_DBT_EXECUTABLE", "MEDALFLOW_DBT_PROJECT_DIR", "MEDALFLOW_DBT_PROFILES_DIR")

# A name that says it holds a credential.
CREDENTIAL_NAME = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY|API_KEY|CREDENTIAL|DSN")
# Values that look like credentials, whatever the name: what each looks like, for the message.
CREDENTIAL_VALUES = (
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE), "a URL with user:password@"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
)
# A long run of token characters mixing upper case, lower case and digits: an API token or an AWS secret key.
# Bucket names, paths and ARNs are lower case or split by / and :, so they do not match.
TOKEN_RUN = re.compile(r"[A-Za-z0-9+=_\-]{32,}")


class DeployError(Exception):
    """A deployment cannot go ahead; the message says what to fix (and never quotes a setting's value)."""


def looks_like_a_credential(name: str, value: str) -> str | None:
    """What makes the setting look like a credential (for the error message), or None."""
    if name not in DEPLOY_SETTINGS and CREDENTIAL_NAME.search(name):
        return "its name says it holds a credential"
    for pattern, description in CREDENTIAL_VALUES:
        if pattern.search(value):
            return f"its value looks like {description}"
    for run in TOKEN_RUN.findall(value):
        if re.search(r"[a-z]", run) and re.search(r"[A-Z]", run) and re.search(r"[0-9]", run):
            return "its value looks like a token or secret key"
    return None


@dataclass(frozen=True)
class DeployConfig:
    """One environment's deployment settings, from deploy/<env>.env."""

    environment: str
    mwaa_environment_name: str
    account_id: str
    region: str
    bucket: str
    prefix: str
    connections_prefix: str
    variables_prefix: str
    lookup_pattern: str = DEFAULT_LOOKUP_PATTERN
    poll_seconds: float = 30.0
    timeout_seconds: float = 3600.0
    startup_budget_seconds: int = 180
    runtime_settings: Mapping[str, str] = field(default_factory=dict)

    def key(self, relative: str) -> str:
        """The S3 key of a path relative to the environment's prefix."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    @property
    def dags_path(self) -> str:
        return self.key("dags")

    @property
    def dbt_target(self) -> str:
        return self.runtime_settings["MEDALFLOW_DBT_TARGET"]

    def secrets_backend_kwargs(self) -> dict[str, str]:
        """SecretsManagerBackend's arguments; infra/ sets the same on the environment it creates."""
        return {
            "connections_prefix": self.connections_prefix,
            "connections_lookup_pattern": self.lookup_pattern,
            "variables_prefix": self.variables_prefix,
            "variables_lookup_pattern": self.lookup_pattern,
        }

    def airflow_configuration_options(self) -> dict[str, str]:
        """The Airflow options deploy owns: the project's connections and variables come from Secrets Manager."""
        return {
            "secrets.backend": SECRETS_MANAGER_BACKEND,
            "secrets.backend_kwargs": json.dumps(self.secrets_backend_kwargs(), sort_keys=True),
        }


def parse_env_file(text: str, source: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; a value may be quoted. Malformed lines are errors.

    Errors name the line number (and the name, when there is one), never the line: it may hold a secret.
    """
    settings: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not separator or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise DeployError(f"{source}:{number}: expected NAME=value (upper-case NAME); the line is not shown")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name in settings:
            raise DeployError(f"{source}:{number}: {name} is set twice")
        settings[name] = value
    return settings


def _line_numbers(text: str) -> dict[str, int]:
    numbers = {}
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip().removeprefix("export ").partition("=")[0].strip()
        if name and not name.startswith("#"):
            numbers.setdefault(name, number)
    return numbers


def load_config(environment: str, path: Path) -> DeployConfig:
    """Read and check deploy/<env>.env; every missing, unknown, placeholder or secret setting is named in one error."""
    if environment not in ENVIRONMENTS:
        raise DeployError(f"unknown environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}")
    if not path.is_file():
        raise DeployError(f"no deployment settings for {environment}: {path} not found")
    text = path.read_text()
    settings = parse_env_file(text, str(path))
    lines = _line_numbers(text)

    credentials = []
    for name, value in settings.items():
        reason = looks_like_a_credential(name, value)
        if reason:
            credentials.append(f"{path}:{lines[name]}: {name} looks like a credential ({reason})")
    if credentials:
        raise DeployError(
            "; ".join(credentials) + f". This file is committed and shipped in plain text: keep credentials in "
            f"Airflow connections, pushed to Secrets Manager with `./deploy.sh secrets {environment}` "
            "(deploy/connections.example.yml)"
        )

    declared = settings.get(ENVIRONMENT_SETTING)
    if declared and declared != environment:
        raise DeployError(
            f"{path}:{lines[ENVIRONMENT_SETTING]}: {ENVIRONMENT_SETTING} is {declared!r}, not {environment!r}: "
            f"these are {declared}'s settings; deploy {declared} with them, or pass {environment}'s file"
        )

    problems = []
    unknown = sorted(name for name in settings if name not in DEPLOY_SETTINGS and not name.startswith("MEDALFLOW_"))
    if unknown:
        problems.append(f"unknown settings {', '.join(unknown)} (known: {', '.join(DEPLOY_SETTINGS)}, MEDALFLOW_*)")
    required = [name for name, default in DEPLOY_SETTINGS.items() if default is None] + list(REQUIRED_RUNTIME_SETTINGS)
    missing = [name for name in required if not settings.get(name)]
    if missing:
        problems.append(f"missing settings {', '.join(missing)}")
    placeholders = [name for name, value in settings.items() if PLACEHOLDER in value]
    if placeholders:
        problems.append(f"placeholders ({PLACEHOLDER}) still in {', '.join(placeholders)}")
    layout = [name for name in LAYOUT_SETTINGS if name in settings]
    if layout:
        problems.append(f"{', '.join(layout)} cannot be set here: the startup script derives them from MWAA's layout")
    not_numbers = [name for name in NUMERIC_SETTINGS if name in settings and not _is_positive_number(settings[name])]
    if not_numbers:
        problems.append(f"{', '.join(not_numbers)} must be a number of seconds above 0")
    elif int(float(settings.get("STARTUP_DBT_BUILD_BUDGET_SECONDS", "180"))) > STARTUP_MAX_BUDGET_SECONDS:
        problems.append(
            f"STARTUP_DBT_BUILD_BUDGET_SECONDS is above {STARTUP_MAX_BUDGET_SECONDS}: MWAA stops a startup script "
            f"after {STARTUP_LIMIT_SECONDS} s, and the rest of the script needs time too"
        )
    account = settings.get("AWS_ACCOUNT_ID", "")
    if account and PLACEHOLDER not in account and not re.fullmatch(r"\d{12}", account):
        problems.append("AWS_ACCOUNT_ID must be the 12 digits of the environment's AWS account")
    if problems:
        raise DeployError(f"{path}: " + "; ".join(problems))

    values = {name: settings.get(name, default) or "" for name, default in DEPLOY_SETTINGS.items()}
    return DeployConfig(
        environment=environment,
        mwaa_environment_name=values["MWAA_ENVIRONMENT_NAME"],
        account_id=values["AWS_ACCOUNT_ID"],
        region=values["AWS_REGION"],
        bucket=values["MWAA_BUCKET"],
        prefix=values["MWAA_PREFIX"].strip("/"),
        connections_prefix=values["SECRETS_CONNECTIONS_PREFIX"],
        variables_prefix=values["SECRETS_VARIABLES_PREFIX"],
        lookup_pattern=values["SECRETS_LOOKUP_PATTERN"],
        poll_seconds=float(values["MWAA_UPDATE_POLL_SECONDS"]),
        timeout_seconds=float(values["MWAA_UPDATE_TIMEOUT_SECONDS"]),
        startup_budget_seconds=int(float(values["STARTUP_DBT_BUILD_BUDGET_SECONDS"])),
        runtime_settings={name: value for name, value in sorted(settings.items()) if name.startswith("MEDALFLOW_")},
    )


def _is_positive_number(value: str) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False
