"""Tier 3: every extraction DAG through Airflow, over the real parts, into a lake on S3.

The ERP is PostgreSQL at 127.0.0.1:5432, the partner API serves over HTTP from a thread, S3 is moto in server mode
(a subprocess, reached through ``AWS_ENDPOINT_URL``) and the lake is ``s3://<bucket>/medalflow``. For each day of a
short backfill the ERP changes, the partners drop their files, and ``extract_erp``, ``extract_partner_api`` and
``extract_file_drops`` run through ``dag.test`` (real task runs, Assets and all); ``extract_forecast`` runs for the
week. Every entity's rows in raw (plus quarantine) must reconcile with what its source holds for the interval, the
last day is rerun to show the same objects and rows come back, and each Asset event carries its interval.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
import requests
from sqlalchemy import create_engine, text

from medalflow_demo import erp
from medalflow_demo.files import write_file_drops
from medalflow_demo.partner_api import DEFAULT_PASSWORD, DEFAULT_USERNAME, serve_in_background
from medalflow_demo.world import DemoConfig, generate

pytestmark = pytest.mark.integration

DAYS = [date(2026, 1, 12) + timedelta(days=offset) for offset in range(3)]  # Monday to Wednesday: FX every day
FORECAST_RUN = datetime(2026, 1, 18, 2, tzinfo=UTC)  # the Sunday run; its week starts 2026-01-11 02:00
FORECAST_DAY = date(2026, 1, 11)
ERP_TABLES = ("customers", "suppliers", "products", "orders")
API_ENTITIES = ("payments", "fx_rates", "shipments")
METADATA = {"_ingested_at", "_source", "_run_id", "_op"}


@pytest.fixture
def sources(fresh_asset_registry, postgres_database, moto_s3_bucket, monkeypatch):
    """The ERP on PostgreSQL, the partner API, a lake on moto S3, and the Airflow connections pointing at them."""
    world = generate(DemoConfig(seed=7, scale=0.2, start_date=DAYS[0], end_date=FORECAST_RUN.date()))
    erp_url = postgres_database("extraction_erp")
    engine = create_engine(erp_url)
    erp.create_schema(engine)
    base_url, stop = serve_in_background(world=world)
    host, port = base_url.removeprefix("http://").split(":")
    bucket = moto_s3_bucket
    database = erp_url.rsplit("/", 1)[1]
    erp_connection = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "login": "postgres",
        "schema": database,
    }
    api_connection = {
        "conn_type": "http",
        "host": host,
        "port": int(port),
        "schema": "http",
        "login": DEFAULT_USERNAME,
        "password": DEFAULT_PASSWORD,
    }
    monkeypatch.setenv("AIRFLOW_CONN_MEDALFLOW_ERP", json.dumps(erp_connection))
    monkeypatch.setenv("AIRFLOW_CONN_MEDALFLOW_PARTNER_API", json.dumps(api_connection))
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", f"s3://{bucket}/medalflow")
    yield world, engine, base_url
    stop()
    engine.dispose()


def run_dag(dag, logical_date: datetime) -> str:
    run = dag.test(logical_date=logical_date)
    assert str(run.state).lower().endswith("success"), f"{dag.dag_id} for {logical_date}: {run.state}"
    return run.run_id


def day_run(day: date) -> datetime:
    """The logical date of a manual run over [day, day + 1): the daily timetable takes the day that just ended."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


def partition_rows(lake, source: str, entity: str, day: date) -> list[dict]:
    rows = []
    for path in lake.list_files(f"raw/{source}/{entity}/ingestion_date={day}"):
        with lake.fs.open(lake.path(path), "rb") as handle:
            rows += pq.read_table(handle).to_pylist()
    return rows


def quarantined(lake, source: str, entity: str, day: date) -> int:
    count = 0
    for path in lake.list_files(f"quarantine/{source}/{entity}/ingestion_date={day}"):
        with lake.fs.open(lake.path(path), "rb") as handle:
            count += sum(json.loads(line)["records"] for line in handle.read().splitlines())
    return count


def erp_changes(engine, table: str, day: date) -> int:
    start = datetime.combine(day, datetime.min.time())
    with engine.connect() as connection:
        query = text(f"select count(*) from {table} where updated_at >= :start and updated_at < :end")
        return connection.execute(query, {"start": start, "end": start + timedelta(days=1)}).scalar_one()


