"""REST extraction against the demo partner API over real HTTP: happy path, every fault, reruns, S3.

The server counts requests and responses per path (``/admin/stats``), so the tests check that a retry really
happened (a 503 then a 200), not only that the result came out right.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow.dataset as ds
import pytest
from airflow.models.connection import Connection

from medalflow.extract.config import load_source_group
from medalflow.extract.metadata import METADATA_COLUMNS, IngestionContext
from medalflow.extract.quarantine import TooManyBadRecordsError
from medalflow.extract.rest import ApiError, ApiLocation, RestClient, RestSettings, extract_entity, read_parent_keys
from medalflow.extract.schema import SchemaError
from medalflow.lake import Lake
from medalflow_demo.world import World

DAY = datetime(2026, 1, 12, tzinfo=UTC)  # a Monday: FX rates are published
PARTNER = load_source_group("partner")
FORECAST = load_source_group("forecast")
KEYS = {"payments": ("payment_id",), "shipments": ("shipment_id", "updated_at"), "fx_rates": ("base_currency",)}


def fast_settings(**overrides) -> RestSettings:
    """The partner's settings with small pages (several per day) and short waits."""
    options = {
        **PARTNER.options,
        "pagination": {**PARTNER.options["pagination"], "page_size": 100},
        "backoff_seconds": 0.05,
        "max_backoff_seconds": 0.2,
        "timeout_seconds": 5,
        **overrides,
    }
    return RestSettings.from_options(options)


def run(api, lake, entity_name, settings=None, run_id="run-1", group=PARTNER, parent_keys=None, start=DAY):
    location = ApiLocation(api.base_url, api.username, api.password)
    context = IngestionContext(group.name, run_id, datetime(2026, 1, 13, 0, 5, tzinfo=UTC))
    with RestClient(location, settings or fast_settings()) as client:
        entity = group.entity(entity_name)
        return extract_entity(client, entity, lake, start, start + timedelta(days=1), context, parent_keys)


def world_records(world: World, entity_name: str) -> list[dict]:
    day = DAY.date()
    records = {
        "payments": lambda: world.payment_changes(day),
        "shipments": lambda: world.shipment_changes(day, "api"),
        "fx_rates": lambda: world.fx_rates(day),
    }[entity_name]()
    return sorted(records, key=lambda record: [record[name] for name in KEYS[entity_name]])


def raw_records(lake: Lake, source: str, entity_name: str, day: date | None = None) -> list[dict]:
    """Every record of a raw partition, file by file (part files may differ in their extra columns)."""
    day = day or DAY.date()
    records = []
    for path in lake.list_files(f"raw/{source}/{entity_name}/ingestion_date={day}"):
        records += ds.dataset(lake.path(path), filesystem=lake.fs, format="parquet").to_table().to_pylist()
    return records


def without_metadata(records: list[dict], entity_name: str) -> list[dict]:
    stripped = [{k: v for k, v in record.items() if k not in METADATA_COLUMNS} for record in records]
    return sorted(stripped, key=lambda record: [record[name] for name in KEYS[entity_name]])


