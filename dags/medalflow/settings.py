"""Settings read from the environment, with defaults that make a clone run on a laptop.

Non-secret settings only: secrets live in Airflow connections (by conn_id), which MWAA serves from AWS Secrets Manager.
Read lazily through functions so a DAG file costs nothing at parse time and tests can change the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# dags/medalflow/settings.py -> the repository root locally; /usr/local/airflow on MWAA, where the startup script
# sets MEDALFLOW_DBT_PROJECT_DIR instead.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

ERP_CONN_ID = "medalflow_erp"
PARTNER_API_CONN_ID = "medalflow_partner_api"
AWS_CONN_ID = "aws_default"
# The profile in profiles/profiles.yml. Every dbt invocation names it and the target, as Cosmos does: dbt keeps its
# partial parse only while the invocation's profile and target flags stay the same as when it parsed.
DBT_PROFILE_NAME = "medalflow"


@dataclass(frozen=True)
class Settings:
    """Where things are. Every field has an environment variable (documented in .env.example)."""

    lake_uri: str
    dbt_target: str
    duckdb_path: str
    dbt_project_dir: Path
    dbt_profiles_dir: Path
    dbt_executable: str

    @property
    def manifest_path(self) -> Path:
        return self.dbt_project_dir / "target" / "manifest.json"


def get_settings() -> Settings:
    local = PROJECT_ROOT / ".local"
    return Settings(
        lake_uri=os.getenv("MEDALFLOW_LAKE_URI", str(local / "lake")),
        dbt_target=os.getenv("MEDALFLOW_DBT_TARGET", "duckdb"),
        duckdb_path=os.getenv("MEDALFLOW_DUCKDB_PATH", str(local / "warehouse.duckdb")),
        dbt_project_dir=Path(os.getenv("MEDALFLOW_DBT_PROJECT_DIR", str(PROJECT_ROOT / "dbt_project"))),
        dbt_profiles_dir=Path(os.getenv("MEDALFLOW_DBT_PROFILES_DIR", str(PROJECT_ROOT / "profiles"))),
        dbt_executable=os.getenv("MEDALFLOW_DBT_EXECUTABLE", str(PROJECT_ROOT / ".venv" / "dbt" / "bin" / "dbt")),
    )


# MWAA's startup script writes this file when it could not build dbt's virtualenv on a component, saying why.
DBT_STARTUP_MARKER_VARIABLE = "MEDALFLOW_DBT_STARTUP_MARKER"


class DbtUnavailableError(RuntimeError):
    """dbt cannot run on this Airflow component; the message says why and where to look."""


def dbt_startup_failure() -> str | None:
    """Why the startup script could not build dbt here (its marker file), or None. A stat, cheap at parse time."""
    marker = os.getenv(DBT_STARTUP_MARKER_VARIABLE)
    if not marker or not os.path.isfile(marker):
        return None
    with open(marker) as file:
        reason = file.read().strip() or "no reason recorded"
    return (
        f"dbt is not available on this Airflow component: the MWAA startup script could not build its virtualenv "
        f"({reason}). The startup log in CloudWatch says more; fix it and redeploy (a restart retries the build)"
    )


def require_dbt_executable(settings: Settings) -> None:
    """Fail with the reason, not "no such file", when dbt is missing (a failed startup build, an unbuilt venv)."""
    if problem := dbt_startup_failure():
        raise DbtUnavailableError(problem)
    if not os.path.isfile(settings.dbt_executable):
        raise DbtUnavailableError(
            f"dbt executable {settings.dbt_executable} not found (MEDALFLOW_DBT_EXECUTABLE): build dbt's virtualenv "
            "(`make install` locally; the startup script on MWAA)"
        )


# The key of silver's PII hashes (HMAC-SHA256, dbt_project/macros/pii.sql): this connection's password, on MWAA from
# Secrets Manager. dbt reads it from PII_KEY_VARIABLE; an empty key is refused unless the public demo key is allowed.
PII_KEY_CONN_ID = "medalflow_pii_key"
PII_KEY_VARIABLE = "MEDALFLOW_PII_KEY"
PII_ALLOW_DEMO_KEY_VARIABLE = "MEDALFLOW_PII_ALLOW_DEMO_KEY"


def pii_demo_key_allowed(settings: Settings) -> bool:
    """Whether dbt may hash PII with the public demo key when no key is set: MEDALFLOW_PII_ALLOW_DEMO_KEY when given,
    else only the laptop demo (DuckDB over a local lake). Anywhere else an empty key fails the build."""
    explicit = os.getenv(PII_ALLOW_DEMO_KEY_VARIABLE)
    if explicit is not None and explicit.strip():
        return explicit.strip().lower() == "true"
    return settings.dbt_target == "duckdb" and "://" not in settings.lake_uri


def pii_key_environment(settings: Settings) -> dict[str, str]:
    """How a Cosmos task's dbt gets the PII key: from the environment when set there (or the demo key is allowed),
    else from the connection's password, a template resolved when the task renders (never at DAG parse time; Airflow
    masks connection passwords in rendered fields and logs)."""
    if os.getenv(PII_KEY_VARIABLE) or pii_demo_key_allowed(settings):
        return {}
    return {PII_KEY_VARIABLE: "{{ conn." + PII_KEY_CONN_ID + ".password }}"}


def dbt_environment(settings: Settings | None = None) -> dict[str, str]:
    """The variables profiles.yml and the dbt sources read through env_var(). (The PII key itself is inherited from the
    process environment or comes from pii_key_environment: never a literal here.)"""
    settings = settings or get_settings()
    return {
        "MEDALFLOW_LAKE_URI": settings.lake_uri,
        "MEDALFLOW_DUCKDB_PATH": settings.duckdb_path,
        "MEDALFLOW_DBT_TARGET": settings.dbt_target,
        "DBT_PROFILES_DIR": str(settings.dbt_profiles_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        PII_ALLOW_DEMO_KEY_VARIABLE: "true" if pii_demo_key_allowed(settings) else "false",
    }
