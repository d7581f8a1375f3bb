"""The extraction window (``MEDALFLOW_EXTRACTION_WINDOW_START``/``_END``): the compose stack's extraction DAGs run
exactly the seeded demo days once unpaused, and nothing else; unset (MWAA), the DAGs are as before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from medalflow.dag_defaults import WINDOW_END_VARIABLE, WINDOW_START_VARIABLE, extraction_window

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = PROJECT_ROOT / "dags" / "extract_sources.py"
DAILY_EXTRACTIONS = ("extract_erp", "extract_partner_api", "extract_file_drops")


def extraction_dags():
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(GENERATOR))
    assert dags.import_errors == {}
    return dags.dags


def scheduled_intervals(dag, limit: int = 10) -> list[tuple[datetime, datetime]]:
    """The data intervals the scheduler creates at once for a DAG unpaused now (those due by now), in order."""
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=dag.start_date, latest=dag.end_date, catchup=dag.catchup)
    intervals, last, now = [], None, datetime.now(UTC)
    while len(intervals) < limit:
        info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None or info.data_interval is None or info.run_after > now:
            break
        intervals.append((info.data_interval.start, info.data_interval.end))
        last = info.data_interval
    return intervals


@pytest.fixture
def window(monkeypatch):
    def set_window(start: str, end: str) -> None:
        monkeypatch.setenv(WINDOW_START_VARIABLE, start)
        monkeypatch.setenv(WINDOW_END_VARIABLE, end)

    return set_window


def test_unset_the_extractions_start_from_the_house_start_date_without_catching_up(monkeypatch):
    monkeypatch.delenv(WINDOW_START_VARIABLE, raising=False)
    monkeypatch.delenv(WINDOW_END_VARIABLE, raising=False)
    assert extraction_window() is None
    dag = extraction_dags()["extract_erp"]
    assert (dag.catchup, dag.end_date) == (False, None)
    # Without catch-up, unpausing schedules only the latest interval (yesterday by the clock), never the demo days.
    (interval,) = scheduled_intervals(dag)
    assert interval[0] > datetime(2026, 1, 6, tzinfo=UTC)


def test_the_window_schedules_exactly_its_days_on_the_daily_extractions(window):
    window("2026-01-05", "2026-01-06")
    dags = extraction_dags()
    for dag_id in DAILY_EXTRACTIONS:
        dag = dags[dag_id]
        assert dag.catchup, dag_id
        assert scheduled_intervals(dag) == [(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC))]

    window("2026-01-05", "2026-01-08")
    days = [start.day for start, _ in scheduled_intervals(extraction_dags()["extract_erp"])]
    assert days == [5, 6, 7]


def test_a_weekly_extraction_runs_no_week_the_window_does_not_start(window):
    window("2026-01-05", "2026-01-06")
    assert scheduled_intervals(extraction_dags()["extract_forecast"]) == []


def test_manual_runs_stay_possible_outside_the_window(window):
    """The window is the DAG's end_date; a manual run (no logical date, as the UI's Trigger) is not held by it."""
    window("2026-01-05", "2026-01-06")
    dag = extraction_dags()["extract_erp"]
    assert dag.end_date == datetime(2026, 1, 5, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-01-05", "", f"{WINDOW_END_VARIABLE} is not set while {WINDOW_START_VARIABLE} is"),
        ("", "2026-01-06", f"{WINDOW_START_VARIABLE} is not set while {WINDOW_END_VARIABLE} is"),
        ("05/01/2026", "2026-01-06", f"{WINDOW_START_VARIABLE}='05/01/2026' is not a date: expected YYYY-MM-DD"),
        ("2026-01-06", "2026-01-06", f"{WINDOW_END_VARIABLE}=2026-01-06 is not after {WINDOW_START_VARIABLE}="),
    ],
)
def test_a_bad_window_names_the_setting_and_what_to_do(window, start, end, message):
    window(start, end)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        extraction_window()
