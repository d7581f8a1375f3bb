"""Small REST APIs of shapes the project has never seen, to add as sources by YAML and a connection only.

Run one as a subprocess (``serving`` in ``tests/local_servers.py``): ``python tests/rest_shapes.py <shape>
--port N``. Each serves the same kind of data, a few records a day from ``FIRST_DAY`` for ``DAYS`` days, with one
record exactly at 00:00:00 and one at 23:59:59 of every day, under its own contract:

``cursor``  ``GET /v2/orders``: an API key in ``X-API-Key`` plus the static header ``X-Tenant: acme``;
            ``since``/``until`` plain dates, both inclusive, on the date of ``updated_at``; ``cursor`` + ``limit``,
            the next cursor at ``meta.next_cursor``; records at ``results.items``, nested (``customer.id``, ``lines``).
``offset``  ``GET /api/invoices``: HTTP basic; ``from_ts``/``to_ts`` epoch seconds, both inclusive, on ``created``;
            ``offset`` + ``limit``; the body is the list itself.
``link``    ``GET /v1/events``: OAuth2 client credentials (``POST /oauth/token``, client in HTTP basic, scope
            ``events:read``); ``start``/``end`` datetimes without zone (UTC), end exclusive, on ``occurred_at``;
            ``per_page``, the next page in the ``Link`` header; records at ``events``, the key ``id.value`` nested.

Test hooks, without auth: ``GET /admin/ids?start=&end=`` (the ids the server holds for ``[start, end)``, ISO
datetimes: its own count), ``POST /admin/faults`` (a list of ``{"kind": rate_limit | server_error | slow |
expire_token, "times": n, "retry_after": s, "delay": s}``, taken by the next data requests in order),
``GET``/``DELETE /admin/stats`` (requests and response statuses per path).

:class:`Server` is the unit tests' kind: in a thread of the test process, answering with whatever function the test
gives it, and keeping every request it got.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FIRST_DAY = date(2026, 3, 1)
DAYS = 5
API_KEY = "shop-key-123"
BASIC_USER, BASIC_PASSWORD = "billing", "billing-pass"
CLIENT_ID, CLIENT_SECRET = "events-client", "events-secret"
SHAPES = ("cursor", "offset", "link")


def moments() -> list[datetime]:
    """Every record's timestamp: per day 00:00:00, 23:59:59 and a handful in between (more on later days)."""
    stamps = []
    for offset in range(DAYS):
        day = datetime.combine(FIRST_DAY + timedelta(days=offset), datetime.min.time(), UTC)
        stamps += [day, day + timedelta(hours=23, minutes=59, seconds=59)]
        stamps += [day + timedelta(seconds=3600 + 3917 * n) for n in range(9 + 3 * offset)]  # within the day
    return sorted(stamps)


def boundary_ids(day: date) -> tuple[int, int]:
    """The ids of the records at ``day`` 00:00:00 and at ``day`` 23:59:59."""
    stamps = moments()
    start = datetime.combine(day, datetime.min.time(), UTC)
    return stamps.index(start) + 1, stamps.index(start + timedelta(hours=23, minutes=59, seconds=59)) + 1


class State:
    def __init__(self, shape: str) -> None:
        self.shape = shape
        self.records = [(number, moment) for number, moment in enumerate(moments(), start=1)]
        self.lock = threading.Lock()
        self.faults: list[dict[str, Any]] = []
        self.requests: Counter[str] = Counter()
        self.responses: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.tokens: set[str] = set()
        self.faults_taken: Counter[str] = Counter()

    def take_fault(self) -> dict[str, Any] | None:
        with self.lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            self.faults_taken[fault["kind"]] += 1
            fault["times"] = fault.get("times", 1) - 1
            if fault["times"] <= 0:
                self.faults.pop(0)
            return fault


