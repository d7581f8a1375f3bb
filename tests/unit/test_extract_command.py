"""``make extract``: a source of a temp sources folder extracted by hand for a range of days, through Airflow."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from airflow_metadata import forget_dags

from medalflow_cli import ExtractError, main, manual_intervals, run_extraction

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DROPS = """\
source: drops
kind: files
description: Daily CSV drops of one partner.
dag:
  dag_id: extract_drops_by_hand
  schedule: daily
entities:
  parcels:
    description: One row per parcel.
    key: parcel_id
    partners:
      acme: csv
    columns:
      parcel_id: bigint
      weight_kg: double
"""


@pytest.fixture
def sources(tmp_path, monkeypatch, fresh_asset_registry):
    folder, lake = tmp_path / "sources", tmp_path / "lake"
    folder.mkdir()
    (folder / "drops.yml").write_text(DROPS)
    monkeypatch.setenv("MEDALFLOW_SOURCES_DIR", str(folder))
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(lake))
    monkeypatch.setenv("MEDALFLOW_MEDALLION_SOURCES", "drops")  # the medallion DAG waits for this folder's sources
    for day, rows in ((date(2026, 1, 5), 3), (date(2026, 1, 6), 2)):
        inbox = lake / "inbox" / "acme" / "parcels" / day.isoformat()
        inbox.mkdir(parents=True)
        lines = [f"{day.day * 100 + number},{number}.5" for number in range(rows)]
        (inbox / "parcels.csv").write_text("parcel_id,weight_kg\n" + "\n".join(lines) + "\n")
    yield lake
    forget_dags(["extract_drops_by_hand"])


def test_a_range_of_days_is_extracted_one_run_per_day_and_reported(sources):
    out = io.StringIO()
    assert run_extraction("extract_drops_by_hand", date(2026, 1, 5), date(2026, 1, 6), out, log_path=None) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "extract_drops_by_hand: 2 interval(s) of its daily schedule"
    assert lines[1] == "2026-01-05  [2026-01-05T00:00:00+00:00, 2026-01-06T00:00:00+00:00)  landed:"
    assert lines[2].split() == ["parcels", "3", "rows", "raw/drops/parcels/ingestion_date=2026-01-05/"]
    assert lines[3] == "2026-01-06  [2026-01-06T00:00:00+00:00, 2026-01-07T00:00:00+00:00)  landed:"
    assert lines[4].split() == ["parcels", "2", "rows", "raw/drops/parcels/ingestion_date=2026-01-06/"]
    for day, ids in (("2026-01-05", [500, 501, 502]), ("2026-01-06", [600, 601])):
        table = pq.read_table(sources / "raw" / "drops" / "parcels" / f"ingestion_date={day}")
        assert sorted(table.column("parcel_id").to_pylist()) == ids
    assert not (sources / "_staging").exists()


def test_a_failing_day_stops_the_command_lands_nothing_and_says_what_to_do(sources):
    """As `make extract` runs it: its own process, Airflow's output in the log, the command's lines on the terminal."""
    import os
    import subprocess
    import sys

    log = sources.parent / "extract.log"
    paths = [str(PROJECT_ROOT / folder) for folder in ("dags", "plugins", "tools")]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-m", "medalflow_cli", "extract", "drops", "2026-01-07", "2026-01-08", "--log", str(log)]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)
    assert finished.returncode == 1, finished.stderr[-2000:]  # no file was dropped on the 7th
    lines = finished.stdout.splitlines()
    assert lines[0] == f"extract_drops_by_hand: 2 interval(s) of its daily schedule (Airflow's output: {log})"
    assert lines[1] == (
        "2026-01-07  [2026-01-07T00:00:00+00:00, 2026-01-08T00:00:00+00:00)  FAILED (extract_parcels); "
        "nothing landed for this interval"
    )
    assert lines[2].startswith(
        f"  ExtractionError: source 'drops', entity 'parcels', connection none (reads the lake), config "
        f"{sources.parent / 'sources' / 'drops.yml'}: FileDropError: no .csv file from partner 'acme'"
    )
    config = sources.parent / "sources" / "drops.yml"
    advice = "have the partner drop the file, or set require_daily_file: false for 'parcels'"
    assert lines[3] == f"  What to do: {advice} in {config}"
    assert lines[4].startswith("  once fixed, resume with START=2026-01-07 END=2026-01-08 (run manual__")
    assert len(lines) == 5  # stopped at the first failure: the 8th never ran
    assert "extract_parcels" in log.read_text()  # Airflow's own output went to the log
    assert not (sources / "raw").exists()
    assert not (sources / "_staging").exists()


def test_weekly_and_cron_schedules_give_their_own_intervals():
    from medalflow.dag_defaults import extraction_timetable

    weekly = manual_intervals(extraction_timetable("weekly"), date(2026, 1, 5), date(2026, 1, 19))
    assert [(i.start, i.end) for i in weekly] == [
        (datetime(2026, 1, 11, 2, tzinfo=UTC), datetime(2026, 1, 18, 2, tzinfo=UTC)),
        (datetime(2026, 1, 18, 2, tzinfo=UTC), datetime(2026, 1, 25, 2, tzinfo=UTC)),
    ]
    assert manual_intervals(extraction_timetable("weekly"), date(2026, 1, 5), date(2026, 1, 10)) == []
    twice = manual_intervals(extraction_timetable("0 6,18 * * *"), date(2026, 1, 5), date(2026, 1, 5))
    assert [(i.start.hour, i.end.hour) for i in twice] == [(6, 18), (18, 6)]


def test_mistakes_are_explained_before_anything_runs(sources, capsys):
    assert main(["extract", "nope", "2026-01-05"]) == 2
    assert "no source 'nope' in" in capsys.readouterr().err
    assert main(["extract", "drops", "2026-01-06", "2026-01-05"]) == 2
    assert "END 2026-01-05 is before START 2026-01-06" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["extract", "drops", "05/01/2026"])
    assert "'05/01/2026' is not a day: use YYYY-MM-DD" in capsys.readouterr().err


def test_a_weekly_source_outside_its_start_days_says_so(sources):
    (sources.parent / "sources" / "drops.yml").write_text(DROPS.replace("schedule: daily", "schedule: weekly"))
    with pytest.raises(ExtractError, match="none of its intervals starts between 2026-01-05 and 2026-01-06"):
        run_extraction("drops", date(2026, 1, 5), date(2026, 1, 6), io.StringIO(), log_path=None)
