"""Reading values as their declared types, and the quarantine file and threshold."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from medalflow.extract.quarantine import (
    BadValueError,
    Limits,
    Quarantine,
    RecordConverter,
    RecordProblem,
    TooManyBadRecordsError,
    quarantine_file_name,
    value_converter,
)
from medalflow.extract.schema import DeclaredSchema
from medalflow.lake import Lake


@pytest.mark.parametrize(
    ("declared", "given", "read_as"),
    [
        ("bigint", 7, 7),
        ("bigint", "42", 42),
        ("bigint", 3.0, 3),
        ("int", -5, -5),
        ("double", "1.5", 1.5),
        ("decimal(18,2)", 747.52, Decimal("747.52")),
        ("decimal(18,2)", "10", Decimal("10.00")),
        ("decimal(18,4)", 4.9529, Decimal("4.9529")),
        ("string", "BRL", "BRL"),
        ("string", 12, "12"),
        ("bool", "true", True),
        ("date", "2026-01-12", date(2026, 1, 12)),
        ("timestamp", "2026-01-12T07:58:43Z", datetime(2026, 1, 12, 7, 58, 43)),
        ("timestamp", "2026-01-12T04:58:43-03:00", datetime(2026, 1, 12, 7, 58, 43)),
        ("timestamp", "2026-01-12 07:58:43", datetime(2026, 1, 12, 7, 58, 43)),
        ("timestamptz", "2026-01-12T07:58:43Z", datetime(2026, 1, 12, 7, 58, 43, tzinfo=UTC)),
    ],
)
def test_values_read_as_their_declared_type(declared, given, read_as):
    assert value_converter(declared)(given) == read_as


@pytest.mark.parametrize(
    ("declared", "given", "message"),
    [
        ("bigint", "12a", "is not an bigint"),
        ("bigint", True, "boolean"),
        ("bigint", 1.5, "not a whole number"),
        ("int", 2**40, "out of range"),
        ("decimal(18,2)", "not-a-number", r"is not a decimal\(18,2\)"),
        ("decimal(18,2)", 1.005, "more than 2 decimal places"),
        ("decimal(4,2)", 123.45, "more than 4 digits"),
        ("double", "nan", "not a finite number"),
        ("date", "2026-13-45", "is not a date"),
        ("date", "1900-01-01", "outside the plausible range"),
        ("timestamp", "2026-13-45 25:61:00", "is not an ISO 8601 timestamp"),
        ("timestamp", datetime(9999, 12, 31), "outside the plausible range"),
    ],
)
def test_values_that_do_not_fit_say_why(declared, given, message):
    with pytest.raises(BadValueError, match=message):
        value_converter(declared)(given)


SCHEMA = DeclaredSchema("partner", "payments", {"payment_id": "bigint", "amount": "decimal(18,2)", "note": "string"})


def test_a_record_converts_with_extras_as_text():
    converter = RecordConverter(SCHEMA, ["payment_id"])
    row = converter.convert({"payment_id": 1, "amount": 2.5, "note": None, "fee": 0.1}, ["fee"])
    assert row == {"payment_id": 1, "amount": Decimal("2.50"), "note": None, "fee": "0.1"}


def test_a_null_key_or_a_bad_field_rejects_the_record():
    converter = RecordConverter(SCHEMA, ["payment_id"], empty_is_null=True)
    assert converter.convert({"payment_id": "", "amount": 1}) == RecordProblem("payment_id", "key field is null")
    problem = converter.convert({"payment_id": 1, "amount": "x"})
    assert isinstance(problem, RecordProblem)
    assert problem.field == "amount"


def test_limits_come_from_the_source_options():
    limits = Limits.from_options({"max_bad_ratio": 0.05, "plausible_dates": {"from": "2000-01-01", "to": "2050-01-01"}})
    assert limits == Limits(0.05, (date(2000, 1, 1), date(2050, 1, 1)))
    with pytest.raises(ValueError, match="between 0 and 1"):
        Limits.from_options({"max_bad_ratio": 5})


def test_quarantine_writes_one_json_line_per_entry_under_the_run_id(tmp_path):
    lake = Lake(str(tmp_path))
    run_id = "scheduled__2026-01-12T00:00:00+00:00"
    with Quarantine(lake, "partner", "payments", date(2026, 1, 12), run_id) as quarantine:
        quarantine.add(location="page 2 of GET /x, record 3", field="amount", reason="bad", record={"amount": "x"})
        quarantine.add(location="page 4 of GET /x", reason="not JSON", record='{"da', records=100)
        url = quarantine.publish()
    assert quarantine_file_name(run_id) == "scheduled__2026-01-12T00_00_00_00_00.jsonl"
    assert url == lake.url(f"quarantine/partner/payments/ingestion_date=2026-01-12/{quarantine_file_name(run_id)}")
    with open(url, encoding="utf-8") as handle:
        entries = [json.loads(line) for line in handle]
    assert [entry["reason"] for entry in entries] == [
        "page 2 of GET /x, record 3, field 'amount': bad",
        "page 4 of GET /x: not JSON",
    ]
    assert [entry["records"] for entry in entries] == [1, 100]
    assert {entry["run_id"] for entry in entries} == {run_id}
    assert quarantine.records == 101
    assert not lake.list_files("_staging")


def test_the_threshold_is_a_share_of_everything_the_source_sent(tmp_path):
    with Quarantine(Lake(str(tmp_path)), "files", "shipments", date(2026, 1, 12), "run") as quarantine:
        quarantine.add(location="file a.csv, line 3", field="eta", reason="bad date", record={})
        quarantine.check_ratio(99, 0.01)  # 1 of 100: allowed
        with pytest.raises(TooManyBadRecordsError, match=r"1 of 99 record\(s\) \(1.01%\).*file a.csv, line 3"):
            quarantine.check_ratio(98, 0.01)