def render(shape: str, number: int, moment: datetime) -> dict[str, Any]:
    if shape == "cursor":
        return {
            "id": number,
            "customer": {"id": 100 + number % 7, "name": f"Customer {number % 7}"},
            "lines": [{"sku": f"SKU-{number % 3}", "qty": 1 + number % 4}],
            "amount": f"{number * 3}.50",
            "updated_at": moment.isoformat().replace("+00:00", "Z"),
        }
    if shape == "offset":
        return {"invoice_id": number, "created": int(moment.timestamp()), "total": number * 1.25, "meta": {"n": 1}}
    return {
        "id": {"value": f"evt-{number:05d}"},
        "occurred_at": moment.replace(tzinfo=None).isoformat(),
        "payload": {"kind": "click", "tags": ["a", str(number)]},
    }


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, *_args: Any) -> None:  # quiet
        pass

    # --- plumbing ---
    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        path = urlsplit(self.path).path
        if not path.startswith("/admin"):  # counted before writing: a client that timed out still counts
            self.state.responses[path][str(status)] += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _query(self) -> dict[str, str]:
        return {name: values[-1] for name, values in parse_qs(urlsplit(self.path).query).items()}

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    # --- verbs ---
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/admin/ids":
            query = self._query()
            start, end = datetime.fromisoformat(query["start"]), datetime.fromisoformat(query["end"])
            ids = [number for number, moment in self.state.records if start <= moment < end]
            return self._send(200, {"ids": ids, "count": len(ids)})
        if path == "/admin/stats":
            stats = {"requests": dict(self.state.requests), "responses": self.state.responses}
            return self._send(200, {**stats, "faults_taken": dict(self.state.faults_taken)})
        self.state.requests[path] += 1
        fault = self.state.take_fault()
        if fault and fault["kind"] == "rate_limit":
            return self._send(429, {"error": "slow down"}, {"Retry-After": str(fault.get("retry_after", 1))})
        if fault and fault["kind"] == "server_error":
            return self._send(503, {"error": "backend down"})
        if fault and fault["kind"] == "slow":
            time.sleep(fault.get("delay", 1))
        expired = bool(fault and fault["kind"] == "expire_token")
        handler = {"/v2/orders": self._orders, "/api/invoices": self._invoices, "/v1/events": self._events}.get(path)
        if handler is None:
            return self._send(404, {"error": "not found"})
        try:
            handler(self._query(), expired)
        except (KeyError, ValueError) as problem:
            self._send(400, {"error": f"bad request: {problem}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/admin/faults":
            self.state.faults = json.loads(self._body())
            return self._send(200, {"faults": self.state.faults})
        if path == "/oauth/token" and self.state.shape == "link":
            self.state.requests[path] += 1
            form = {name: values[-1] for name, values in parse_qs(self._body().decode()).items()}
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self._send(401, {"error": "invalid_client"})
            if form.get("grant_type") != "client_credentials" or "events:read" not in form.get("scope", "").split():
                return self._send(400, {"error": "invalid_scope"})
            token = secrets.token_hex(8)
            self.state.tokens.add(token)
            return self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})
        self._send(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path == "/admin/stats":
            self.state.requests.clear()
            self.state.responses.clear()
            self.state.faults = []
            self.state.faults_taken.clear()
            return self._send(200, {})
        self._send(404, {"error": "not found"})

    # --- the three contracts ---
    def _orders(self, query: dict[str, str], expired: bool) -> None:
        if self.headers.get("X-API-Key") != API_KEY or self.headers.get("X-Tenant") != "acme":
            return self._send(401, {"error": "bad api key or tenant"})
        since, until = date.fromisoformat(query["since"]), date.fromisoformat(query["until"])
        if "T" in query["since"] or "T" in query["until"]:
            raise ValueError("since and until are plain dates")
        chosen = [(n, m) for n, m in self.state.records if since <= m.date() <= until]
        offset = int(base64.urlsafe_b64decode(query["cursor"]).decode()) if query.get("cursor") else 0
        limit = min(int(query.get("limit", 10)), 50)
        page = chosen[offset : offset + limit]
        following = offset + limit
        cursor = base64.urlsafe_b64encode(str(following).encode()).decode() if following < len(chosen) else None
        items = [render("cursor", n, m) for n, m in page]
        self._send(200, {"results": {"items": items}, "meta": {"next_cursor": cursor}})

    def _invoices(self, query: dict[str, str], expired: bool) -> None:
        expected = "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._send(401, {"error": "bad credentials"})
        first, last = int(query["from_ts"]), int(query["to_ts"])
        chosen = [(n, m) for n, m in self.state.records if first <= int(m.timestamp()) <= last]
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 10)), 50)
        self._send(200, [render("offset", n, m) for n, m in chosen[offset : offset + limit]])

    def _events(self, query: dict[str, str], expired: bool) -> None:
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if expired:
            self.state.tokens.discard(token)
        if token not in self.state.tokens:
            return self._send(401, {"error": "invalid_token"})
        start, end = datetime.fromisoformat(query["start"]), datetime.fromisoformat(query["end"])
        if start.tzinfo or end.tzinfo:
            raise ValueError("start and end are UTC without a zone")
        chosen = [(n, m) for n, m in self.state.records if start <= m.replace(tzinfo=None) < end]
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 10))
        rows = chosen[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(chosen):
            following = urlencode({**query, "page": page + 1})
            headers["Link"] = f'<http://{self.headers["Host"]}/v1/events?{following}>; rel="next"'
        self._send(200, {"events": [render("link", n, m) for n, m in rows]}, headers)


# --- a programmable server for unit tests ---------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class Server:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.app: Callable[[Request], Answer] = lambda request: Answer(404, {"error": "no app"})
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    {name: values[-1] for name, values in parse_qs(parts.query).items()},
                    dict(self.headers),
                    self.rfile.read(length),
                )
                server.requests.append(request)
                answer = server.app(request)
                data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self.do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def data_requests(self) -> list[Request]:
        return [request for request in self.requests if request.path.startswith("/items")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=SHAPES)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    Handler.state = State(options.shape)
    ThreadingHTTPServer(("127.0.0.1", options.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
