"""Task callables and factories of the extraction DAGs: SQL (CDC), REST and file drops.

Each raw dataset is one task with one outlet Asset (:func:`medalflow.assets.raw_asset`); its event ``extra`` carries
the data interval (so the medallion run knows what landed), the rows written and the records quarantined. Heavy
imports (requests, pyarrow) happen inside the callables, at run time.

The factories wrap each callable in :func:`explain_failures`: whatever goes wrong, the task fails with an
:class:`ExtractionError` naming source, entity, connection id and config file, saying what to fix, with the original
error kept as its cause and no credentials in the message.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseHook, get_current_context, task

from medalflow import intervals
from medalflow.assets import raw_asset
from medalflow.extract.config import (
    DOCS,
    SourceGroup,
    connection_locations,
    display_path,
    load_source_group,
    secrets_lookup_pattern,
)
from medalflow.extract.metadata import IngestionContext
from medalflow.lake import Lake
from medalflow.settings import get_settings

log = logging.getLogger(__name__)


def run_interval(context: Any) -> intervals.DataInterval:
    """The data interval of the running task (the previous day on the extraction timetables)."""
    return intervals.resolve(
        context["dag_run"].conf,
        (),
        (context.get("data_interval_start"), context.get("data_interval_end")),
        context["dag_run"].run_after,
    )


def _announce(context: Any, group: SourceGroup, entity_name: str, interval: Any, result: dict[str, Any]) -> None:
    context["outlet_events"][raw_asset(group.name, entity_name)].extra = {
        **interval.as_extra(),
        "rows": result["rows"],
        "quarantined": result["quarantined"],
    }


def extract_sql_entity(group_name: str, entity_name: str) -> dict[str, Any]:
    """Extract one ERP table's changes in the run's interval into the raw zone, and announce them on its Asset."""
    from medalflow.extract.sql import DatabaseLocation, extract_changes

    context = get_current_context()
    group = load_source_group(group_name)
    interval = run_interval(context)
    location = DatabaseLocation.from_airflow_connection(BaseHook.get_connection(group.conn_id))
    ingestion = IngestionContext(group.name, context["run_id"], datetime.now(UTC))
    result = extract_changes(
        location, group.entity(entity_name), Lake(get_settings().lake_uri), interval.start, interval.end, ingestion
    )
    context["outlet_events"][raw_asset(group.name, entity_name)].extra = {**interval.as_extra(), "rows": result["rows"]}
    return result


def extract_rest_entity(group_name: str, entity_name: str) -> dict[str, Any]:
    """Extract one REST entity for the run's interval into the raw zone and announce it on its Asset."""
    from medalflow.extract.rest import ApiLocation, RestClient, RestSettings, extract_entity, read_parent_keys

    context = get_current_context()
    group = load_source_group(group_name)
    entity = group.entity(entity_name)
    interval = run_interval(context)
    location = ApiLocation.from_airflow_connection(BaseHook.get_connection(group.conn_id))
    lake = Lake(get_settings().lake_uri)
    ingestion = IngestionContext(group.name, context["run_id"], datetime.now(UTC))
    parent_keys = read_parent_keys(lake, group.name, entity, interval.start.date()) if entity.parent else None
    with RestClient(location, RestSettings.from_options(group.options)) as client:
        result = extract_entity(client, entity, lake, interval.start, interval.end, ingestion, parent_keys)
    _announce(context, group, entity_name, interval, result)
    return result


def extract_file_entity(group_name: str, entity_name: str) -> dict[str, Any]:
    """Land one kind of partner file drop for the run's interval day and announce it on its Asset."""
    from medalflow.extract.files import extract_file_drops
    from medalflow.extract.quarantine import Limits

    context = get_current_context()
    group = load_source_group(group_name)
    interval = run_interval(context)
    ingestion = IngestionContext(group.name, context["run_id"], datetime.now(UTC))
    lake = Lake(get_settings().lake_uri)
    limits = Limits.from_options(group.options)
    result = extract_file_drops(group.entity(entity_name), lake, interval.start.date(), ingestion, limits)
    _announce(context, group, entity_name, interval, result)
    return result