def quarantine_entries(lake: Lake, source: str, entity_name: str, run_id="run-1") -> list[dict]:
    path = lake.path(f"quarantine/{source}/{entity_name}/ingestion_date={DAY.date()}/{run_id}.jsonl")
    with lake.fs.open(path, "rb") as handle:
        return [json.loads(line) for line in handle.read().splitlines()]


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.mark.parametrize("entity_name", ["payments", "shipments", "fx_rates"])
def test_every_record_of_the_interval_lands_typed(partner_api, lake, world, entity_name):
    result = run(partner_api, lake, entity_name)
    expected = world_records(world, entity_name)
    records = raw_records(lake, "partner", entity_name)
    assert result["rows"] == result["source_total"] == len(expected) > 0
    assert without_metadata(records, entity_name) == expected
    assert {(r["_source"], r["_run_id"], r["_op"]) for r in records} == {("partner", "run-1", "U")}
    pages = -(-len(expected) // 100)
    assert partner_api.stats()["requests"][f"/api/v1/{entity_name}"] == pages
    assert result["quarantine"] is None


def test_types_follow_the_declared_schema(partner_api, lake):
    run(partner_api, lake, "payments")
    schema = ds.dataset(lake.path(f"raw/partner/payments/ingestion_date={DAY.date()}"), format="parquet").schema
    assert str(schema.field("payment_id").type) == "int64"
    assert str(schema.field("amount").type) == "decimal128(18, 2)"
    assert str(schema.field("updated_at").type) == "timestamp[us]"
    assert str(schema.field("_ingested_at").type) == "timestamp[us, tz=UTC]"


def test_rerun_replaces_the_same_objects_with_the_same_rows(partner_api, lake):
    run(partner_api, lake, "payments", run_id="run-1")
    first_files, first_rows = lake.list_files("raw"), raw_records(lake, "partner", "payments")
    run(partner_api, lake, "payments", run_id="run-2")
    assert lake.list_files("raw") == first_files
    second_rows = raw_records(lake, "partner", "payments")
    assert without_metadata(second_rows, "payments") == without_metadata(first_rows, "payments")
    assert {row["_run_id"] for row in second_rows} == {"run-2"}
    assert not lake.list_files("_staging")


def test_rate_limit_waits_what_retry_after_says(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/payments", "kind": "rate_limit", "retry_after": 1, "times": 1})
    began = time.monotonic()
    result = run(partner_api, lake, "payments")
    assert time.monotonic() - began >= 1.0  # backoff alone would have waited 0.05 s
    assert partner_api.stats()["responses"]["/api/v1/payments"]["429"] == 1
    assert result["rows"] == len(world_records(world, "payments"))


def test_server_errors_are_retried_with_backoff(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/payments", "kind": "server_error", "status": 503, "times": 3})
    result = run(partner_api, lake, "payments")
    assert partner_api.stats()["responses"]["/api/v1/payments"]["503"] == 3
    assert result["rows"] == len(world_records(world, "payments"))


def test_server_errors_past_the_attempts_fail_naming_request_and_attempts(partner_api, lake):
    partner_api.faults({"path": "/api/v1/payments", "kind": "server_error", "status": 502, "times": 10})
    with pytest.raises(ApiError, match=r"GET .*/api/v1/payments .*'page': 1.*gave up after 3 attempt\(s\); last: 502"):
        run(partner_api, lake, "payments", fast_settings(max_attempts=3))
    assert partner_api.stats()["requests"]["/api/v1/payments"] == 3
    assert not lake.list_files("raw")


def test_slow_response_past_the_timeout_is_retried(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/shipments", "kind": "slow", "delay": 1.5, "times": 1})
    result = run(partner_api, lake, "shipments", fast_settings(timeout_seconds=0.5))
    stats = partner_api.stats()
    assert stats["faults"] == {"slow": 1}
    pages = -(-len(world_records(world, "shipments")) // 100)
    assert stats["requests"]["/api/v1/shipments"] == pages + 1
    assert result["rows"] == len(world_records(world, "shipments"))


def test_expired_token_is_refreshed_by_logging_in_again(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/payments", "kind": "expire_token", "times": 1})
    result = run(partner_api, lake, "payments")
    stats = partner_api.stats()
    assert stats["responses"]["/api/v1/payments"]["401"] == 1
    assert stats["requests"]["/api/v1/users/login"] == 2
    assert result["rows"] == len(world_records(world, "payments"))


def test_wrong_password_fails_at_once_and_clearly(partner_api, lake):
    location = ApiLocation(partner_api.base_url, partner_api.username, "wrong")
    context = IngestionContext("partner", "run-1", datetime.now(UTC))
    with RestClient(location, fast_settings()) as client, pytest.raises(ApiError, match="refused the login of user"):
        extract_entity(client, PARTNER.entity("payments"), lake, DAY, DAY + timedelta(days=1), context)
    assert partner_api.stats()["requests"]["/api/v1/users/login"] == 1


def test_a_truncated_page_is_asked_for_again(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/payments", "kind": "malformed_json", "times": 1})
    result = run(partner_api, lake, "payments")
    assert partner_api.stats()["faults"] == {"malformed_json": 1}
    assert result["rows"] == len(world_records(world, "payments"))
    assert result["quarantined"] == 0


def test_a_page_that_stays_unparseable_is_quarantined_and_fails_the_run(partner_api, lake):
    partner_api.faults({"path": "/api/v1/payments", "kind": "malformed_json", "times": 2})
    with pytest.raises(TooManyBadRecordsError, match=r"100 of \d+ record\(s\).*page 1 of GET /api/v1/payments"):
        run(partner_api, lake, "payments", fast_settings(max_attempts=2))
    assert not lake.list_files("raw"), "a failed run publishes nothing to raw"
    (entry,) = quarantine_entries(lake, "partner", "payments")
    assert entry["records"] == 100
    assert entry["location"] == "page 1 of GET /api/v1/payments"
    assert entry["record"].startswith('{"data":[{"payment_id":')  # the body as received, cut short
    assert entry["run_id"] == "run-1"


def test_below_the_threshold_an_unparseable_page_reconciles(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/payments", "kind": "malformed_json", "times": 2})
    result = run(partner_api, lake, "payments", fast_settings(max_attempts=2, max_bad_ratio=0.5))
    expected = len(world_records(world, "payments"))
    assert result["quarantined"] == 100
    assert result["rows"] + result["quarantined"] == result["source_total"] == expected
    assert len(raw_records(lake, "partner", "payments")) == expected - 100


def test_a_renamed_field_fails_naming_source_entity_and_column(partner_api, lake):
    partner_api.faults({"path": "/api/v1/payments", "kind": "rename_field", "from": "amount", "to": "amt"})
    with pytest.raises(
        SchemaError, match=r"page 1 of GET /api/v1/payments: source 'partner', entity 'payments' is missing .* amount"
    ):
        run(partner_api, lake, "payments")
    assert not lake.list_files("raw")


def test_an_added_field_passes_through_as_text(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/payments", "kind": "add_field", "name": "fee", "value": 1.5, "times": 100})
    result = run(partner_api, lake, "payments")
    records = raw_records(lake, "partner", "payments")
    assert result["new_columns"] == ["fee"]
    assert {record["fee"] for record in records} == {"1.5"}
    assert without_metadata([{k: v for k, v in r.items() if k != "fee"} for r in records], "payments") == (
        world_records(world, "payments")
    )


def test_a_field_added_on_a_later_page_starts_a_wider_part(partner_api, lake, world):
    partner_api.faults(
        {"path": "/api/v1/payments", "kind": "add_field", "times": 1, "name": "none_yet", "value": None},
        {"path": "/api/v1/payments", "kind": "rate_limit", "retry_after": 0, "times": 1},
        {"path": "/api/v1/payments", "kind": "add_field", "name": "x_new", "value": "surprise", "times": 1},
    )
    run(partner_api, lake, "payments")
    assert lake.list_files("raw") == [
        f"raw/partner/payments/ingestion_date={DAY.date()}/part-00000.parquet",
        f"raw/partner/payments/ingestion_date={DAY.date()}/part-00001.parquet",
    ]
    records = raw_records(lake, "partner", "payments")
    assert len(records) == len(world_records(world, "payments"))
    assert sum(record.get("x_new") == "surprise" for record in records) == 100  # page 2 only


def test_a_bad_record_is_quarantined_with_page_record_and_field(partner_api, lake, world):
    partner_api.faults({"path": "/api/v1/payments", "kind": "bad_record", "field": "amount", "index": 4})
    result = run(partner_api, lake, "payments")
    expected = world_records(world, "payments")
    assert (result["rows"], result["quarantined"]) == (len(expected) - 1, 1)
    (entry,) = quarantine_entries(lake, "partner", "payments")
    assert entry["field"] == "amount"
    assert entry["reason"].startswith("page 1 of GET /api/v1/payments, record 5 (payment_id=")
    assert "'not-a-number' is not a decimal(18,2)" in entry["reason"]
    assert entry["record"]["amount"] == "not-a-number"
    landed = {record["payment_id"] for record in raw_records(lake, "partner", "payments")}
    assert landed | {entry["record"]["payment_id"]} == {record["payment_id"] for record in expected}


def test_a_null_key_is_quarantined(partner_api, lake):
    partner_api.faults({"path": "/api/v1/fx_rates", "kind": "bad_record", "field": "base_currency", "value": None})
    with pytest.raises(TooManyBadRecordsError, match=r"1 of 3 record\(s\).*field 'base_currency': key field is null"):
        run(partner_api, lake, "fx_rates")


def test_quarantine_of_a_later_successful_attempt_replaces_the_failed_ones(partner_api, lake):
    partner_api.faults({"path": "/api/v1/fx_rates", "kind": "bad_record", "field": "rate", "value": "x"})
    with pytest.raises(TooManyBadRecordsError):
        run(partner_api, lake, "fx_rates")
    assert len(quarantine_entries(lake, "partner", "fx_rates")) == 1
    run(partner_api, lake, "fx_rates")  # Airflow's retry: same run id, the partner sends good data now
    assert not lake.list_files("quarantine")


def test_forecast_projects_then_each_projects_baseline_and_scenarios(partner_api, lake, world):
    week = datetime(2026, 1, 4, 2, tzinfo=UTC)
    projects = run(partner_api, lake, "projects", group=FORECAST, start=week)
    ids = read_parent_keys(lake, "forecast", FORECAST.entity("baselines"), week.date())
    assert ids == [project["project_id"] for project in world.forecast_projects()]
    baselines = run(partner_api, lake, "baselines", group=FORECAST, start=week, parent_keys=ids)
    scenarios = run(partner_api, lake, "scenarios", group=FORECAST, start=week, parent_keys=ids)
    assert projects["rows"] == len(ids)
    assert baselines["rows"] == sum(len(world.forecast_baseline(i)) for i in ids)
    assert scenarios["rows"] == sum(len(world.forecast_scenarios(i)) for i in ids)
    requests_made = partner_api.stats()["requests"]
    assert all(requests_made[f"/api/v1/forecast/projects/{i}/scenarios"] == 1 for i in ids)
    rows = raw_records(lake, "forecast", "scenarios", week.date())
    assert {row["scenario"] for row in rows} == {"optimistic", "base", "pessimistic"}
    assert all(isinstance(row["amount_brl"], Decimal) for row in rows)


def test_the_lake_on_s3_goes_through_the_same_code(partner_api, s3_lake_uri, world):
    lake = Lake(s3_lake_uri)
    run(partner_api, lake, "payments", run_id="run-1")
    first = lake.list_files("raw")
    run(partner_api, lake, "payments", run_id="run-2")
    assert lake.list_files("raw") == first == [f"raw/partner/payments/ingestion_date={DAY.date()}/part-00000.parquet"]
    records = raw_records(lake, "partner", "payments")
    assert without_metadata(records, "payments") == world_records(world, "payments")
    assert not lake.list_files("_staging")


def test_location_comes_from_the_airflow_connection():
    connection = Connection(
        conn_id="medalflow_partner_api",
        conn_type="http",
        host="partner.example",
        port=8443,
        schema="https",
        login="svc",
        password="s3cret",
    )
    location = ApiLocation.from_airflow_connection(connection)
    assert (location.base_url, location.username, location.password) == (
        "https://partner.example:8443",
        "svc",
        "s3cret",
    )
    assert "s3cret" not in repr(location)
