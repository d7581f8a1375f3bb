"""REST APIs the project has never seen, each added by a YAML file and a connection only, run as generated DAGs.

Three small servers of different shapes (``tests/rest_shapes.py``, subprocesses) and today's partner API: each is
declared in a temporary sources folder (``MEDALFLOW_SOURCES_DIR``) with an ``AIRFLOW_CONN_*`` variable, and its DAG,
built by ``medalflow.extract.dags`` like every other, runs through ``dag.test()`` for two consecutive days. For each:
the landed records are exactly the server's own records of the interval (so the record at 23:59:59 lands on its day
and the one at 00:00:00 on the next), 429 with Retry-After, 5xx and a timeout are ridden out, and a rerun gives the
same files with the same rows.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
from airflow_metadata import forget_dags
from local_servers import serving
from rest_shapes import API_KEY, BASIC_PASSWORD, BASIC_USER, CLIENT_ID, CLIENT_SECRET, boundary_ids

pytestmark = pytest.mark.integration

DAYS = (date(2026, 3, 2), date(2026, 3, 3))
SHAPES_SCRIPT = Path(__file__).resolve().parents[1] / "rest_shapes.py"
PARTNER_YML = Path(__file__).resolve().parents[2] / "dags" / "config" / "sources" / "partner.yml"
FAST = """
connect_timeout_seconds: 1
timeout_seconds: 0.5
max_attempts: 5
backoff_seconds: 0.01
max_backoff_seconds: 0.05
max_retry_after_seconds: 5
"""
FAULTS = [  # one of each, taken by the first data requests of the second day
    {"kind": "rate_limit", "retry_after": 1},
    {"kind": "server_error"},
    {"kind": "slow", "delay": 1.0},
]

# An API key in a header (plus a static header from the connection's extras), cursor pagination, nested records,
# since/until as plain dates with an inclusive end.
SHOP_YML = """
source: shop
kind: rest
conn_id: shop_api
description: An online shop's orders API.
dag: {dag_id: extract_shop, schedule: daily}
auth: {type: api_key, name: X-API-Key, location: header, value_from: password}
pagination: {type: cursor, cursor_path: meta.next_cursor, cursor_param: cursor, page_size: 4, page_size_param: limit}
data_selector: results.items
incremental: {start_param: since, end_param: until, format: date, end_inclusive: true, cursor_field: updated_at}
entities:
  orders:
    path: /v2/orders
    key: order_id
    columns:
      order_id: {path: id, type: bigint}
      customer_id: {path: customer.id, type: bigint}
      customer_name: {path: customer.name, type: string}
      lines: {path: lines, type: string}
      amount: decimal(18,2)
      updated_at: timestamptz
"""
# HTTP basic, offset/limit without a total, the body a bare list, epoch seconds with an inclusive end.
BILLING_YML = """
source: billing
kind: rest
conn_id: billing_api
description: The billing system's invoices.
dag: {dag_id: extract_billing, schedule: daily}
auth: http_basic
pagination: {type: offset, limit: 5}
data_selector: $
entities:
  invoices:
    path: /api/invoices
    key: invoice_id
    incremental:
      start_param: from_ts
      end_param: to_ts
      format: epoch_seconds
      end_inclusive: true
      cursor_field: created
    columns:
      invoice_id: bigint
      created: bigint
      total: decimal(18,2)
"""
# OAuth2 client credentials, the next page in the Link header, datetimes without zone, a nested key.
EVENTS_YML = """
source: events
kind: rest
conn_id: events_api
description: A product analytics API's events.
dag: {dag_id: extract_events, schedule: daily}
auth: {type: oauth2_client_credentials, token_url: /oauth/token, scopes: [events:read]}
pagination: {type: header_link, page_size: 6, page_size_param: per_page}
data_selector: events
incremental: {start_param: start, end_param: end, format: datetime_naive, cursor_field: occurred_at}
entities:
  events:
    path: /v1/events
    key: id.value
    columns:
      event_id: {path: id.value, type: string}
      occurred_at: timestamp
      payload: string
