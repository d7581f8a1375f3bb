"""Records out of a page body, nested fields into flat columns, and the run's interval as query parameters and as a
check on each record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from medalflow.extract.rest.spec import IncrementalSpec


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a path that is absent, as opposed to present and null


def select(document: Any, path: Sequence[str]) -> Any:
    """The value at a dotted path (keys, or list indexes as digits), or :data:`MISSING`."""
    node = document
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def dotted(path: Sequence[str]) -> str:
    return ".".join(path) or "$"


class Flattener:
    """A record (nested JSON) as a flat row: each declared column read from its path; the record's other
    top-level fields pass through under their own names (objects and arrays as JSON text, by the converter)."""

    def __init__(self, column_paths: Mapping[str, Sequence[str]]) -> None:
        self.column_paths = {name: tuple(path) for name, path in column_paths.items()}
        self.nested = {name: path for name, path in self.column_paths.items() if len(path) > 1 or path != (name,)}
        # Top-level fields that declared columns read from: not "new", even when they pass through.
        self.consumed_roots = {path[0] for path in self.column_paths.values()}

    def flat(self, record: Mapping[str, Any]) -> dict[str, Any]:
        if not self.nested:
            return dict(record)
        row = {name: value for name, value in record.items() if name not in self.column_paths}
        for name, path in self.column_paths.items():
            value = select(record, path)
            if value is not MISSING:
                row[name] = value
        return row

    def delivered(self, records: Sequence[Any]) -> list[str]:
        """The flat columns present in at least one record of a page, in the order they come."""
        names: dict[str, None] = {}
        for record in records:
            if isinstance(record, Mapping):
                names.update(dict.fromkeys(self.flat(record)))
        return list(names)


# --- the interval ----------------------------------------------------------------------------------------------------


def _is_midnight(moment: datetime) -> bool:
    return moment.timetz().replace(tzinfo=None) == time(0)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def interval_query(spec: IncrementalSpec, start: datetime, end: datetime) -> dict[str, Any]:
    """The query parameters that ask for ``[start, end)`` in the API's format and end convention."""
    start, end = _utc(start), _utc(end)
    if spec.format == "date":
        first = start.date()
        if spec.end_inclusive:  # the last day inside the interval: until=D for the day D, never D+1
            last = (end - timedelta(microseconds=1)).date()
        else:
            last = end.date() if _is_midnight(end) else end.date() + timedelta(days=1)
        values: tuple[Any, Any] = (first.isoformat(), last.isoformat())
    elif spec.format == "datetime":
        values = (start.isoformat(), end.isoformat())
    elif spec.format == "datetime_naive":
        values = (start.replace(tzinfo=None).isoformat(), end.replace(tzinfo=None).isoformat())
    else:  # epoch_seconds; a sub-second bound widens the request, the client-side check narrows it again
        values = (int(start.timestamp()), -int(-end.timestamp() // 1))
    query = {spec.start_param: values[0]}
    if spec.end_param:
        query[spec.end_param] = values[1]
    return query


def needs_client_filter(spec: IncrementalSpec, start: datetime, end: datetime) -> bool:
    """Whether what the API answers can hold records outside ``[start, end)`` by its own convention."""
    if spec.end_param is None:
        return True
    if spec.format == "date":
        return not (_is_midnight(_utc(start)) and _is_midnight(_utc(end)))
    if spec.format == "epoch_seconds" and (start.microsecond or end.microsecond):
        return True
    return spec.end_inclusive


def cursor_moment(value: Any) -> datetime | None:
    """A record's cursor value as a UTC instant: ISO date or datetime (no offset means UTC), or epoch seconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                return datetime.fromtimestamp(float(text), UTC)
            except ValueError:
                return None
        return _utc(moment)
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(0), UTC)
    return None
