"""The logistics and finance partner's REST API: a FastAPI app over the demo world, with faults on demand.

Endpoints (JSON; every ``/api/v1`` endpoint except login needs ``Authorization: Bearer <token>``):

* ``POST /api/v1/users/login`` ``{"username", "password"}`` -> ``{"access_token", "token_type": "bearer",
  "expires_in"}``; a token lives ``token_ttl`` seconds. Missing, unknown or expired tokens get 401 with
  ``{"error": "missing_token" | "invalid_token" | "token_expired", "message"}``.
* Change data, each taking ``start`` and ``end`` (ISO dates or datetimes; an offset is converted to UTC, none means
  UTC) for the interval ``[start, end)`` on the record's change timestamp, plus ``page`` (1-based) and ``page_size``
  (default 100, at most 1000):

  - ``GET /api/v1/payments``: ``payment_id, order_id, direction, amount, currency, method, status, paid_at,
    updated_at`` (filtered on ``updated_at``);
  - ``GET /api/v1/shipments``: ``shipment_id, order_id, carrier, status, origin_port, destination_port, shipped_at,
    eta, delivered_at, updated_at`` (on ``updated_at``); a shipment appears once per status change;
  - ``GET /api/v1/fx_rates``: ``rate_date, base_currency, quote_currency, rate, published_at`` (on
    ``published_at``; business days only, optional ``base_currency`` filter).

* Forecast (hierarchical, deliberately slow with ``forecast_delay``): ``GET /api/v1/forecast/projects``,
  ``GET /api/v1/forecast/projects/{project_id}/baseline``, ``GET /api/v1/forecast/projects/{project_id}/scenarios``,
  all paginated the same way (``page``, ``page_size``), without an interval.

Every page is ``{"data": [...], "page", "page_size", "total", "next_page"}`` (``next_page`` null on the last page),
records in a stable order (change timestamp, then id). Timestamps are ISO 8601 UTC with a ``Z``, dates ``YYYY-MM-DD``,
amounts JSON numbers.

Test hooks, no authentication: ``POST /admin/faults`` (a list of rules, or ``{"faults": [...]}``; replaces the queue,
or appends with ``?append=true``), ``GET``/``DELETE /admin/faults``, ``GET``/``DELETE /admin/stats`` (request and
response counts per path) and ``GET /health``. A fault rule is ``{"path": prefix, "kind": kind, "times": n, ...}``;
for each request the first rule whose ``path`` prefixes the request path is used and its ``times`` decremented:

=================  ===================================================================================================
``rate_limit``     429 with ``Retry-After: <retry_after>`` (default 1 second)
``server_error``   ``status`` (default 503) with a JSON error
``slow``           waits ``delay`` seconds (default 2) before answering normally, to trip client timeouts
``expire_token``   the presented token expires now: 401 ``token_expired`` (log in again)
``malformed_json`` 200 with the body cut in half
``rename_field``   renames ``from`` to ``to`` in every record (default ``amount`` -> ``amt``)
``add_field``      adds ``name`` = ``value`` to every record (default ``x_new`` = ``"surprise"``)
``bad_record``     sets ``field`` to ``value`` in the record at ``index`` (default ``amount`` = ``"not-a-number"``, 0)
=================  ===================================================================================================

Run it with ``python -m medalflow_demo.partner_api --port 8085 --seed 42 --scale 1``, or in-process with
:func:`serve_in_background`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from medalflow_demo.world import CURRENCIES, DEFAULT_START_DATE, FX_HISTORY_DAYS, DemoConfig, World, generate

log = logging.getLogger(__name__)

DEFAULT_USERNAME = "partner"
DEFAULT_PASSWORD = "partner-secret"
DEFAULT_TOKEN_TTL = 300
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_INTERVAL_DAYS = 366
FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "slow",
    "expire_token",
    "malformed_json",
    "rename_field",
    "add_field",
    "bad_record",
)
_RESPONSE_FAULTS = frozenset({"malformed_json", "rename_field", "add_field", "bad_record"})


class ApiError(Exception):
    """An error answered as ``{"error": code, "message": message}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.code, "message": self.message}, self.status, headers=self.headers)