"""
SHAPES = {
    "cursor": (
        "shop",
        "orders",
        "order_id",
        SHOP_YML,
        {"password": API_KEY, "extra": {"headers": {"X-Tenant": "acme"}}},
    ),
    "offset": ("billing", "invoices", "invoice_id", BILLING_YML, {"login": BASIC_USER, "password": BASIC_PASSWORD}),
    "link": ("events", "events", "event_id", EVENTS_YML, {"login": CLIENT_ID, "password": CLIENT_SECRET}),
}


def day_run(day: date) -> datetime:
    """The logical date of the daily run over [day, day + 1)."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


def run_dag(dag, day: date) -> None:
    run = dag.test(logical_date=day_run(day))
    assert str(run.state).lower().endswith("success"), f"{dag.dag_id} for {day}: {run.state}"


def partition(lake_dir: Path, source: str, entity: str, day: date) -> dict[str, list[dict]]:
    """Each file of a raw partition with its rows, without the per-run metadata."""
    folder = lake_dir / "raw" / source / entity / f"ingestion_date={day}"
    files = {}
    for path in sorted(folder.glob("*.parquet")):
        rows = pq.read_table(path).to_pylist()
        files[path.name] = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    return files


def landed(lake_dir: Path, source: str, entity: str, key: str, day: date) -> list:
    return sorted(row[key] for rows in partition(lake_dir, source, entity, day).values() for row in rows)


@pytest.fixture
def sources_dir(tmp_path, monkeypatch, fresh_asset_registry) -> Iterator[Path]:
    """A sources folder of the test's own; the DAGs it became are deleted from Airflow's database afterwards, so a
    later test running a DAG of the same id (extract_partner_api) starts from its own lake, not from these runs."""
    from medalflow.extract.dags import build_extraction_dags

    folder = tmp_path / "sources"
    folder.mkdir()
    monkeypatch.setenv("MEDALFLOW_SOURCES_DIR", str(folder))
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    yield folder
    forget_dags(build_extraction_dags(folder))


def add_source(folder: Path, name: str, text: str, conn_id: str, connection: dict, monkeypatch) -> None:
    """What a user does: a YAML file in the sources folder and a connection; nothing else."""
    (folder / f"{name}.yml").write_text(text)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **connection}))


