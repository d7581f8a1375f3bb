"""Command line for the project's own tooling on a laptop: ``python -m medalflow_cli {dbt,sqlfluff,demo} ...``.

The Makefile calls it; it runs dbt and sqlfluff from dbt's own virtualenv with the project's settings. It never ships
to MWAA (only dags/ and plugins/ do).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from medalflow.dbt_commands import dbt_process_environment, run_dbt
from medalflow.settings import Settings, get_settings


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
    from medalflow_demo.pipeline import run_demo

    return run_demo(days=options.days, start=options.start, scale=options.scale, seed=options.seed)


if __name__ == "__main__":
    sys.exit(main())
