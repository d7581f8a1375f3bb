"""Defaults every medalflow DAG shares: owner, retries, timeouts, failure notifications, schedules."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from airflow.timetables.interval import CronDataIntervalTimetable

from medalflow.notifications import FailureNotifier

OWNER = "data-platform"
# Before the demo data begins; DAGs do not catch up on their own (backfills are explicit).
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
# A fixed window of days the extraction DAGs are scheduled for, and catch up on once unpaused: the compose stack sets
# it to the days its demo sources were seeded with, so unpausing runs exactly those days (docs/compose.md). Unset
# everywhere else (MWAA included): the DAGs run from START_DATE on, without catching up.
WINDOW_START_VARIABLE = "MEDALFLOW_EXTRACTION_WINDOW_START"
WINDOW_END_VARIABLE = "MEDALFLOW_EXTRACTION_WINDOW_END"

DEFAULT_ARGS = {
    "owner": OWNER,
    # The demo and the tests set 0: a broken task should fail at once, not after the retry delays.
    "retries": int(os.getenv("MEDALFLOW_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=1),
    # Every failed task of every DAG is reported (channel chosen by MEDALFLOW_NOTIFIER when it fails).
    "on_failure_callback": FailureNotifier(),
}


@dataclass(frozen=True)
class ScheduleWindow:
    """Days ``[start, end)``: the scheduled runs are the intervals that start inside it, caught up on when unpaused."""

    start: datetime
    end: datetime

    @property
    def last_logical_date(self) -> datetime:
        """The DAG's ``end_date``: Airflow schedules no interval that starts after it."""
        return self.end - timedelta(microseconds=1)


def extraction_window() -> ScheduleWindow | None:
    """The window of ``MEDALFLOW_EXTRACTION_WINDOW_START`` and ``_END`` (``YYYY-MM-DD``, the end excluded), or None
    when neither is set."""
    values = {name: os.getenv(name, "").strip() for name in (WINDOW_START_VARIABLE, WINDOW_END_VARIABLE)}
    if not any(values.values()):
        return None
    days = {}
    for name, value in values.items():
        if not value:
            missing = next(other for other in values if other != name)
            raise ValueError(f"{name} is not set while {missing} is: set both (YYYY-MM-DD) or neither")
        try:
            days[name] = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a date: expected YYYY-MM-DD, e.g. 2026-01-05") from None
    start, end = (datetime.combine(days[name], datetime.min.time(), UTC) for name in values)
    if end <= start:
        raise ValueError(
            f"{WINDOW_END_VARIABLE}={values[WINDOW_END_VARIABLE]} is not after "
            f"{WINDOW_START_VARIABLE}={values[WINDOW_START_VARIABLE]}: the end is the day after the last one to run"
        )
    return ScheduleWindow(start, end)


def daily_previous_day() -> CronDataIntervalTimetable:
    """Runs at 00:00 UTC over the day that just ended, [D-1 00:00, D 00:00).

    Airflow 3's default cron timetable has start == end; extraction needs a real interval to filter changes on.
    """
    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def weekly_sunday_0200() -> CronDataIntervalTimetable:
    """Sundays at 02:00 UTC over the week before: for the expensive forecast API."""
    return CronDataIntervalTimetable("0 2 * * 0", timezone="UTC")


SCHEDULE_DESCRIPTIONS = {
    "daily": "daily at 00:00 UTC; each run covers the day before, `[D-1, D)`, landed as `ingestion_date=D-1`",
    "weekly": (
        "weekly, Sundays at 02:00 UTC; each run covers the week before (Sunday 02:00 to Sunday 02:00), landed as "
        "`ingestion_date=<the interval's first day>`"
    ),
}


def extraction_timetable(schedule: str) -> CronDataIntervalTimetable:
    """The timetable of an extraction DAG's ``schedule``: ``daily``, ``weekly`` or a cron expression (UTC).

    Always a data-interval timetable: a custom cron's run covers the time since the previous tick, a real interval
    the extraction filters changes on (Airflow 3's plain cron timetable has start == end).
    """
    if schedule == "daily":
        return daily_previous_day()
    if schedule == "weekly":
        return weekly_sunday_0200()
    return CronDataIntervalTimetable(schedule, timezone="UTC")


def describe_schedule(schedule: str) -> str:
    """One sentence for people: when the runs start and which interval each covers."""
    if schedule in SCHEDULE_DESCRIPTIONS:
        return SCHEDULE_DESCRIPTIONS[schedule]
    when = extraction_timetable(schedule).description or schedule
    return (
        f"cron `{schedule}` (UTC: {when[0].lower()}{when[1:]}); each run covers the time since the previous tick, "
        "landed as `ingestion_date=<the interval's first day>`"
    )
