"""One JSON record per extraction task attempt, kept in the lake beside dbt's artifacts::

    <lake>/_artifacts/extract/<dag_id>/<run_id>/<entity>/attempt=<n>.json

Written by the extraction tasks' wrapper (:func:`medalflow.extract.tasks.explain_failures`) when an attempt ends,
successful or not; read back by :mod:`medalflow.observability.landing`. Writing a record never fails a task.
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from medalflow.artifacts import safe_segment

log = logging.getLogger(__name__)

EXTRACT_ARTIFACTS_ZONE = "_artifacts/extract"
SUCCESS, FAILED = "success", "failed"


@dataclass(frozen=True)
class ExtractionRunRecord:
    """What one extraction attempt did. Times are ISO 8601 (UTC); counts are None when the attempt failed before
    knowing them."""

    dag_id: str
    run_id: str
    try_number: int
    source: str
    entity: str
    interval_start: str | None
    interval_end: str | None
    started_at: str
    completed_at: str
    rows_landed: int | None
    rows_quarantined: int | None
    status: str
    error: str | None = None

    def relative_path(self) -> str:
        return record_path(self.dag_id, self.run_id, self.entity, self.try_number)


def record_path(dag_id: str, run_id: str, entity: str, try_number: int) -> str:
    """Lake-relative path of one attempt's record."""
    return posixpath.join(
        EXTRACT_ARTIFACTS_ZONE,
        safe_segment(dag_id),
        safe_segment(run_id),
        safe_segment(entity),
        f"attempt={int(try_number)}.json",
    )


def write_record(lake_uri: str, record: ExtractionRunRecord) -> str:
    """Write the record (replacing the same attempt's); returns its lake-relative path."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(lake_uri.rstrip("/"), skip_instance_cache=True)
    relative = record.relative_path()
    destination = posixpath.join(root.rstrip("/"), relative)
    fs.makedirs(posixpath.dirname(destination), exist_ok=True)
    with fs.open(destination, "w") as handle:
        handle.write(json.dumps(asdict(record), sort_keys=True))
    return relative


def read_record(payload: bytes | str) -> ExtractionRunRecord:
    """A record read back; a missing or unknown field raises ValueError naming it."""
    values: dict[str, Any] = json.loads(payload)
    fields = ExtractionRunRecord.__dataclass_fields__
    missing = [name for name in fields if name not in values and name != "error"]
    if missing:
        raise ValueError(f"extraction run record without {missing}")
    return ExtractionRunRecord(**{name: values.get(name) for name in fields})


def attempt_record(
    context: Any,
    source: str,
    entity: str,
    started_at: datetime,
    completed_at: datetime,
    result: dict[str, Any] | None,
    error: BaseException | None,
) -> ExtractionRunRecord:
    """The record of the running task's attempt, from its Airflow context and what the extraction returned."""
    ti = context["ti"]
    start = end = None
    try:
        from medalflow.extract.tasks import run_interval

        interval = run_interval(context)
        start, end = interval.start.isoformat(), interval.end.isoformat()
    except Exception:  # a run whose interval cannot be resolved still gets its record, without one
        log.warning("no data interval for the extraction record of %s.%s", source, entity, exc_info=True)
    return ExtractionRunRecord(
        dag_id=ti.dag_id,
        run_id=context["run_id"],
        try_number=int(ti.try_number),
        source=source,
        entity=entity,
        interval_start=start,
        interval_end=end,
        started_at=started_at.isoformat(),
        completed_at=completed_at.isoformat(),
        rows_landed=None if result is None else int(result.get("rows", 0)),
        rows_quarantined=None if result is None else int(result.get("quarantined", 0) or 0),
        status=FAILED if error is not None else SUCCESS,
        error=None if error is None else f"{type(error).__name__}: {str(error)[:2000]}",
    )


def keep_attempt_record(
    source: str,
    entity: str,
    started_at: datetime,
    completed_at: datetime,
    result: dict[str, Any] | None,
    error: BaseException | None,
) -> str | None:
    """Write the running task attempt's record to the lake; logs and returns None instead of failing."""
    from airflow.sdk import get_current_context

    from medalflow.settings import get_settings

    try:
        context = get_current_context()
    except Exception:  # called outside a running task (a unit test, a script): there is no attempt to record
        log.debug("no Airflow context: no extraction run record for %s.%s", source, entity)
        return None
    try:
        record = attempt_record(context, source, entity, started_at, completed_at, result, error)
        return write_record(get_settings().lake_uri, record)
    except Exception:
        log.exception("could not keep the extraction run record of %s.%s in the lake", source, entity)
        return None