def api_total(base_url: str, path: str, **params) -> int:
    """What the API says it holds, asked independently of the extractor (one record per page, read the total)."""
    login = {"username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}
    token = requests.post(f"{base_url}/api/v1/users/login", json=login, timeout=10).json()["access_token"]
    answer = requests.get(
        f"{base_url}{path}", params={**params, "page_size": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()["total"]


def inbox_rows(lake, day: date) -> int:
    rows = 0
    for path in lake.list_files("inbox"):
        if f"/{day}/" not in path:
            continue
        content = lake.fs.cat_file(lake.path(path))
        if path.endswith(".csv"):
            rows += len(list(csv.DictReader(io.StringIO(content.decode()))))
        else:
            rows += pq.read_metadata(io.BytesIO(content)).num_rows
    return rows


def snapshot(lake, day: date) -> dict[str, list[dict]]:
    """Every daily raw object of ``day`` with its rows, minus the per-run metadata."""
    objects = {}
    for source, entities in (("erp", ERP_TABLES), ("partner", API_ENTITIES), ("files", ("shipments",))):
        for entity in entities:
            for path in lake.list_files(f"raw/{source}/{entity}/ingestion_date={day}"):
                with lake.fs.open(lake.path(path), "rb") as handle:
                    rows = pq.read_table(handle).to_pylist()
                objects[path] = [{k: v for k, v in row.items() if k not in METADATA} for row in rows]
    return objects


def test_backfill_reconciles_every_entity_and_reruns_are_idempotent(sources):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from medalflow.lake import Lake
    from medalflow.settings import get_settings
    from medalflow_demo.pipeline import load_dags

    world, engine, base_url = sources
    lake = Lake(get_settings().lake_uri)
    dags = load_dags()
    interval_params = {}

    for number, day in enumerate(DAYS):
        erp.apply_day(engine, world, day)
        write_file_drops(world, day, lake.url("inbox"))
        if number == 1:  # the partner rate-limits and fails once mid-backfill: the tasks ride it out
            faults = [
                {"path": "/api/v1/payments", "kind": "rate_limit", "retry_after": 1},
                {"path": "/api/v1/shipments", "kind": "server_error", "times": 1},
            ]
            requests.post(f"{base_url}/admin/faults", json=faults, timeout=5).raise_for_status()
        for dag_id in ("extract_erp", "extract_partner_api", "extract_file_drops"):
            run_dag(dags[dag_id], day_run(day))
        if number == 1:
            assert requests.get(f"{base_url}/admin/faults", timeout=5).json() == {"faults": []}, "faults were hit"

        # Reconciliation, before the next day's changes move rows out of this interval.
        start, end = datetime.combine(day, datetime.min.time(), UTC), day_run(day)
        interval_params[day] = {"start": start.isoformat(), "end": end.isoformat()}
        for table in ERP_TABLES:  # a quiet day may change no supplier: equal counts, zero included
            assert len(partition_rows(lake, "erp", table, day)) == erp_changes(engine, table, day), (table, day)
        assert erp_changes(engine, "orders", day) > 0
        for entity in API_ENTITIES:
            landed = len(partition_rows(lake, "partner", entity, day)) + quarantined(lake, "partner", entity, day)
            assert landed == api_total(base_url, f"/api/v1/{entity}", **interval_params[day]) > 0, (entity, day)
        landed = len(partition_rows(lake, "files", "shipments", day)) + quarantined(lake, "files", "shipments", day)
        assert landed == inbox_rows(lake, day) > 0, day

    # Idempotent rerun of the last day: the same objects with the same rows.
    before = snapshot(lake, DAYS[-1])
    for dag_id in ("extract_erp", "extract_partner_api", "extract_file_drops"):
        run_dag(dags[dag_id], day_run(DAYS[-1]))
    after = snapshot(lake, DAYS[-1])
    assert list(after) == list(before)
    assert after == before
    assert not lake.list_files("_staging")

    # The weekly forecast: projects, then each project's baseline and scenarios.
    run_dag(dags["extract_forecast"], FORECAST_RUN)
    projects = partition_rows(lake, "forecast", "projects", FORECAST_DAY)
    assert len(projects) == api_total(base_url, "/api/v1/forecast/projects") > 0
    for entity, endpoint in (("baselines", "baseline"), ("scenarios", "scenarios")):
        expected = sum(
            api_total(base_url, f"/api/v1/forecast/projects/{project['project_id']}/{endpoint}") for project in projects
        )
        assert len(partition_rows(lake, "forecast", entity, FORECAST_DAY)) == expected > 0

    # Each raw dataset is an Asset whose events carry the interval they landed.
    with create_session() as session:
        events = session.query(AssetEvent).all()
        extras = {}
        for event in events:
            extras.setdefault(event.asset.name, []).append(event.extra)
    for day in DAYS:
        for name in ("raw.partner.payments", "raw.files.shipments", "raw.erp.orders"):
            starts = [extra["data_interval_start"] for extra in extras[name]]
            assert interval_params[day]["start"] in starts, (name, day)
    (forecast_extra,) = extras["raw.forecast.scenarios"]
    assert forecast_extra["data_interval_start"] == datetime(2026, 1, 11, 2, tzinfo=UTC).isoformat()
    assert forecast_extra["rows"] > 0
