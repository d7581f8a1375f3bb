"""Bad input: checking source records against their declared schema, and quarantining the ones that do not fit.

A record is bad when a declared field will not convert to its declared type (``"not-a-number"`` as a decimal, an
impossible date, a timestamp far outside any plausible range) or a key field is null; a whole page is bad when its
body is not JSON. Bad records are never dropped: each goes, with the reason (naming the file or page, the record and
the field), the source record as received and the run id, to::

    <lake>/quarantine/<source>/<entity>/ingestion_date=YYYY-MM-DD/<run_id>.jsonl

one JSON object a line. The file is staged and moved into place when the run's extraction ends, so it is complete
whenever it is visible; a retry of the same run replaces it, and other runs' files are kept (they are the audit trail).

The run fails only when the bad share passes the source's ``max_bad_ratio``; below it the good records land in raw
and the quarantine explains the rest, so ``raw rows + quarantined records == what the source sent``.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from medalflow.lake import QUARANTINE_ZONE, STAGING_ZONE, partition_path

if TYPE_CHECKING:
    from medalflow.extract.schema import DeclaredSchema
    from medalflow.lake import Lake

log = logging.getLogger(__name__)

# Dates and timestamps outside this window are typos or sentinels (1900-01-01, 9999-12-31), not business events.
DEFAULT_PLAUSIBLE_DATES = (date(1970, 1, 1), date(2100, 1, 1))
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}


class TooManyBadRecordsError(ValueError):
    """The share of bad records in a run passed the source's max_bad_ratio."""


class BadValueError(ValueError):
    """One field's value cannot be read as its declared type."""


@dataclass(frozen=True)
class RecordProblem:
    """Why a record was rejected: the field at fault (None for the record as a whole) and the reason."""

    field: str | None
    reason: str


@dataclass(frozen=True)
class Limits:
    """What a source tolerates: the bad share before a run fails, and the window of plausible dates."""

    max_bad_ratio: float = 0.0
    plausible_dates: tuple[date, date] = DEFAULT_PLAUSIBLE_DATES

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Limits:
        """From a source config's ``max_bad_ratio`` and ``plausible_dates: {from, to}`` (both optional)."""
        ratio = float(options.get("max_bad_ratio", 0.0))
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"max_bad_ratio must be between 0 and 1, got {ratio}")
        window = options.get("plausible_dates") or {}
        first = _as_date(window.get("from", DEFAULT_PLAUSIBLE_DATES[0]))
        last = _as_date(window.get("to", DEFAULT_PLAUSIBLE_DATES[1]))
        return cls(ratio, (first, last))


