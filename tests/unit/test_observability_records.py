"""Extraction run records: one JSON per task attempt in the lake, written by the extraction tasks' wrapper."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from medalflow.extract import tasks
from medalflow.observability import records

RUN_ID = "scheduled__2026-01-05T00:00:00+00:00"


def fake_context(try_number: int = 1) -> dict:
    return {
        "ti": SimpleNamespace(dag_id="extract_partner_api", task_id="extract_payments", try_number=try_number),
        "run_id": RUN_ID,
        "dag_run": SimpleNamespace(conf={}, run_after=datetime(2026, 1, 6, tzinfo=UTC)),
        "data_interval_start": datetime(2026, 1, 5, tzinfo=UTC),
        "data_interval_end": datetime(2026, 1, 6, tzinfo=UTC),
    }


@pytest.fixture
def in_a_task(monkeypatch, tmp_path):
    """A running extraction task: an Airflow context and a local lake."""
    import airflow.sdk

    state = {"context": fake_context()}
    monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: state["context"])
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    return state, tmp_path / "lake"


def read(lake, try_number: int = 1) -> dict:
    path = lake / records.record_path("extract_partner_api", RUN_ID, "payments", try_number)
    return json.loads(path.read_text())


def test_a_successful_attempt_records_rows_landed_and_quarantined(in_a_task):
    _state, lake = in_a_task

    def extract(group_name, entity_name):
        return {"rows": 12, "quarantined": 2}

    assert tasks.explain_failures(extract)("partner", "payments") == {"rows": 12, "quarantined": 2}
    record = read(lake)
    assert record["status"] == "success"
    assert (record["rows_landed"], record["rows_quarantined"]) == (12, 2)
    assert (record["source"], record["entity"], record["try_number"]) == ("partner", "payments", 1)
    assert record["interval_start"] == "2026-01-05T00:00:00+00:00"
    assert record["interval_end"] == "2026-01-06T00:00:00+00:00"
    assert record["started_at"] <= record["completed_at"]
    assert record["error"] is None
    path = f"_artifacts/extract/extract_partner_api/{RUN_ID}/payments/attempt=1.json"
    assert (lake / path).is_file()


def test_a_failed_attempt_is_recorded_with_the_redacted_error_and_each_retry_has_its_own(in_a_task):
    state, lake = in_a_task

    def extract(group_name, entity_name):
        raise ConnectionError("cannot reach postgresql://etl:hunter22@db:5432/erp")

    for attempt in (1, 2):
        state["context"] = fake_context(attempt)
        with pytest.raises(tasks.ExtractionError):
            tasks.explain_failures(extract)("partner", "payments")
    for attempt in (1, 2):
        record = read(lake, attempt)
        assert record["status"] == "failed"
        assert record["try_number"] == attempt
        assert record["rows_landed"] is None
        assert record["rows_quarantined"] is None
        assert "ConnectionError" in record["error"]
        assert "etl:***@db" in record["error"]
        assert "hunter22" not in json.dumps(record)


def test_a_sql_result_without_quarantine_counts_zero(in_a_task):
    _state, lake = in_a_task
    tasks.explain_failures(lambda group, entity: {"rows": 3})("partner", "payments")
    assert read(lake)["rows_quarantined"] == 0


def test_airflow_control_flow_is_not_an_attempt_to_record(in_a_task):
    from airflow.sdk.exceptions import AirflowSkipException

    _state, lake = in_a_task

    def skip(group_name, entity_name):
        raise AirflowSkipException("nothing to do")

    with pytest.raises(AirflowSkipException):
        tasks.explain_failures(skip)("partner", "payments")
    assert not (lake / "_artifacts").exists()


def test_outside_a_task_nothing_is_written_and_nothing_fails(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    assert tasks.explain_failures(lambda group, entity: {"rows": 1})("partner", "payments") == {"rows": 1}
    assert not (tmp_path / "lake").exists()


def test_a_lake_that_cannot_be_written_never_fails_the_extraction(in_a_task, monkeypatch, caplog):
    monkeypatch.setattr(records, "write_record", lambda *args: (_ for _ in ()).throw(PermissionError("read-only")))
    assert tasks.explain_failures(lambda group, entity: {"rows": 1})("partner", "payments") == {"rows": 1}
    assert "could not keep the extraction run record of partner.payments" in caplog.text


def test_a_record_round_trips_and_a_broken_one_names_what_is_missing(tmp_path):
    record = records.ExtractionRunRecord(
        "extract_erp", "r1", 1, "erp", "orders", None, None, "2026-01-05T00:00:00", "2026-01-05T00:00:01",
        5, 0, "success",
    )  # fmt: skip
    relative = records.write_record(str(tmp_path), record)
    assert relative == "_artifacts/extract/extract_erp/r1/orders/attempt=1.json"
    assert records.read_record((tmp_path / relative).read_text()) == record
    with pytest.raises(ValueError, match="rows_landed"):
        records.read_record(json.dumps({"dag_id": "extract_erp"}))
