"""Which data interval a run processes, whatever started it.

Extraction runs on a data-interval timetable, so their interval is the previous day. The medallion DAG starts when
raw data lands (Assets): each extraction attaches its interval to the asset event, and the medallion run covers the
union of its triggering events. A manual run may name an interval in its conf (the UI's Trigger form), which wins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

START_KEY = "data_interval_start"
END_KEY = "data_interval_end"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataInterval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(
                f"data interval end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )

    def as_extra(self) -> dict[str, str]:
        """The form carried in asset event extras, XCom and dbt vars (ISO 8601, UTC)."""
        return {START_KEY: self.start.isoformat(), END_KEY: self.end.isoformat()}

    def days(self) -> list[date]:
        day, days = self.start.date(), []
        while datetime.combine(day, time(), UTC) < self.end:
            days.append(day)
            day += timedelta(days=1)
        return days


def parse_moment(value: str | datetime | date) -> datetime:
    """A date or datetime (ISO text accepted) as an aware UTC datetime; naive values are taken as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_mapping(values: Mapping[str, Any]) -> DataInterval | None:
    if values.get(START_KEY) and values.get(END_KEY):
        return DataInterval(parse_moment(values[START_KEY]), parse_moment(values[END_KEY]))
    return None


def day_interval(day: date) -> DataInterval:
    start = parse_moment(day)
    return DataInterval(start, start + timedelta(days=1))


def resolve(
    conf: Mapping[str, Any] | None,
    triggering_extras: Iterable[Mapping[str, Any]],
    run_interval: tuple[datetime | None, datetime | None],
    run_after: datetime,
) -> DataInterval:
    """Pick the interval: the run's conf, else the union of triggering asset events, else the run's own interval,
    else the day before the run (D-1)."""
    if conf and (explicit := from_mapping(conf)):
        return explicit
    intervals = [interval for extra in triggering_extras if (interval := from_mapping(extra or {}))]
    if intervals:
        return DataInterval(min(i.start for i in intervals), max(i.end for i in intervals))
    start, end = run_interval
    if start is not None and end is not None and end > start:
        return DataInterval(parse_moment(start), parse_moment(end))
    return day_interval(parse_moment(run_after).date() - timedelta(days=1))


def medallion_data_interval(
    dag_run: Any, triggering_asset_events: Any, data_interval_start: Any, data_interval_end: Any
) -> dict[str, str]:
    """The interval a medallion run processes: from its conf, the union of its triggering asset events, or D-1.

    A template macro (the medallion DAG's ``user_defined_macros``) rendered into the dbt producer's environment:
    resolved where dbt starts, it costs no task of its own (a task process, seconds before every run).
    """
    extras = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
    interval = resolve(dag_run.conf, extras, (data_interval_start, data_interval_end), dag_run.run_after)
    log.info("medallion run covers [%s, %s)", interval.start, interval.end)
    return interval.as_extra()