def sql_extraction_tasks(group: SourceGroup) -> list[Any]:
    """One task per entity of a SQL source group, each producing its raw Asset. They run in parallel."""
    return [
        task(
            task_id=f"extract_{entity_name}",
            outlets=[raw_asset(group.name, entity_name)],
            doc_md=f"Changes of `{group.name}.{entity_name}` in the data interval -> raw Parquet.",
        )(explain_failures(extract_sql_entity))(group.name, entity_name)
        for entity_name in group.entities
    ]


def rest_extraction_tasks(group: SourceGroup) -> dict[str, Any]:
    """One task per entity of a REST source group. Top-level entities run in parallel; an entity fetched per key of
    a parent (``parent:`` in the YAML) runs after it."""
    tasks = {
        entity_name: task(
            task_id=f"extract_{entity_name}",
            outlets=[raw_asset(group.name, entity_name)],
            doc_md=f"`{group.name}.{entity_name}` from `{entity.path}` for the data interval -> raw Parquet.",
        )(explain_failures(extract_rest_entity))(group.name, entity_name)
        for entity_name, entity in group.entities.items()
    }
    for entity_name, entity in group.entities.items():
        if entity.parent:
            tasks[entity.parent] >> tasks[entity_name]
    return tasks


def file_extraction_tasks(group: SourceGroup) -> dict[str, Any]:
    """One task per kind of file drop, each producing its raw Asset."""
    return {
        entity_name: task(
            task_id=f"extract_{entity_name}",
            outlets=[raw_asset(group.name, entity_name)],
            doc_md=f"`{group.name}.{entity_name}` files of the interval's day from the inbox -> raw Parquet.",
        )(explain_failures(extract_file_entity))(group.name, entity_name)
        for entity_name in group.entities
    }


# --- failures that say what to fix ----------------------------------------------------------------------------------


class ExtractionError(RuntimeError):
    """An extraction task failed. The message names source, entity, connection and config and says what to fix; the
    original exception is the ``__cause__`` (its traceback follows in the log)."""