@dataclass
class FaultRule:
    """One fault to inject ``times`` times into requests whose path starts with ``path``."""

    path: str
    kind: str
    times: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> FaultRule:
        spec = dict(spec)
        try:
            path, kind = str(spec.pop("path")), str(spec.pop("kind"))
        except KeyError as missing:
            raise ValueError(f"a fault rule needs {missing}: {spec}") from None
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        times = int(spec.pop("times", 1))
        if times < 1:
            raise ValueError(f"fault times must be at least 1, got {times}")
        return cls(path, kind, times, spec)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "times": self.times, **self.options}


class FaultInjector:
    """The queue of fault rules (thread-safe: requests are served concurrently)."""

    def __init__(self, rules: Sequence[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.replace(rules)

    def replace(self, rules: Sequence[FaultRule], *, append: bool = False) -> None:
        copies = [
            replace(rule, options=dict(rule.options)) for rule in rules
        ]  # counting down must not touch the caller's
        with self._lock:
            self._rules = [*self._rules, *copies] if append else copies

    def clear(self) -> None:
        self.replace([])

    def take(self, path: str) -> FaultRule | None:
        """Consume one use of the first rule matching ``path``, if any."""
        with self._lock:
            for position, rule in enumerate(self._rules):
                if path.startswith(rule.path):
                    rule.times -= 1
                    if rule.times == 0:
                        del self._rules[position]
                    return rule
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]


class RequestStats:
    """Requests and response statuses per path, and faults applied per kind: tests assert clients retried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._responses: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._faults: Counter[str] = Counter()

    def record_request(self, path: str, fault: str | None) -> None:
        """Counted on arrival: a request whose client gave up (a ``slow`` fault) still counts at once."""
        with self._lock:
            self._requests[path] += 1
            if fault:
                self._faults[fault] += 1

    def record_response(self, path: str, status: int) -> None:
        with self._lock:
            self._responses[path][str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "responses": {path: dict(statuses) for path, statuses in self._responses.items()},
                "faults": dict(self._faults),
            }


class TokenStore:
    """Bearer tokens and their expiry (monotonic clock)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def issue(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            self._expiry = {known: expiry for known, expiry in self._expiry.items() if expiry > now - 3600}
            self._expiry[token] = now + self.ttl
        return token

    def expire(self, token: str) -> None:
        with self._lock:
            if token in self._expiry:
                self._expiry[token] = 0.0

    def check(self, token: str) -> None:
        with self._lock:
            expiry = self._expiry.get(token)
        if expiry is None:
            raise _unauthorized("invalid_token", "unknown bearer token")
        if expiry <= time.monotonic():
            raise _unauthorized("token_expired", "the bearer token has expired; log in again")


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, {"WWW-Authenticate": "Bearer"})


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _json_record(record: dict[str, Any]) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in record.items()}


