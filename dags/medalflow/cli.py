"""Command line for the project's own tooling: ``python -m medalflow.cli {dbt,sqlfluff,demo} ...``.

The Makefile calls it; it runs dbt and sqlfluff from dbt's own virtualenv with the project's settings.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from medalflow.settings import DBT_PROFILE_NAME, Settings, dbt_environment, get_settings


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
    environment = dbt_process_environment(settings)
    completed = subprocess.run(dbt_command(settings, arguments), env=environment, check=False)
    if check and completed.returncode:
        raise SystemExit(f"dbt {' '.join(arguments)} failed with exit code {completed.returncode}")
    return completed.returncode


def run_sqlfluff(settings: Settings | None = None) -> int:
    """Lint the dbt models with sqlfluff's dbt templater (from dbt's virtualenv)."""
    settings = settings or get_settings()
    sqlfluff = str(Path(settings.dbt_executable).with_name("sqlfluff"))
    environment = dbt_process_environment(settings)
    command = [sqlfluff, "lint", "models", "tests"]
    return subprocess.run(command, env=environment, cwd=settings.dbt_project_dir, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medalflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dbt = commands.add_parser("dbt", help="run dbt with the project's settings, e.g. `dbt parse`")
    dbt.add_argument("arguments", nargs=argparse.REMAINDER)
    commands.add_parser("sqlfluff", help="lint the dbt project's SQL")
    demo = commands.add_parser("demo", help="run the whole pipeline on the embedded default and summarise it")
    demo.add_argument("--days", type=int, default=3, help="how many days of data to run (default 3)")
    demo.add_argument("--start", default="2026-01-05", help="first day of the demo window (default 2026-01-05)")
    demo.add_argument("--scale", type=float, default=1.0, help="size of the demo data (default 1.0)")
    demo.add_argument("--seed", type=int, default=42)
    options = parser.parse_args(argv)

    if options.command == "dbt":
        return run_dbt(options.arguments, check=False)
    if options.command == "sqlfluff":
        return run_sqlfluff()
    from medalflow.demo.pipeline import run_demo

    return run_demo(days=options.days, start=options.start, scale=options.scale, seed=options.seed)


if __name__ == "__main__":
    sys.exit(main())
