"""What the maintenance DAG does: dbt docs, source freshness, and Iceberg upkeep on Athena.

* **Docs**: ``dbt docs generate`` into a temporary target folder (never the project's own ``target/``, which the
  medallion DAG reads its manifest from), then published to the lake (``<lake>/_docs/dbt``, S3 on AWS) where the
  Airflow plugin ``plugins/medalflow_dbt_docs.py`` serves it.
* **Freshness**: ``dbt source freshness`` over ``MEDALFLOW_FRESHNESS_SELECT`` (every source by default); a source past
  its ``error_after`` fails the task, so its failure notification names it. The results are kept with the run's
  other dbt artifacts in the lake.
* **Iceberg upkeep** (Athena only, weekly): ``OPTIMIZE ... REWRITE DATA USING BIN_PACK`` compacts the small files
  daily incremental runs leave, then ``VACUUM`` expires old snapshots and removes orphan files, for every Iceberg
  table dbt builds (read from the manifest, so new models are covered without a change here).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from medalflow.settings import Settings, get_settings

log = logging.getLogger(__name__)

FRESHNESS_SELECT_VARIABLE = "MEDALFLOW_FRESHNESS_SELECT"
# Sunday: after the weekly forecast extraction (Sundays 02:00), when the warehouse is quietest.
ICEBERG_MAINTENANCE_WEEKDAY = 6
ICEBERG_MATERIALIZATIONS = {"table", "incremental"}


def dbt_command(settings: Settings, arguments: Sequence[str], target_path: str | Path) -> list[str]:
    """The project's dbt command line, writing into a target folder of its own (never the one Cosmos reads)."""
    from medalflow.dbt_commands import dbt_command as project_dbt_command

    return [*project_dbt_command(settings, arguments), "--target-path", str(target_path)]


def run_dbt(settings: Settings, arguments: Sequence[str], target_path: str | Path) -> subprocess.CompletedProcess:
    """dbt from its own virtualenv, its output in the task log; the caller decides what a non-zero exit means."""
    from medalflow.dbt_commands import dbt_process_environment

    command = dbt_command(settings, arguments, target_path)
    log.info("running %s", " ".join(command))
    completed = subprocess.run(
        command, env=dbt_process_environment(settings), cwd=settings.dbt_project_dir, capture_output=True, text=True
    )
    log.info("dbt output:\n%s%s", completed.stdout, completed.stderr)
    return completed


def generate_and_publish_docs(settings: Settings | None = None, destination: str | None = None) -> list[str]:
    from medalflow.artifacts import docs_uri, publish_docs

    settings = settings or get_settings()
    with tempfile.TemporaryDirectory(prefix="medalflow-docs-") as target:
        completed = run_dbt(settings, ["docs", "generate"], target)
        if completed.returncode:
            raise RuntimeError(f"dbt docs generate failed with exit code {completed.returncode}")
        return publish_docs(target, destination or docs_uri())


def stale_sources(sources_json: dict[str, Any]) -> dict[str, str]:
    """Sources whose freshness is not ``pass``, with their status (warn, error, runtime error)."""
    return {
        result["unique_id"]: result["status"]
        for result in sources_json.get("results", [])
        if result.get("status") != "pass"
    }


def check_source_freshness(
    settings: Settings | None = None, select: str | None = None, attempt: tuple[str, str, str, int] | None = None
) -> dict[str, str]:
    """Run ``dbt source freshness``; fail when a source is past ``error_after``, warn (in the log) when past
    ``warn_after``. Returns every checked source's status. With ``attempt`` (dag_id, run_id, task_id, try_number)
    its sources.json and manifest are kept in the lake with the run's other dbt artifacts, stale or not (the
    observability layer's source freshness reads them)."""
    from medalflow.artifacts import store_run_artifacts

    settings = settings or get_settings()
    select = select or os.getenv(FRESHNESS_SELECT_VARIABLE, "source:*")
    with tempfile.TemporaryDirectory(prefix="medalflow-freshness-") as target:
        completed = run_dbt(settings, ["source", "freshness", "--select", select], target)
        if attempt is not None:
            try:
                store_run_artifacts(target, settings.lake_uri, *attempt)
            except Exception:  # losing the copy must not hide the freshness result
                log.exception("could not keep the freshness results in the lake")
        sources_path = Path(target) / "sources.json"
        if not sources_path.is_file():
            raise RuntimeError(f"dbt source freshness failed before checking anything (exit {completed.returncode})")
        sources = json.loads(sources_path.read_text())
    statuses = {result["unique_id"]: result["status"] for result in sources.get("results", [])}
    stale = stale_sources(sources)
    errors = {source: status for source, status in stale.items() if status != "warn"}
    if errors:
        raise RuntimeError(f"sources not fresh: {errors}")
    for source in sorted(set(stale) - set(errors)):
        log.warning("source %s is past its warn_after freshness threshold", source)
    return statuses


def iceberg_tables(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(schema, table) of every model dbt materialises as an Iceberg table, sorted."""
    tables = set()
    for node in manifest.get("nodes", {}).values():
        config = node.get("config", {})
        if (
            node.get("resource_type") == "model"
            and config.get("materialized") in ICEBERG_MATERIALIZATIONS
            and str(config.get("table_type", "")).lower() == "iceberg"
            and config.get("enabled", True)
        ):
            tables.add((node["schema"], node.get("alias") or node["name"]))
    return sorted(tables)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def iceberg_maintenance_statements(tables: Iterable[tuple[str, str]]) -> list[str]:
    """Compaction first (it writes new files), then VACUUM (which removes the ones compaction made obsolete)."""
    statements = []
    for schema, table in tables:
        relation = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        statements += [f"OPTIMIZE {relation} REWRITE DATA USING BIN_PACK", f"VACUUM {relation}"]
    return statements


def iceberg_maintenance_due(target: str, day: date) -> str | None:
    """Why the Iceberg upkeep does not run today (None when it does)."""
    if target != "athena":
        return f"the {target} target has no Iceberg tables to maintain"
    if day.weekday() != ICEBERG_MAINTENANCE_WEEKDAY:
        return f"Iceberg upkeep runs on Sundays; {day} is not one"
    return None


def run_athena_statements(statements: Sequence[str], aws_conn_id: str) -> list[str]:
    """Run statements one by one on Athena (workgroup and results location as in profiles.yml); query ids back."""
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    hook = AthenaHook(aws_conn_id=aws_conn_id)
    workgroup = os.getenv("MEDALFLOW_ATHENA_WORK_GROUP", "primary")
    output = os.getenv("MEDALFLOW_ATHENA_S3_STAGING_DIR")
    results = {"OutputLocation": output} if output else {}
    query_ids = []
    for statement in statements:
        query_id = hook.run_query(statement, query_context={}, result_configuration=results, workgroup=workgroup)
        state = hook.poll_query_status(query_id)
        if state != "SUCCEEDED":
            reason = hook.get_state_change_reason(query_id)
            raise RuntimeError(f"Athena {state} for {statement!r}: {reason}")
        query_ids.append(query_id)
    return query_ids
