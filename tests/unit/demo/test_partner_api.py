"""The partner API over real HTTP: authentication, pagination, interval semantics and every injected fault."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
import requests

from medalflow_demo.partner_api import FAULT_KINDS, serve_in_background
from medalflow_demo.world import DemoConfig, World, generate

START = date(2026, 1, 1)
PAYMENTS = "/api/v1/payments"
SHIPMENTS = "/api/v1/shipments"
TIMEOUT = 10


@pytest.fixture(scope="module")
def world() -> World:
    return generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=date(2026, 3, 1)))


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    url, stop = serve_in_background(world=world)
    yield url
    stop()


@pytest.fixture(autouse=True)
def _clean_server(base_url: str) -> None:
    requests.delete(f"{base_url}/admin/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{base_url}/admin/stats", timeout=TIMEOUT).raise_for_status()


def login(base_url: str, username: str = "partner", password: str = "partner-secret") -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/users/login", json={"username": username, "password": password}, timeout=TIMEOUT
    )


@pytest.fixture
def auth(base_url: str) -> dict[str, str]:
    response = login(base_url)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def get(base_url: str, path: str, headers: dict[str, str], **params: Any) -> requests.Response:
    return requests.get(f"{base_url}{path}", params=params, headers=headers, timeout=TIMEOUT)


def fetch_all(base_url: str, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    records, page = [], 1
    while page is not None:
        response = get(base_url, path, headers, page=page, **params)
        response.raise_for_status()
        body = response.json()
        assert body["page"] == page
        records += body["data"]
        page = body["next_page"]
    assert len(records) == body["total"]
    return records


def inject(base_url: str, *rules: dict[str, Any], append: bool = False) -> None:
    response = requests.post(
        f"{base_url}/admin/faults", json=list(rules), params={"append": str(append).lower()}, timeout=TIMEOUT
    )
    response.raise_for_status()


def stats(base_url: str) -> dict[str, Any]:
    return requests.get(f"{base_url}/admin/stats", timeout=TIMEOUT).json()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


DAY = {"start": "2026-01-05", "end": "2026-01-06"}


# ---------------------------------------------------------------------------------------------- authentication


def test_login_returns_a_bearer_token(base_url: str) -> None:
    response = login(base_url)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert len(body["access_token"]) > 20


@pytest.mark.parametrize(("username", "password"), [("partner", "wrong"), ("someone", "partner-secret")])
def test_wrong_credentials_are_refused(base_url: str, username: str, password: str) -> None:
    response = login(base_url, username, password)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Bearer not-a-token"}, "invalid_token"),
        ({"Authorization": "x"}, "missing_token"),
    ],
)
def test_data_needs_a_valid_token(base_url: str, headers: dict[str, str], error: str) -> None:
    for path in (PAYMENTS, SHIPMENTS, "/api/v1/fx_rates", "/api/v1/forecast/projects"):
        response = get(base_url, path, headers, **DAY)
        assert response.status_code == 401
        assert response.json()["error"] == error
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_tokens_expire(world: World) -> None:
    url, stop = serve_in_background(world=world, token_ttl=0.5, username="u", password="p")
    try:
        token = login(url, "u", "p").json()
        assert token["expires_in"] == pytest.approx(0.5)
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert get(url, PAYMENTS, headers, **DAY).status_code == 200
        time.sleep(0.6)
        response = get(url, PAYMENTS, headers, **DAY)
        assert response.status_code == 401
        assert response.json()["error"] == "token_expired"
    finally:
        stop()


# --------------------------------------------------------------------------------------------------- data


def test_pagination_covers_every_record_exactly_once(base_url: str, auth: dict[str, str], world: World) -> None:
    records = fetch_all(base_url, PAYMENTS, auth, start="2026-01-10", end="2026-01-13", page_size=37)
    expected = [
        payment
        for day in (date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 12))
        for payment in world.payment_changes(day)
    ]
    assert len(records) == len(expected) > 37 * 3
    seen = [(record["payment_id"], record["updated_at"]) for record in records]
    assert len(set(seen)) == len(seen)
    assert set(seen) == {(payment["payment_id"], iso(payment["updated_at"])) for payment in expected}
    assert seen == sorted(seen, key=lambda pair: (pair[1], pair[0])), "stable order: change time, then id"
    last = get(base_url, PAYMENTS, auth, start="2026-01-10", end="2026-01-13", page_size=37, page=999).json()
    assert last["data"] == []
    assert last["next_page"] is None


def test_intervals_are_half_open_and_partition_time(base_url: str, auth: dict[str, str]) -> None:
    whole = fetch_all(base_url, SHIPMENTS, auth, start="2026-01-12", end="2026-01-14", page_size=1000)
    boundary = datetime(2026, 1, 12, 13, 0, 0)
    before = fetch_all(base_url, SHIPMENTS, auth, start="2026-01-12", end=iso(boundary), page_size=1000)
    after = fetch_all(base_url, SHIPMENTS, auth, start=iso(boundary), end="2026-01-14", page_size=1000)
    assert before
    assert after
    assert before + after == whole
    assert all(record["updated_at"] < iso(boundary) for record in before)
    # An offset is converted to UTC: 10:00 in São Paulo (UTC-3) is 13:00 UTC.
    shifted = fetch_all(base_url, SHIPMENTS, auth, start="2026-01-12T00:00:00+00:00", end="2026-01-12T10:00:00-03:00")
    assert shifted == before


def test_payments_reference_orders_placed_by_then(base_url: str, auth: dict[str, str], world: World) -> None:
    records = fetch_all(base_url, PAYMENTS, auth, start="2026-01-01", end="2026-01-15", page_size=1000)
    directions = {record["direction"] for record in records}
    assert directions == {"inbound", "outbound"}
    for record in records:
        changed_on = date.fromisoformat(record["updated_at"][:10])
        assert world.order_placed_on(record["order_id"]) <= changed_on
        assert isinstance(record["amount"], float)
        assert set(record) == {
            "payment_id", "order_id", "direction", "amount", "currency", "method", "status", "paid_at", "updated_at",
        }  # fmt: skip


def test_shipments_are_the_api_channel_and_change_over_days(base_url: str, auth: dict[str, str], world: World) -> None:
    records = fetch_all(base_url, SHIPMENTS, auth, start="2026-01-01", end="2026-02-01", page_size=1000)
    assert {record["carrier"] for record in records} <= {
        "Atlas Maritime",
        "Cruzeiro do Sul Logística",
        "Blue Anchor Lines",
    }
    by_shipment: dict[int, list[str]] = {}
    for record in records:
        by_shipment.setdefault(record["shipment_id"], []).append(record["status"])
    assert any(statuses[:3] == ["booked", "in_transit", "at_port"] for statuses in by_shipment.values())
    file_shipments = {
        shipment["shipment_id"]
        for day in world.days(START, date(2026, 2, 1))
        for partner in ("oceanic", "skyfreight")
        for shipment in world.shipment_changes(day, partner)
    }
    assert not file_shipments & set(by_shipment)


def test_fx_rates_skip_weekends_and_filter_by_currency(base_url: str, auth: dict[str, str]) -> None:
    rates = fetch_all(base_url, "/api/v1/fx_rates", auth, start="2025-12-29", end="2026-01-12")
    dates = sorted({rate["rate_date"] for rate in rates})
    assert dates == ["2025-12-29", "2025-12-30", "2025-12-31", "2026-01-02", "2026-01-05", "2026-01-06",
                     "2026-01-07", "2026-01-08", "2026-01-09"]  # fmt: skip
    assert len(rates) == 3 * len(dates)
    usd = fetch_all(base_url, "/api/v1/fx_rates", auth, start="2025-12-29", end="2026-01-12", base_currency="USD")
    assert [rate["base_currency"] for rate in usd] == ["USD"] * len(dates)
    assert (
        get(base_url, "/api/v1/fx_rates", auth, start="2026-01-01", end="2026-01-02", base_currency="GBP").status_code
        == 400
    )


def test_forecast_is_hierarchical(base_url: str, auth: dict[str, str]) -> None:
    projects = fetch_all(base_url, "/api/v1/forecast/projects", auth, page_size=4)
    assert [project["project_id"] for project in projects] == list(range(1, 11))
    for project in projects[:3]:
        base = f"/api/v1/forecast/projects/{project['project_id']}"
        baseline = fetch_all(base_url, f"{base}/baseline", auth)
        assert [row["month"] for row in baseline] == [f"2026-{month:02d}-01" for month in range(1, 13)]
        scenarios = fetch_all(base_url, f"{base}/scenarios", auth, page_size=10)
        assert sorted({row["scenario"] for row in scenarios}) == ["base", "optimistic", "pessimistic"]
        assert len(scenarios) == 36
    missing = get(base_url, "/api/v1/forecast/projects/999/baseline", auth)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"start": "2026-01-05", "end": "yesterday"}, 400),
        ({"start": "2026-01-06", "end": "2026-01-05"}, 400),
        ({"start": "2026-01-01", "end": "2027-06-01"}, 400),
        ({"start": "2026-01-05", "end": "2026-01-06", "page_size": 1001}, 422),
        ({"start": "2026-01-05", "end": "2026-01-06", "page": 0}, 422),
        ({"start": "2026-01-05"}, 422),
    ],
)
def test_invalid_requests_get_json_errors(base_url: str, auth: dict[str, str], params: dict, status: int) -> None:
    response = get(base_url, PAYMENTS, auth, **params)
    assert response.status_code == status
    assert response.json()["error"] in ("invalid_parameter", "invalid_request")


# ------------------------------------------------------------------------------------------------- faults


def test_rate_limit_answers_429_with_retry_after(base_url: str, auth: dict[str, str]) -> None:
    inject(base_url, {"path": PAYMENTS, "kind": "rate_limit", "times": 2, "retry_after": 7})
    for _ in range(2):
        response = get(base_url, PAYMENTS, auth, **DAY)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json()["error"] == "rate_limited"
    assert get(base_url, PAYMENTS, auth, **DAY).status_code == 200
    counts = stats(base_url)
    assert counts["requests"][PAYMENTS] == 3
    assert counts["responses"][PAYMENTS] == {"429": 2, "200": 1}
    assert counts["faults"] == {"rate_limit": 2}


@pytest.mark.parametrize(("options", "status"), [({}, 503), ({"status": 500}, 500)])
def test_server_error(base_url: str, auth: dict[str, str], options: dict, status: int) -> None:
    inject(base_url, {"path": PAYMENTS, "kind": "server_error", **options})
    assert get(base_url, PAYMENTS, auth, **DAY).status_code == status
    assert get(base_url, PAYMENTS, auth, **DAY).status_code == 200


def test_slow_answers_trip_client_timeouts(base_url: str, auth: dict[str, str]) -> None:
    inject(base_url, {"path": PAYMENTS, "kind": "slow", "delay": 1.0})
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{base_url}{PAYMENTS}", params=DAY, headers=auth, timeout=0.3)
    began = time.monotonic()
    assert get(base_url, PAYMENTS, auth, **DAY).status_code == 200
    assert time.monotonic() - began < 0.9
    assert stats(base_url)["requests"][PAYMENTS] == 2


def test_expire_token_forces_a_new_login(base_url: str, auth: dict[str, str]) -> None:
    inject(base_url, {"path": PAYMENTS, "kind": "expire_token"})
    response = get(base_url, PAYMENTS, auth, **DAY)
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
    assert get(base_url, SHIPMENTS, auth, **DAY).status_code == 401, "the token stays expired"
    fresh = {"Authorization": f"Bearer {login(base_url).json()['access_token']}"}
    assert get(base_url, PAYMENTS, fresh, **DAY).status_code == 200


def test_malformed_json(base_url: str, auth: dict[str, str]) -> None:
    inject(base_url, {"path": PAYMENTS, "kind": "malformed_json"})
    response = get(base_url, PAYMENTS, auth, **DAY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()
    assert get(base_url, PAYMENTS, auth, **DAY).json()["data"]


def test_rename_field(base_url: str, auth: dict[str, str]) -> None:
    inject(base_url, {"path": PAYMENTS, "kind": "rename_field", "from": "amount", "to": "amt"})
    drifted = get(base_url, PAYMENTS, auth, **DAY).json()
    assert drifted["data"]
    assert all("amt" in record and "amount" not in record for record in drifted["data"])
    assert drifted["total"] > 0, "the envelope is untouched"


def test_add_field(base_url: str, auth: dict[str, str]) -> None:
    inject(base_url, {"path": SHIPMENTS, "kind": "add_field", "name": "vessel", "value": "MSC Aurora"})
    records = get(base_url, SHIPMENTS, auth, **DAY).json()["data"]
    assert records
    assert all(record["vessel"] == "MSC Aurora" for record in records)


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [({}, "amount", "not-a-number"), ({"field": "payment_id", "value": None, "index": 3}, "payment_id", None)],
)
def test_bad_record(base_url: str, auth: dict[str, str], options: dict, field: str, value: Any) -> None:
    inject(base_url, {"path": PAYMENTS, "kind": "bad_record", **options})
    records = get(base_url, PAYMENTS, auth, **DAY).json()["data"]
    index = options.get("index", 0)
    assert records[index][field] == value
    good = [record for position, record in enumerate(records) if position != index]
    assert all(isinstance(record["amount"], float) and record["payment_id"] for record in good)


def test_rules_match_by_path_prefix_and_are_consumed_in_order(base_url: str, auth: dict[str, str]) -> None:
    inject(
        base_url,
        {"path": SHIPMENTS, "kind": "server_error"},
        {"path": "/api/v1/", "kind": "rate_limit", "times": 2},
    )
    inject(base_url, {"path": PAYMENTS, "kind": "add_field"}, append=True)
    assert get(base_url, PAYMENTS, auth, **DAY).status_code == 429  # the first matching rule wins
    assert get(base_url, SHIPMENTS, auth, **DAY).status_code == 503
    assert get(base_url, SHIPMENTS, auth, **DAY).status_code == 429
    assert "x_new" in get(base_url, PAYMENTS, auth, **DAY).json()["data"][0]
    assert get(base_url, PAYMENTS, auth, **DAY).status_code == 200
    assert requests.get(f"{base_url}/admin/faults", timeout=TIMEOUT).json() == {"faults": []}


def test_invalid_fault_rules_are_refused(base_url: str) -> None:
    response = requests.post(f"{base_url}/admin/faults", json=[{"path": "/", "kind": "meteor"}], timeout=TIMEOUT)
    assert response.status_code == 400
    assert "meteor" in response.json()["message"]
    assert len(FAULT_KINDS) == 8


def test_a_client_that_retries_gets_everything(base_url: str, auth: dict[str, str], world: World) -> None:
    """A paging client honouring Retry-After and retrying 5xx, timeouts and bad JSON still gets every record once."""
    inject(
        base_url,
        {"path": PAYMENTS, "kind": "rate_limit", "retry_after": 0},
        {"path": PAYMENTS, "kind": "server_error", "times": 2},
        {"path": PAYMENTS, "kind": "slow", "delay": 0.5},
        {"path": PAYMENTS, "kind": "malformed_json"},
    )
    records, page, attempts = [], 1, 0
    while page is not None:
        attempts += 1
        assert attempts < 20
        try:
            response = requests.get(
                f"{base_url}{PAYMENTS}", params={**DAY, "page": page, "page_size": 50}, headers=auth, timeout=0.3
            )
        except requests.exceptions.Timeout:
            continue
        if response.status_code == 429:
            time.sleep(float(response.headers["Retry-After"]))
            continue
        if response.status_code >= 500:
            continue
        try:
            body = response.json()
        except requests.exceptions.JSONDecodeError:
            continue
        records += body["data"]
        page = body["next_page"]
    assert len(records) == len(world.payment_changes(date(2026, 1, 5)))
    assert stats(base_url)["requests"][PAYMENTS] == attempts == 5 + -(-len(records) // 50)


def test_faults_given_at_start_up(world: World) -> None:
    url, stop = serve_in_background(world=world, faults=[{"path": "/api/v1/users/login", "kind": "server_error"}])
    try:
        assert login(url).status_code == 503
        assert login(url).status_code == 200
    finally:
        stop()
