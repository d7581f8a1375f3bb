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


def dbt_environment(settings: Settings | None = None) -> dict[str, str]:
    """The variables profiles.yml and the dbt sources read through env_var()."""
    settings = settings or get_settings()
    return {
        "MEDALFLOW_LAKE_URI": settings.lake_uri,
        "MEDALFLOW_DUCKDB_PATH": settings.duckdb_path,
        "MEDALFLOW_DBT_TARGET": settings.dbt_target,
        "DBT_PROFILES_DIR": str(settings.dbt_profiles_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