def _as_date(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- converting one value to its declared type --------------------------------------------------------------------


def _to_int(declared: str) -> Callable[[Any], int]:
    low, high = _INT_RANGES[declared]

    def convert(value: Any) -> int:
        if isinstance(value, bool):
            raise BadValueError(f"{value!r} is a boolean, not an {declared}")
        if isinstance(value, float):
            if not value.is_integer():
                raise BadValueError(f"{value!r} is not a whole number")
            value = int(value)
        elif isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise BadValueError(f"{value!r} is not an {declared}") from None
        elif not isinstance(value, int):
            raise BadValueError(f"{value!r} is not an {declared}")
        if not low <= value <= high:
            raise BadValueError(f"{value} is out of range for {declared}")
        return value

    return convert


def _to_double(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise BadValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise BadValueError(f"{value!r} is not a finite number")
    return number


def _to_decimal(precision: int, scale: int) -> Callable[[Any], Decimal]:
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise BadValueError(f"{value!r} is not a decimal({precision},{scale})")
        try:
            # str() of a float is its shortest round-tripping form: 747.52 stays 747.52, not 747.519999...
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise BadValueError(f"{value!r} is not a decimal({precision},{scale})") from None
        if not number.is_finite():
            raise BadValueError(f"{value!r} is not a finite decimal")
        rounded = number.quantize(quantum)
        if rounded != number:
            raise BadValueError(f"{value!r} has more than {scale} decimal places")
        if len(rounded.as_tuple().digits) > precision:
            raise BadValueError(f"{value!r} has more than {precision} digits")
        return rounded

    return convert


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return json.dumps(value, sort_keys=True, default=str)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise BadValueError(f"{value!r} is not a boolean")


def _check_plausible(moment: date, window: tuple[date, date]) -> None:
    day = moment.date() if isinstance(moment, datetime) else moment
    if not window[0] <= day < window[1]:
        raise BadValueError(f"{moment.isoformat()} is outside the plausible range [{window[0]}, {window[1]})")


def _to_date(window: tuple[date, date]) -> Callable[[Any], date]:
    def convert(value: Any) -> date:
        if isinstance(value, datetime):
            raise BadValueError(f"{value!r} is a timestamp, not a date")
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise BadValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        elif not isinstance(value, date):
            raise BadValueError(f"{value!r} is not a date")
        _check_plausible(value, window)
        return value

    return convert


def _to_timestamp(window: tuple[date, date], *, aware: bool) -> Callable[[Any], datetime]:
    """Timestamps are UTC: an offset is converted, none means UTC. ``aware`` keeps the UTC tzinfo (timestamptz)."""

    def convert(value: Any) -> datetime:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise BadValueError(f"{value!r} is not an ISO 8601 timestamp") from None
        elif not isinstance(value, datetime):
            raise BadValueError(f"{value!r} is not a timestamp")
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        _check_plausible(utc, window)
        return utc if aware else utc.replace(tzinfo=None)

    return convert


def value_converter(declared: str, plausible_dates: tuple[date, date] = DEFAULT_PLAUSIBLE_DATES) -> Callable:
    """The function that reads one non-null value as the declared type, or raises :class:`BadValueError`."""
    if declared in _INT_RANGES:
        return _to_int(declared)
    if match := _DECIMAL.match(declared):
        return _to_decimal(int(match.group(1)), int(match.group(2)))
    simple = {
        "double": _to_double,
        "string": _to_string,
        "bool": _to_bool,
        "date": _to_date(plausible_dates),
        "timestamp": _to_timestamp(plausible_dates, aware=False),
        "timestamptz": _to_timestamp(plausible_dates, aware=True),
    }
    if declared not in simple:
        raise ValueError(f"unknown column type {declared!r}")
    return simple[declared]


class RecordConverter:
    """Reads source records (mappings of JSON-like values) as the declared schema's typed values.

    Declared fields are converted to their type; a null key field rejects the record; undeclared fields pass
    through as text. Empty strings count as null when ``empty_is_null`` (CSV has no other way to say null).
    """

    def __init__(
        self,
        schema: DeclaredSchema,
        key: Sequence[str],
        limits: Limits | None = None,
        *,
        empty_is_null: bool = False,
    ) -> None:
        self.schema = schema
        self.key = tuple(key)
        self.empty_is_null = empty_is_null
        window = (limits or Limits()).plausible_dates
        self.converters = {name: value_converter(kind, window) for name, kind in schema.columns.items()}

    def convert(self, record: Mapping[str, Any], extra_columns: Sequence[str] = ()) -> dict[str, Any] | RecordProblem:
        row: dict[str, Any] = {}
        for name, convert in self.converters.items():
            value = record.get(name)
            if value is None or (self.empty_is_null and value == ""):
                if name in self.key:
                    return RecordProblem(name, "key field is null")
                row[name] = None
                continue
            try:
                row[name] = convert(value)
            except BadValueError as problem:
                return RecordProblem(name, str(problem))
        for name in extra_columns:
            value = record.get(name)
            row[name] = None if value is None or (self.empty_is_null and value == "") else _to_string(value)
        return row

    def describe(self, record: Mapping[str, Any]) -> str:
        """The record's key as text, for messages: ``payment_id=123``."""
        return ", ".join(f"{name}={record.get(name)!r}" for name in self.key)


# --- the quarantine file --------------------------------------------------------------------------------------------


def quarantine_file_name(run_id: str) -> str:
    """``<run_id>.jsonl`` with characters that are awkward in object keys and URLs (``:``, ``+``) replaced."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id) + ".jsonl"


class Quarantine:
    """The bad records of one run of one source entity and interval, written as JSON lines.

    Entries are spooled (in memory up to a few MB, then a local temporary file), so a source that sends nothing
    but garbage still runs in bounded memory. :meth:`publish` moves the file into the lake.
    """

    def __init__(self, lake: Lake, source: str, entity: str, ingestion_date: date, run_id: str) -> None:
        self.lake = lake
        self.source, self.entity, self.ingestion_date, self.run_id = source, entity, ingestion_date, run_id
        self.relative = posixpath.join(
            partition_path(QUARANTINE_ZONE, source, entity, ingestion_date), quarantine_file_name(run_id)
        )
        self.records = 0  # bad source records (a whole unparseable page counts as the records it held)
        self.entries = 0
        self.first_reason: str | None = None
        # Closed by __exit__: a Quarantine is used as a context manager.
        self._spool = tempfile.SpooledTemporaryFile(  # ruff: ignore[open-file-with-context-handler]
            max_size=8 * 1024 * 1024, mode="w+b"
        )

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._spool.close()

    @property
    def url(self) -> str:
        return self.lake.url(self.relative)

    def add(self, *, location: str, reason: str, record: Any, field: str | None = None, records: int = 1) -> None:
        """Quarantine one record (or, with ``records``, a page that held that many): ``location`` names the file
        or page and the record in it, ``record`` is what the source sent (text when it did not parse)."""
        message = f"{location}, field {field!r}: {reason}" if field else f"{location}: {reason}"
        entry = {
            "run_id": self.run_id,
            "source": self.source,
            "entity": self.entity,
            "ingestion_date": self.ingestion_date.isoformat(),
            "location": location,
            "field": field,
            "reason": message,
            "records": records,
            "record": record,
            "quarantined_at": datetime.now(UTC).isoformat(),
        }
        self._spool.write(json.dumps(entry, default=str, ensure_ascii=False).encode("utf-8") + b"\n")
        self.records += records
        self.entries += 1
        self.first_reason = self.first_reason or message
        if self.entries <= 20:  # the first few in the task log; all of them in the file
            log.warning("%s.%s quarantined: %s", self.source, self.entity, message)

    def publish(self) -> str | None:
        """Move this run's file into the lake (staged, then moved: never seen half-written); returns its URL.

        With no bad records, a file a previous attempt of the same run left is removed, so the quarantine always
        describes the latest attempt.
        """
        target = self.lake.path(self.relative)
        if not self.entries:
            if self.lake.fs.exists(target):
                self.lake.fs.rm(target)
            return None
        staged = self.lake.path(posixpath.join(STAGING_ZONE, uuid.uuid4().hex, quarantine_file_name(self.run_id)))
        self.lake.fs.makedirs(posixpath.dirname(staged), exist_ok=True)
        self._spool.seek(0)
        with self.lake.fs.open(staged, "wb") as handle:
            while chunk := self._spool.read(4 * 1024 * 1024):
                handle.write(chunk)
        self.lake.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        self.lake.fs.mv(staged, target)
        staging_folder = posixpath.dirname(staged)
        if self.lake.fs.exists(staging_folder):
            self.lake.fs.rm(staging_folder, recursive=True)
        log.warning("%s.%s: %s bad record(s) quarantined to %s", self.source, self.entity, self.records, self.url)
        return self.url

    def check_ratio(self, good_records: int, max_bad_ratio: float) -> None:
        """Fail the run when the bad share passes ``max_bad_ratio``."""
        total = good_records + self.records
        if not self.records or self.records / total <= max_bad_ratio:
            return
        raise TooManyBadRecordsError(
            f"source {self.source!r}, entity {self.entity!r}, ingestion_date {self.ingestion_date}: "
            f"{self.records} of {total} record(s) ({self.records / total:.2%}) are bad, more than max_bad_ratio "
            f"{max_bad_ratio} allows; they are in {self.url}. First: {self.first_reason}"
        )
