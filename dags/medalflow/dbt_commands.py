"""dbt as a subprocess from its own virtualenv, with the project's settings: what the maintenance DAG runs on MWAA
and what the laptop tooling (``medalflow_cli``, the demo, the tests) runs locally."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from medalflow.settings import DBT_PROFILE_NAME, Settings, dbt_environment, get_settings, require_dbt_executable


def dbt_command(settings: Settings, arguments: Sequence[str]) -> list[str]:
    return [
        settings.dbt_executable,
        *arguments,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_profiles_dir),
        # The same flags as Cosmos's tasks, so the manifest built here leaves them a partial parse to reuse.
        "--profile",
        DBT_PROFILE_NAME,
        "--target",
        settings.dbt_target,
    ]


def dbt_process_environment(settings: Settings) -> dict[str, str]:
    """This process's environment plus the project's dbt variables; the DuckDB file's folder must exist."""
    if settings.dbt_target == "duckdb":
        Path(settings.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
    return {**os.environ, **dbt_environment(settings)}


def run_dbt(arguments: Sequence[str], settings: Settings | None = None, check: bool = True) -> int:
    """Run dbt from its virtualenv with the project, profiles and target of the settings."""
    settings = settings or get_settings()
    require_dbt_executable(settings)
    environment = dbt_process_environment(settings)
    completed = subprocess.run(dbt_command(settings, arguments), env=environment, check=False)
    if check and completed.returncode:
        raise SystemExit(f"dbt {' '.join(arguments)} failed with exit code {completed.returncode}")
    return completed.returncode


if __name__ == "__main__":
    # ``python -m medalflow.dbt_commands parse``: dbt with the project's settings where only the runtime is present
    # (the compose stack's init service builds the manifest this way).
    sys.exit(run_dbt(sys.argv[1:], check=False))