def assert_nested_fields_are_flat_typed_columns(files: dict[str, list[dict]]) -> None:
    (rows,) = files.values()
    first = min(rows, key=lambda row: row["order_id"])
    number = first["order_id"]
    assert (first["customer_id"], first["customer_name"]) == (100 + number % 7, f"Customer {number % 7}")
    assert json.loads(first["lines"]) == [{"qty": 1 + number % 4, "sku": f"SKU-{number % 3}"}]  # an array as JSON
    assert first["amount"] == Decimal(f"{number * 3}.50")
    assert first["updated_at"] == datetime.combine(DAYS[0], datetime.min.time(), UTC)
    assert json.loads(first["customer"])["id"] == first["customer_id"]  # the object itself passes through as JSON


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_new_api_lands_each_record_once_on_its_day(shape, sources_dir, tmp_path, monkeypatch):
    from medalflow.extract.dags import build_extraction_dags

    source, entity, key, text, secrets = SHAPES[shape]
    command = lambda port: [sys.executable, str(SHAPES_SCRIPT), shape, "--port", str(port)]  # ruff: ignore[lambda-assignment]
    with serving(command, f"rest_shapes {shape}", tmp_path / f"{shape}.log") as port:
        base_url = f"http://127.0.0.1:{port}"
        connection = {"host": "127.0.0.1", "port": port, "schema": "http", **secrets}
        if shape == "cursor":  # the base URL may also be a full URL in host
            connection = {"host": base_url, **secrets}
        add_source(sources_dir, source, FAST + text, f"{source}_api", connection, monkeypatch)
        dag = build_extraction_dags(sources_dir)[f"extract_{source}"]
        lake_dir = tmp_path / "lake"

        for number, day in enumerate(DAYS):
            if number == 1:
                requests.post(f"{base_url}/admin/faults", json=FAULTS, timeout=5).raise_for_status()
            run_dag(dag, day)
            start = datetime.combine(day, datetime.min.time(), UTC)
            expected = requests.get(
                f"{base_url}/admin/ids",
                params={"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()},
                timeout=5,
            ).json()["ids"]
            ids = landed(lake_dir, source, entity, key, day)
            if shape == "link":
                ids = [int(value.removeprefix("evt-")) for value in ids]
            assert ids == expected, (shape, day)  # exactly the server's own records of the interval
            midnight, last_second = boundary_ids(day)
            assert midnight in ids
            assert last_second in ids
            assert boundary_ids(day + timedelta(days=1))[0] not in ids  # 00:00:00 of the next day is the next day's

        if shape == "cursor":
            assert_nested_fields_are_flat_typed_columns(partition(lake_dir, source, entity, DAYS[0]))

        stats = requests.get(f"{base_url}/admin/stats", timeout=5).json()
        data_path = next(path for path in stats["responses"] if not path.startswith("/oauth"))
        assert {"429", "503"} <= set(stats["responses"][data_path]), stats  # the faults were met and ridden out
        # The slow answer (1 s) came after the client's timeout (0.5 s): the records above could only land exactly
        # because that page was asked for again.
        assert stats["faults_taken"] == {"rate_limit": 1, "server_error": 1, "slow": 1}

        before = partition(lake_dir, source, entity, DAYS[1])
        run_dag(dag, DAYS[1])
        after = partition(lake_dir, source, entity, DAYS[1])
        assert list(after) == list(before)  # the same files...
        assert after == before  # ...with the same rows
        assert not list(lake_dir.glob("_staging/**/*.parquet"))


def test_the_partner_api_by_its_shipped_yaml(sources_dir, tmp_path, monkeypatch):
    from medalflow.extract.dags import build_extraction_dags
    from medalflow_demo.partner_api import DEFAULT_PASSWORD, DEFAULT_USERNAME, serve_in_background
    from medalflow_demo.world import DemoConfig, generate

    world = generate(
        DemoConfig(seed=7, scale=0.2, start_date=DAYS[0] - timedelta(days=1), end_date=DAYS[-1] + timedelta(days=2))
    )
    base_url, stop = serve_in_background(world=world)
    try:
        host, port = base_url.removeprefix("http://").split(":")
        text = PARTNER_YML.read_text() + FAST  # later keys win: the shipped config with short waits
        connection = {
            "host": host,
            "port": int(port),
            "schema": "http",
            "login": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
        }
        add_source(sources_dir, "partner", text, "medalflow_partner_api", connection, monkeypatch)
        dag = build_extraction_dags(sources_dir)["extract_partner_api"]
        token = requests.post(
            f"{base_url}/api/v1/users/login",
            json={"username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD},
            timeout=5,
        ).json()["access_token"]
        for number, day in enumerate(DAYS):
            if number == 1:
                faults = [
                    {"path": "/api/v1/payments", "kind": "rate_limit", "retry_after": 1},
                    {"path": "/api/v1/shipments", "kind": "server_error"},
                    {"path": "/api/v1/fx_rates", "kind": "slow", "delay": 1.0},
                ]
                requests.post(f"{base_url}/admin/faults", json=faults, timeout=5).raise_for_status()
            run_dag(dag, day)
            start = datetime.combine(day, datetime.min.time(), UTC)
            interval = {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat(), "page_size": 1}
            for entity in ("payments", "shipments", "fx_rates"):
                total = requests.get(
                    f"{base_url}/api/v1/{entity}",
                    params=interval,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                ).json()["total"]
                rows = sum(len(rows) for rows in partition(tmp_path / "lake", "partner", entity, day).values())
                assert rows == total > 0, (entity, day)
        assert requests.get(f"{base_url}/admin/faults", timeout=5).json() == {"faults": []}, "the faults were met"
        before = partition(tmp_path / "lake", "partner", "payments", DAYS[1])
        run_dag(dag, DAYS[1])
        assert partition(tmp_path / "lake", "partner", "payments", DAYS[1]) == before
    finally:
        stop()
