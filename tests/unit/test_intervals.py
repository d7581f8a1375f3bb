from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from medalflow import intervals

JAN5 = datetime(2026, 1, 5, tzinfo=UTC)
JAN6 = datetime(2026, 1, 6, tzinfo=UTC)
JAN7 = datetime(2026, 1, 7, tzinfo=UTC)


def test_conf_wins_over_everything():
    conf = {"data_interval_start": "2026-01-05", "data_interval_end": "2026-01-07"}
    chosen = intervals.resolve(
        conf, [{"data_interval_start": "2025-01-01", "data_interval_end": "2025-01-02"}], (JAN6, JAN7), JAN7
    )
    assert (chosen.start, chosen.end) == (JAN5, JAN7)


def test_triggering_events_give_their_union():
    extras = [
        {"data_interval_start": JAN6.isoformat(), "data_interval_end": JAN7.isoformat()},
        {"data_interval_start": JAN5.isoformat(), "data_interval_end": JAN6.isoformat()},
        {"rows": 3},  # an event without an interval is ignored, not an error
    ]
    chosen = intervals.resolve({}, extras, (None, None), JAN7)
    assert (chosen.start, chosen.end) == (JAN5, JAN7)


def test_run_interval_then_previous_day():
    assert intervals.resolve(None, [], (JAN5, JAN6), JAN7).start == JAN5
    fallback = intervals.resolve(None, [], (JAN7, JAN7), datetime(2026, 1, 7, 3, 15, tzinfo=UTC))
    assert (fallback.start, fallback.end) == (JAN6, JAN7)


def test_naive_values_are_utc_and_round_trip():
    interval = intervals.from_mapping({"data_interval_start": "2026-01-05T00:00:00", "data_interval_end": "2026-01-06"})
    assert interval.start == JAN5
    assert intervals.from_mapping(interval.as_extra()) == interval
    assert interval.days() == [date(2026, 1, 5)]


def test_empty_interval_is_rejected():
    with pytest.raises(ValueError, match="not after its start"):
        intervals.DataInterval(JAN6, JAN5)