# user:password@ in a URL, and password=... style pairs: connection URIs and DSNs carry credentials.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)
_SECRET_PAIRS = re.compile(
    r"(?P<name>password|passwd|pwd|token|access_token|api_key|apikey|secret|client_secret)(?P<sep>[\"']?\s*[=:]\s*)"
    r"(?P<value>[\"']?)[^\s&;,\"']+(?P=value)",
    re.IGNORECASE,
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the credentials it may carry: URL passwords, ``password=...`` pairs, the given secrets."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    text = _URL_CREDENTIALS.sub(lambda match: f"{match['scheme']}{match['user']}:***@", text)
    return _SECRET_PAIRS.sub(lambda match: f"{match['name']}{match['sep']}***", text)


def _connection_secrets(conn_id: str | None) -> list[str]:
    """The connection's password and extra values, to keep them out of the message (when it exists at all)."""
    if not conn_id:
        return []
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception:  # a missing connection has no secrets to hide
        return []
    values = [connection.password or ""]
    with contextlib.suppress(Exception):  # an extra that is not JSON holds no secret read from it
        values += [str(value) for value in (connection.extra_dejson or {}).values()]
    return [value for value in values if value]


def _classes(error: BaseException) -> set[str]:
    """Names of the error's classes: matched by name so the kind modules stay free to move them."""
    return {cls.__name__ for cls in type(error).__mro__}


def what_to_fix(error: BaseException, source: str, entity: str, conn_id: str | None, config: str) -> str:
    """What an operator does about ``error``, in one or two sentences."""
    names = _classes(error)
    if "AirflowNotFoundException" in names and conn_id:
        variable, secret = connection_locations(conn_id)
        pattern = secrets_lookup_pattern()
        lookup = (
            ""
            if re.match(pattern, conn_id, re.IGNORECASE)
            else f"; on MWAA only ids matching {pattern} are looked up, so rename the connection (conn_id in {config})"
        )
        return (
            f"the Airflow connection {conn_id!r} does not exist: create it, locally as the environment variable "
            f"{variable} (a JSON value), on MWAA as the Secrets Manager secret {secret} (a JSON value); the format "
            f"of each kind is in {DOCS}#connections{lookup}"
        )
    if "SourceConfigError" in names:
        return f"fix {config} as the message says (every key is described in {DOCS})"
    if "TooManyBadRecordsError" in names:
        return (
            f"read the rejected records in quarantine/{source}/{entity}/ (each names its field and reason), then fix "
            f"the source or the declared types in {config}; raise max_bad_ratio there only if such records are expected"
        )
    if "SchemaError" in names:
        return (
            f"the source no longer delivers what {config} declares for {entity!r}: fix the source or the columns there"
        )
    if "FileDropError" in names:
        return f"have the partner drop the file, or set require_daily_file: false for {entity!r} in {config}"
    if names & {"ConnectionError", "TimeoutError", "ApiError", "SourceConnectionError", "OperationalError"}:
        where = f"the connection {conn_id!r}" if conn_id else "the lake (MEDALFLOW_LAKE_URI)"
        return f"check that the source is up and that {where} has the right host, port and credentials"
    return "see the cause below; once fixed, rerun the task (a failed run landed nothing for its interval)"


# Exceptions that tell Airflow what to do with the task (skip it, defer it, stop on a timeout, fail without retrying):
# passed through untouched, or Airflow would see a plain failure instead.
_AIRFLOW_CONTROL_FLOW = frozenset(
    {
        "AirflowSkipException",
        "AirflowRescheduleException",
        "AirflowFailException",
        "AirflowTaskTimeout",
        "AirflowTaskTerminated",
        "TaskDeferred",
        "DownstreamTasksSkipped",
    }
)


def explain_failures(extract: Callable[[str, str], dict[str, Any]]) -> Callable[[str, str], dict[str, Any]]:
    """Wrap a task callable ``(group_name, entity_name)`` so that any failure names its source, entity, connection
    and config, and says what to fix. The original error stays the cause; credentials are redacted."""

    @functools.wraps(extract)
    def explained(group_name: str, entity_name: str) -> dict[str, Any]:
        from medalflow.observability.records import keep_attempt_record

        started_at = datetime.now(UTC)
        try:
            result = extract(group_name, entity_name)
        except Exception as error:
            if _classes(error) & _AIRFLOW_CONTROL_FLOW:
                raise
            explained_error = _explained(error, group_name, entity_name)
            # The attempt's record (medalflow.observability) carries the redacted message, never the raw one.
            keep_attempt_record(group_name, entity_name, started_at, datetime.now(UTC), None, explained_error)
            raise explained_error from error
        keep_attempt_record(group_name, entity_name, started_at, datetime.now(UTC), result, None)
        return result

    return explained


def _explained(error: Exception, group_name: str, entity_name: str) -> ExtractionError:
    """The ExtractionError that names source, entity, connection and config and says what to fix."""
    conn_id, config = None, f"{group_name}.yml"
    try:
        group = load_source_group(group_name)
        conn_id, config = group.conn_id, display_path(group.path) if group.path else config
    except Exception:  # a broken config is what the message reports; it cannot add context
        pass
    text = redact(str(error), _connection_secrets(conn_id))
    return ExtractionError(
        f"source {group_name!r}, entity {entity_name!r}, connection {conn_id or 'none (reads the lake)'!s}, "
        f"config {config}: {type(error).__name__}: {text}\n"
        f"What to do: {what_to_fix(error, group_name, entity_name, conn_id, config)}"
    )
