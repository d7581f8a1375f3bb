"""Extraction DAGs generated from the source configs: one DAG per YAML file of the sources folder.

``dags/extract_sources.py`` declares them with :func:`build_extraction_dags`; ``dags/extract_sources_check.py``
turns the files that cannot become a DAG into an import error (:func:`raise_source_config_errors`). Why two files:
Airflow 3 marks every DAG of a file that has an import error as stale (``_update_import_errors`` in
``airflow/dag_processing/collection.py``), so an error raised by the generator would hide every source's DAG, not
only the broken one's. Kept apart, the good sources keep running and the broken file is named in the UI's import
errors. Parsing reads YAML and builds DAG objects: no connection, no network.

Each DAG keeps what the hand-written ones had: its id, tags, ``max_active_runs`` and the task per entity
(``extract_<entity>``, REST children after their ``parent``), each producing the entity's raw Asset. Its
``doc_md`` is written from the YAML: the source's and entities' descriptions, schedule, connection, outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from medalflow.dag_defaults import (
    DEFAULT_ARGS,
    OWNER,
    START_DATE,
    describe_schedule,
    extraction_timetable,
    extraction_window,
)
from medalflow.extract import tasks
from medalflow.extract.config import (
    DOCS,
    SourceConfigError,
    SourceGroup,
    connection_locations,
    display_path,
    load_sources,
)
from medalflow.lake import QUARANTINE_ZONE, RAW_ZONE

log = logging.getLogger(__name__)

TASK_FACTORIES: dict[str, Callable[[SourceGroup], Any]] = {
    "sql": tasks.sql_extraction_tasks,
    "rest": tasks.rest_extraction_tasks,
    "files": tasks.file_extraction_tasks,
}


def default_tags(group: SourceGroup) -> list[str]:
    """``extract``, the source, its kind and ``raw``, when the YAML names none."""
    return list(dict.fromkeys(["extract", group.name, group.kind, "raw"]))


def build_extraction_dag(group: SourceGroup) -> DAG:
    """The extraction DAG of one source group, as its ``dag:`` section declares it."""
    settings = group.dag
    default_args = {**DEFAULT_ARGS, "owner": settings.owner or OWNER}
    if settings.retries is not None:
        default_args["retries"] = settings.retries
    # No catch-up: backfills are explicit (docs/operations.md), or `make extract` by hand.
    start_date, end_date, catchup = START_DATE, None, False
    if settings.start_date is not None:
        start_date = datetime.combine(settings.start_date, datetime.min.time(), UTC)
    if window := extraction_window():
        # A fixed window (the compose stack's seeded demo days): unpausing runs exactly its intervals.
        start_date, end_date, catchup = window.start, window.last_logical_date, True
    with DAG(
        dag_id=group.dag_id,
        schedule=extraction_timetable(settings.schedule),
        start_date=start_date,
        end_date=end_date,
        catchup=catchup,
        max_active_runs=settings.max_active_runs,
        default_args=default_args,
        tags=list(settings.tags) if settings.tags is not None else default_tags(group),
        description=f"Lands source {group.name} in the lake's raw zone: {' '.join(group.description.split())}",
        doc_md=extraction_doc(group),
    ) as dag:
        TASK_FACTORIES[group.kind](group)
    return dag


def build_extraction_dags(directory: Path | None = None) -> dict[str, DAG]:
    """One DAG per source config of the folder (``MEDALFLOW_SOURCES_DIR`` or dags/config/sources), by DAG id, in
    the files' sorted order. Files that cannot become a DAG are left out (and logged): the check file reports them."""
    catalogue = load_sources(directory)
    for error in catalogue.errors.values():
        log.error("source config skipped: %s", error)
    return {group.dag_id: build_extraction_dag(group) for group in catalogue.groups.values()}


def raise_source_config_errors(directory: Path | None = None) -> None:
    """Raise one :class:`SourceConfigError` naming every source config that cannot become a DAG, if any."""
    catalogue = load_sources(directory)
    if not catalogue.errors:
        return
    problems = "\n".join(str(error) for error in catalogue.errors.values())
    count = len(catalogue.errors)
    raise SourceConfigError(
        f"{count} source config file(s) cannot become an extraction DAG (the other sources' DAGs run as usual):\n"
        f"{problems}\nFix the file (every key is described in {DOCS}); its DAG appears at the next parse."
    )


# --- the DAG's documentation, from the YAML --------------------------------------------------------------------------


def _connection_line(group: SourceGroup) -> str:
    if not group.conn_id:
        return "* **Source**: the lake's inbox (`MEDALFLOW_LAKE_URI`), no connection of its own."
    variable, secret = connection_locations(group.conn_id)
    what = {
        "sql": "the database (conn_type postgres, mysql or sqlite: host, port, schema = database, login, password)",
        "rest": "the API (conn_type http: host, port, schema = http or https, login, password, extra)",
        "files": "the files' location",
    }[group.kind]
    return (
        f"* **Source**: the `{group.conn_id}` Airflow connection, {what}; locally the environment variable "
        f"`{variable}`, on MWAA the Secrets Manager secret `{secret}` (formats in {DOCS})."
    )