def parse_instant(text: str, name: str) -> datetime:
    """An ISO date (midnight) or datetime as naive UTC; offsets are converted. Raises a 400 :class:`ApiError`."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time())
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an ISO date or datetime, got {text!r}") from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


Page = Annotated[int, Query(ge=1, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"records per page, at most {MAX_PAGE_SIZE}")]
Start = Annotated[str, Query(description="ISO date or datetime (UTC unless it has an offset), inclusive")]
End = Annotated[str, Query(description="ISO date or datetime (UTC unless it has an offset), exclusive")]


class LoginRequest(BaseModel):
    username: str
    password: str


class _PartnerApi:
    """The app's state: the world, credentials, tokens, faults and stats."""

    def __init__(
        self, world: World, username: str, password: str, token_ttl: float, faults: FaultInjector, forecast_delay: float
    ) -> None:
        self.world = world
        self.username, self.password = username, password
        self.tokens = TokenStore(token_ttl)
        self.faults = faults
        self.stats = RequestStats()
        self.forecast_delay = forecast_delay
        # Clients page through the same interval: compute it once (records already JSON-ready, in page order).
        self.records = functools.lru_cache(maxsize=32)(self._records)

    def _records(self, kind: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        world = self.world
        first_day = start.date()
        last_day = (end - timedelta(microseconds=1)).date()
        earliest = world.start_date - timedelta(days=FX_HISTORY_DAYS) if kind == "fx_rates" else world.start_date
        first_day = max(first_day, earliest)
        last_day = min(last_day, world.end_date - timedelta(days=1))
        timestamp, key = {
            "payments": ("updated_at", "payment_id"),
            "shipments": ("updated_at", "shipment_id"),
            "fx_rates": ("published_at", "base_currency"),
        }[kind]
        records: list[dict[str, Any]] = []
        day = first_day
        while day <= last_day:
            if kind == "payments":
                daily = world.payment_changes(day)
            elif kind == "shipments":
                daily = world.shipment_changes(day, "api")
            else:
                daily = world.fx_rates(day)
            records += [record for record in daily if start <= record[timestamp] < end]
            day += timedelta(days=1)
        records.sort(key=lambda record: (record[timestamp], record[key]))
        return [_json_record(record) for record in records]


def _page(records: Sequence[dict[str, Any]], page: int, page_size: int) -> dict[str, Any]:
    first = (page - 1) * page_size
    return {
        "data": list(records[first : first + page_size]),
        "page": page,
        "page_size": page_size,
        "total": len(records),
        "next_page": page + 1 if first + page_size < len(records) else None,
    }


def _interval(start: str, end: str) -> tuple[datetime, datetime]:
    start_at, end_at = parse_instant(start, "start"), parse_instant(end, "end")
    if end_at <= start_at:
        raise ApiError(400, "invalid_parameter", f"end ({end}) must be after start ({start})")
    if end_at - start_at > timedelta(days=MAX_INTERVAL_DAYS):
        raise ApiError(400, "invalid_parameter", f"the interval may span at most {MAX_INTERVAL_DAYS} days")
    return start_at, end_at


def _transform_payload(payload: Any, rule: FaultRule) -> Any:
    """Apply a schema-drift or bad-data fault to the records of a response (or to the object itself)."""
    has_records = isinstance(payload, dict) and isinstance(payload.get("data"), list)
    records = payload["data"] if has_records else [payload] if isinstance(payload, dict) else []
    options = rule.options
    if rule.kind == "rename_field":
        source, target = options.get("from", "amount"), options.get("to", "amt")
        for record in records:
            if source in record:
                record[target] = record.pop(source)
    elif rule.kind == "add_field":
        for record in records:
            record[options.get("name", "x_new")] = options.get("value", "surprise")
    elif rule.kind == "bad_record" and records:
        index = min(int(options.get("index", 0)), len(records) - 1)
        records[index][options.get("field", "amount")] = options.get("value", "not-a-number")
    return payload


async def _with_fault(request: Request, call_next: Callable, rule: FaultRule, state: _PartnerApi) -> Response:
    options = rule.options
    if rule.kind == "rate_limit":
        retry_after = str(options.get("retry_after", 1))
        return ApiError(429, "rate_limited", "too many requests", {"Retry-After": retry_after}).response()
    if rule.kind == "server_error":
        status = int(options.get("status", 503))
        return ApiError(status, "server_error", "the partner's backend failed; try again later").response()
    if rule.kind == "slow":
        await asyncio.sleep(float(options.get("delay", 2.0)))
        return await call_next(request)
    if rule.kind == "expire_token":
        token = _bearer_token(request)
        if token:
            state.tokens.expire(token)
        return await call_next(request)
    response = await call_next(request)
    if rule.kind not in _RESPONSE_FAULTS or response.status_code != 200:
        return response
    body = b"".join([chunk async for chunk in response.body_iterator])
    if rule.kind == "malformed_json":
        body = body[: len(body) // 2]
    else:
        body = json.dumps(_transform_payload(json.loads(body), rule)).encode()
    headers = {name: value for name, value in response.headers.items() if name.lower() != "content-length"}
    return Response(body, status_code=200, headers=headers, media_type="application/json")


def create_app(
    world: World,
    *,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    token_ttl: float = DEFAULT_TOKEN_TTL,
    faults: Sequence[FaultRule | dict[str, Any]] = (),
    forecast_delay: float = 0.0,
) -> FastAPI:
    """The partner API over ``world``."""
    rules = [rule if isinstance(rule, FaultRule) else FaultRule.from_dict(rule) for rule in faults]
    state = _PartnerApi(world, username, password, token_ttl, FaultInjector(rules), forecast_delay)
    app = FastAPI(title="Partner API (medalflow demo)", version="1.0", docs_url="/docs", redoc_url=None)
    app.state.partner = state

    @app.exception_handler(ApiError)
    def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(item.get("loc", ())), "msg": item.get("msg")} for item in error.errors()]
        return JSONResponse({"error": "invalid_request", "message": "invalid request", "details": details}, 422)

    @app.middleware("http")
    async def _faults_and_stats(request: Request, call_next: Callable) -> Response:
        path = request.url.path
        if path.startswith("/admin") or path == "/health":
            return await call_next(request)
        rule = state.faults.take(path)
        state.stats.record_request(path, rule.kind if rule else None)
        response = await (call_next(request) if rule is None else _with_fault(request, call_next, rule, state))
        state.stats.record_response(path, response.status_code)
        return response

    def authenticated(request: Request) -> None:
        token = _bearer_token(request)
        if token is None:
            raise _unauthorized("missing_token", "an Authorization: Bearer token is required")
        state.tokens.check(token)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/users/login")
    def login(credentials: LoginRequest) -> JSONResponse:
        usernames_match = secrets.compare_digest(credentials.username.encode(), state.username.encode())
        passwords_match = secrets.compare_digest(credentials.password.encode(), state.password.encode())
        if not (usernames_match and passwords_match):
            raise ApiError(401, "invalid_credentials", "wrong username or password")
        token = state.tokens.issue()
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": state.tokens.ttl})

    def change_data(kind: str, start: str, end: str, page: int, page_size: int) -> JSONResponse:
        start_at, end_at = _interval(start, end)
        return JSONResponse(_page(state.records(kind, start_at, end_at), page, page_size))

    @app.get("/api/v1/payments", dependencies=[Depends(authenticated)])
    def payments(start: Start, end: End, page: Page = 1, page_size: PageSize = DEFAULT_PAGE_SIZE) -> JSONResponse:
        return change_data("payments", start, end, page, page_size)

    @app.get("/api/v1/shipments", dependencies=[Depends(authenticated)])
    def shipments(start: Start, end: End, page: Page = 1, page_size: PageSize = DEFAULT_PAGE_SIZE) -> JSONResponse:
        return change_data("shipments", start, end, page, page_size)

    @app.get("/api/v1/fx_rates", dependencies=[Depends(authenticated)])
    def fx_rates(
        start: Start,
        end: End,
        page: Page = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
        base_currency: Annotated[str | None, Query(description="USD, EUR or CNY; all when omitted")] = None,
    ) -> JSONResponse:
        if base_currency is None:
            return change_data("fx_rates", start, end, page, page_size)
        if base_currency not in CURRENCIES:
            raise ApiError(400, "invalid_parameter", f"base_currency must be one of {', '.join(CURRENCIES)}")
        start_at, end_at = _interval(start, end)
        records = [
            rate for rate in state.records("fx_rates", start_at, end_at) if rate["base_currency"] == base_currency
        ]
        return JSONResponse(_page(records, page, page_size))

    def forecast_page(rows: list[dict[str, Any]], page: int, page_size: int) -> JSONResponse:
        if state.forecast_delay:
            time.sleep(state.forecast_delay)  # the partner computes forecasts on request: slow on purpose
        return JSONResponse(_page([_json_record(row) for row in rows], page, page_size))

    def require_project(project_id: int) -> None:
        if not world.has_forecast_project(project_id):
            raise ApiError(404, "not_found", f"no forecast project {project_id}")

    @app.get("/api/v1/forecast/projects", dependencies=[Depends(authenticated)])
    def forecast_projects(page: Page = 1, page_size: PageSize = DEFAULT_PAGE_SIZE) -> JSONResponse:
        return forecast_page(world.forecast_projects(), page, page_size)

    @app.get("/api/v1/forecast/projects/{project_id}/baseline", dependencies=[Depends(authenticated)])
    def forecast_baseline(project_id: int, page: Page = 1, page_size: PageSize = DEFAULT_PAGE_SIZE) -> JSONResponse:
        require_project(project_id)
        return forecast_page(world.forecast_baseline(project_id), page, page_size)

    @app.get("/api/v1/forecast/projects/{project_id}/scenarios", dependencies=[Depends(authenticated)])
    def forecast_scenarios(project_id: int, page: Page = 1, page_size: PageSize = DEFAULT_PAGE_SIZE) -> JSONResponse:
        require_project(project_id)
        return forecast_page(world.forecast_scenarios(project_id), page, page_size)

    @app.get("/admin/faults")
    def list_faults() -> dict[str, Any]:
        return {"faults": state.faults.snapshot()}

    @app.post("/admin/faults")
    async def set_faults(request: Request, append: bool = False) -> dict[str, Any]:
        try:
            body = await request.json()
            specs = body.get("faults", []) if isinstance(body, dict) else body
            if not isinstance(specs, list):
                raise ValueError("expected a list of fault rules")
            rules = [FaultRule.from_dict(spec) for spec in specs]
        except (ValueError, TypeError, AttributeError) as problem:
            raise ApiError(400, "invalid_faults", str(problem)) from None
        state.faults.replace(rules, append=append)
        return {"faults": state.faults.snapshot()}

    @app.delete("/admin/faults")
    def clear_faults() -> dict[str, Any]:
        state.faults.clear()
        return {"faults": []}

    @app.get("/admin/stats")
    def stats() -> dict[str, Any]:
        return state.stats.snapshot()

    @app.delete("/admin/stats")
    def reset_stats() -> dict[str, Any]:
        state.stats.reset()
        return state.stats.snapshot()

    return app


