"""The run's interval [start, end) as each API wants it, and each record checked against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from rest_shapes import Answer, Request, Server

from medalflow.extract.metadata import IngestionContext
from medalflow.extract.quarantine import TooManyBadRecordsError
from medalflow.extract.rest import ApiError, ApiLocation, IncrementalSpec, RestClient, RestSettings, extract_entity
from medalflow.extract.rest import parse_rest_entity as parse
from medalflow.extract.rest.records import cursor_moment, interval_query, needs_client_filter
from medalflow.extract.schema import SchemaError
from medalflow.lake import Lake

DAY = datetime(2026, 3, 2, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)


def spec(**options) -> IncrementalSpec:
    return IncrementalSpec.parse({"start_param": "since", "end_param": "until", **options})


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"format": "date", "end_inclusive": True}, ("2026-03-02", "2026-03-02")),  # until=D, never D+1
        ({"format": "date"}, ("2026-03-02", "2026-03-03")),
        ({"format": "datetime"}, ("2026-03-02T00:00:00+00:00", "2026-03-03T00:00:00+00:00")),
        ({"format": "datetime_naive"}, ("2026-03-02T00:00:00", "2026-03-03T00:00:00")),
        ({"format": "epoch_seconds"}, (1772409600, 1772496000)),
        ({"format": "epoch_seconds", "end_inclusive": True, "cursor_field": "ts"}, (1772409600, 1772496000)),
    ],
)
def test_a_day_in_each_format(options, expected):
    assert interval_query(spec(**options), DAY, NEXT) == {"since": expected[0], "until": expected[1]}


def test_a_week_with_an_inclusive_date_end_sends_its_last_day():
    week = interval_query(spec(format="date", end_inclusive=True), DAY, DAY + timedelta(days=7))
    assert week == {"since": "2026-03-02", "until": "2026-03-08"}


def test_an_interval_not_on_day_boundaries_asks_for_the_covering_days():
    start = DAY + timedelta(hours=2)
    assert interval_query(spec(format="date"), start, start + timedelta(days=7)) == {
        "since": "2026-03-02",
        "until": "2026-03-10",
    }
    assert needs_client_filter(spec(format="date"), start, start + timedelta(days=7))


def test_an_offset_interval_is_sent_in_utc():
    paris = datetime(2026, 3, 2, 1, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert interval_query(spec(format="datetime_naive"), paris, paris + timedelta(hours=1))["since"] == (
        "2026-03-02T01:00:00"
    )


@pytest.mark.parametrize(
    ("options", "needed"),
    [
        ({"format": "date", "end_inclusive": True}, False),
        ({"format": "datetime"}, False),
        ({"format": "datetime", "end_inclusive": True, "cursor_field": "t"}, True),
        ({"format": "epoch_seconds", "end_inclusive": True, "cursor_field": "t"}, True),
    ],
)
def test_when_the_api_can_send_records_of_another_interval(options, needed):
    assert needs_client_filter(spec(**options), DAY, NEXT) is needed


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-03-02T23:59:59Z", datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)),
        ("2026-03-03T01:00:00+01:00", datetime(2026, 3, 3, tzinfo=UTC)),
        ("2026-03-02T23:59:59", datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)),  # no zone: UTC
        ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
        (1772496000, datetime(2026, 3, 3, tzinfo=UTC)),
        ("1772495999.5", datetime(2026, 3, 2, 23, 59, 59, 500000, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        (True, None),
    ],
)
def test_cursor_values_as_instants(value, moment):
    assert cursor_moment(value) == moment


# --- extraction with the check ---------------------------------------------------------------------------------------

RECORDS = [  # what an inclusive-end API sends for the day: its last second, and the next day's first record
    {"id": 1, "at": "2026-03-02T00:00:00Z"},
    {"id": 2, "at": "2026-03-02T23:59:59Z"},
    {"id": 3, "at": "2026-03-03T00:00:00Z"},
    {"id": 4, "at": "not a time"},
]


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def extract(server: Server, tmp_path, incremental: dict, records=RECORDS, start=DAY, end=NEXT, **options):
    def app(request: Request) -> Answer:
        return Answer(200, {"data": records, "total": len(records)})

    server.app = app
    entity = parse(
        "s",
        "things",
        {
            "path": "/things",
            "key": "id",
            "columns": {"id": "bigint", "at": "timestamptz"},
            "incremental": incremental,
        },
    )
    settings = RestSettings.from_options(
        {"pagination": {"type": "page_number", "total_path": "total"}, "data_selector": "data", **options}
    )
    lake = Lake(str(tmp_path / "lake"))
    context = IngestionContext("s", "run-1", datetime.now(UTC))
    with RestClient(ApiLocation(server.base_url), settings) as client:
        result = extract_entity(client, entity, lake, start, end, context)
    return result, lake


INCLUSIVE = {"start_param": "from", "end_param": "to", "end_inclusive": True, "cursor_field": "at"}


def landed_ids(lake: Lake, day: date) -> list[int]:
    (path,) = lake.list_files(f"raw/s/things/ingestion_date={day}")
    return sorted(pq.read_table(lake.path(path)).column("id").to_pylist())


def test_records_of_another_interval_are_left_to_it_and_counted(server, tmp_path):
    result, lake = extract(server, tmp_path, INCLUSIVE, max_bad_ratio=0.5)
    assert landed_ids(lake, DAY.date()) == [1, 2]  # 23:59:59 is the day's, 00:00:00 of the next day is not
    assert (result["rows"], result["out_of_interval"], result["quarantined"]) == (2, 1, 1)
    assert result["rows"] + result["out_of_interval"] + result["quarantined"] == result["source_total"] == 4
    assert server.requests[0].query["to"] == NEXT.isoformat()
    (entry,) = [json.loads(line) for line in lake.fs.cat_file(lake.path(lake.list_files("quarantine")[0])).splitlines()]
    assert entry["field"] == "at"
    assert "cursor field at is 'not a time'" in entry["reason"]


def test_out_of_interval_quarantine_keeps_them_aside_and_counts_them_bad(server, tmp_path):
    with pytest.raises(TooManyBadRecordsError, match=r"2 of 4 record\(s\)"):
        extract(server, tmp_path, {**INCLUSIVE, "out_of_interval": "quarantine"})
    result, _ = extract(server, tmp_path, {**INCLUSIVE, "out_of_interval": "quarantine"}, max_bad_ratio=0.5)
    assert (result["rows"], result["out_of_interval"], result["quarantined"]) == (2, 0, 2)


def test_a_date_api_cannot_be_asked_for_part_of_a_day_without_a_cursor_field(server, tmp_path):
    incremental = {"start_param": "from", "end_param": "to", "format": "date", "end_inclusive": True}
    with pytest.raises(
        SchemaError, match=r"s\.things: the interval .* cannot be asked for exactly .*incremental\.cursor_field"
    ):
        extract(server, tmp_path, incremental, start=DAY + timedelta(hours=2), end=NEXT + timedelta(hours=2))


def test_a_total_that_does_not_add_up_fails_the_run(server, tmp_path):
    def app(request: Request) -> Answer:
        first = request.query.get("page") == "1"
        return Answer(200, {"data": RECORDS[:2] if first else [], "total": 3})  # one record short of its total

    result, _ = extract(server, tmp_path, INCLUSIVE, records=RECORDS[:2])
    assert result["source_total"] == 2
    server.app = app
    entity = parse("s", "things", {"path": "/t", "key": "id", "columns": {"id": "bigint"}, "incremental": None})
    settings = RestSettings.from_options(
        {"pagination": {"type": "page_number", "total_path": "total"}, "data_selector": "data"}
    )
    with (
        RestClient(ApiLocation(server.base_url), settings) as client,
        pytest.raises(ApiError, match=r"s\.things: the API reported 3 record\(s\) but 2 were extracted"),
    ):
        extract_entity(client, entity, Lake(str(tmp_path / "other")), DAY, NEXT, IngestionContext("s", "r", DAY))


def test_a_nested_field_missing_from_a_page_fails_naming_column_and_path(server, tmp_path):
    server.app = lambda request: Answer(200, {"data": [{"id": 1, "customer": {"name": "x"}}], "total": 1})
    entity = parse(
        "s",
        "orders",
        {
            "path": "/o",
            "key": "id",
            "columns": {"id": "bigint", "customer_id": {"path": "customer.id", "type": "bigint"}},
        },
    )
    settings = RestSettings.from_options(
        {"pagination": {"type": "page_number", "total_path": "total"}, "data_selector": "data"}
    )
    with (
        RestClient(ApiLocation(server.base_url), settings) as client,
        pytest.raises(
            SchemaError,
            match=r"page 1 of GET /o: .*missing required column\(s\) customer_id "
            r"\(nested: customer_id from customer\.id\)",
        ),
    ):
        extract_entity(client, entity, Lake(str(tmp_path / "lake")), DAY, NEXT, IngestionContext("s", "r", DAY))