def _origin(group: SourceGroup, entity: Any) -> str:
    """Where an entity is read, in the words of its kind."""
    if group.kind == "sql":
        table = getattr(entity, "table", entity.name)
        schema = getattr(entity, "db_schema", None)
        text = f"table `{schema}.{table}`" if isinstance(schema, str) and schema else f"table `{table}`"
        if getattr(entity, "mode", "incremental") == "snapshot":
            return text + ", whole (snapshot)"
        cursor = getattr(entity, "cursor", None)
        return text + (f", rows whose `{cursor}` is in the interval (CDC `_op` I/U/D)" if cursor else "")
    if group.kind == "rest":
        text = f"`GET {getattr(entity, 'path', '?')}`"
        if getattr(entity, "parent", None):
            text += f", per `{entity.parent}` of the run"
        return text
    partners = getattr(entity, "partners", None) or getattr(entity, "formats", None) or {}
    listed = ", ".join(f"{name} ({getattr(kind, 'kind', kind)})" for name, kind in dict(partners).items())
    inbox = getattr(entity, "inbox", "")
    daily = "; a missing file fails the task" if getattr(entity, "require_daily_file", False) else ""
    return f"`{inbox}`" + (f": {listed}" if listed else "") + daily


def _key(entity: Any) -> str:
    key = getattr(entity, "key", ())
    return ", ".join(f"`{column}`" for column in ((key,) if isinstance(key, str) else key))


def _tasks_line(group: SourceGroup) -> str:
    children = {name: entity.parent for name, entity in group.entities.items() if getattr(entity, "parent", None)}
    first = [f"`extract_{name}`" for name in group.entities if name not in children]
    line = f"* **Tasks**: one per entity; {', '.join(first)}" + (" in parallel" if len(first) > 1 else "")
    if children:
        after = ", ".join(f"`extract_{child}` after `extract_{parent}`" for child, parent in children.items())
        line += f"; then {after} (one request per key of the parent's partition of the run)"
    return line + "."


def _block_type(value: Any, default: str) -> str:
    """The ``type`` of a REST block as the YAML gives it (``auth: http_basic`` or ``auth: {type: ...}``)."""
    if isinstance(value, str):
        return value
    return str(value.get("type", default)) if isinstance(value, dict) else default


def _requests_line(group: SourceGroup) -> str | None:
    """For a REST source: how it authenticates and pages, and how failing requests are retried."""
    if group.kind != "rest":
        return None
    auth = _block_type(group.options.get("auth"), "none")
    pagination = _block_type(group.options.get("pagination"), "single_page")
    attempts = group.options.get("max_attempts", 6)
    return (
        f"* **Requests**: auth `{auth}`, pagination `{pagination}` (an entity may override them); 5xx, timeouts and "
        f"429 are retried with backoff up to {attempts} attempts per request, honouring `Retry-After`."
    )


def _quarantine_line(group: SourceGroup) -> str | None:
    if group.kind == "sql" and "max_bad_ratio" not in group.options:
        return None
    ratio = float(group.options.get("max_bad_ratio", 0.0))
    limit = (
        f"more than {ratio:.2%} of an interval's records (`max_bad_ratio`) fails the task"
        if ratio
        else "any one fails the task (`max_bad_ratio: 0`)"
    )
    return (
        f"* **Quarantine**: records that do not fit their declared type go to "
        f"`{QUARANTINE_ZONE}/{group.name}/<entity>/ingestion_date=<day>/<run>.jsonl`, naming record and field; "
        f"{limit}."
    )


def extraction_doc(group: SourceGroup) -> str:
    """The DAG's ``doc_md``: what the hand-written docstrings said, from the YAML."""
    config = display_path(group.path) if group.path else f"{group.name}.yml"
    lines = [
        f"# {group.dag_id}",
        "",
        group.description,
        "",
        f"Generated from `{config}` (kind `{group.kind}`): change the source there, not here.",
        "",
        f"* **Schedule**: {describe_schedule(group.dag.schedule)}.",
        _connection_line(group),
        _tasks_line(group),
        (
            f"* **Output**: `{RAW_ZONE}/{group.name}/<entity>/ingestion_date=<day>/`, one Asset per entity "
            f"(`{RAW_ZONE}.{group.name}.<entity>`) whose event carries the interval and the rows landed. Rerunning an "
            "interval replaces exactly its files; a failed run lands nothing."
        ),
    ]
    lines += [line for line in (_requests_line(group), _quarantine_line(group)) if line]
    lines += [
        f"* **By hand**: `make extract SOURCE={group.name} START=YYYY-MM-DD END=YYYY-MM-DD` (END inclusive).",
        "",
        "| entity | what | read from | key | declared columns |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, entity in group.entities.items():
        schema = getattr(entity, "schema", None)
        columns = len(getattr(schema, "columns", {}) or {})
        what = group.entity_descriptions.get(name, "").replace("|", "\\|").replace("\n", " ") or "-"
        lines.append(f"| `{name}` | {what} | {_origin(group, entity)} | {_key(entity)} | {columns} |")
    return "\n".join(lines) + "\n"