def default_world_end() -> date:
    """Tomorrow (UTC): a live demo's partner can answer up to now. Data of a day never depends on the end."""
    return datetime.now(UTC).date() + timedelta(days=1)


def build_world(
    *, seed: int = 42, scale: float = 1.0, world_start: date = DEFAULT_START_DATE, world_end: date | None = None
) -> World:
    end = world_end or default_world_end()
    return generate(
        DemoConfig(seed=seed, scale=scale, start_date=world_start, end_date=max(end, world_start + timedelta(days=1)))
    )


def serve_in_background(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    world: World | None = None,
    seed: int = 42,
    scale: float = 1.0,
    world_start: date = DEFAULT_START_DATE,
    world_end: date | None = None,
    startup_timeout: float = 15.0,
    **app_options: Any,
) -> tuple[str, Callable[[], None]]:
    """Serve the partner API from a thread; returns ``(base_url, stop)`` once it accepts connections.

    ``port=0`` picks a free port. ``app_options`` go to :func:`create_app` (``username``, ``password``,
    ``token_ttl``, ``faults``, ``forecast_delay``). ``stop()`` shuts the server down and waits for the thread.
    """
    import uvicorn

    world = world or build_world(seed=seed, scale=scale, world_start=world_start, world_end=world_end)
    app = create_app(world, **app_options)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    bound_port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"partner-api-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            listener.close()
            raise RuntimeError(f"the partner API did not start on {host}:{bound_port}")
        time.sleep(0.01)
    base_url = f"http://{host}:{bound_port}"
    log.info("partner API serving %s at %s", world, base_url)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()

    return base_url, stop


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m medalflow_demo.partner_api", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--world-start", type=date.fromisoformat, default=DEFAULT_START_DATE, help="default 2026-01-01")
    parser.add_argument("--world-end", type=date.fromisoformat, default=None, help="exclusive; default tomorrow")
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--token-ttl", type=float, default=DEFAULT_TOKEN_TTL, help="seconds (default 300)")
    parser.add_argument("--forecast-delay", type=float, default=0.0, help="seconds each forecast request takes")
    parser.add_argument("--faults", default="[]", help="fault rules as JSON, or @path to a JSON file")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    options = _parse_args(argv)
    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faults_text = options.faults
    if faults_text.startswith("@"):
        with open(faults_text[1:], encoding="utf-8") as faults_file:
            faults_text = faults_file.read()
    world = build_world(
        seed=options.seed, scale=options.scale, world_start=options.world_start, world_end=options.world_end
    )
    app = create_app(
        world,
        username=options.username,
        password=options.password,
        token_ttl=options.token_ttl,
        faults=json.loads(faults_text),
        forecast_delay=options.forecast_delay,
    )
    uvicorn.run(app, host=options.host, port=options.port, log_level=options.log_level.lower())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
