"""Extraction from token-protected, paginated REST APIs into the raw zone.

What one entity's extraction does:

1. **Logs in** with the Airflow connection's login and password (``POST <login_path>`` -> bearer token) and logs in
   again when the token expires (ahead of its ``expires_in``, or on a 401 from the API).
2. **Pages to the end**: ``page=1, 2, ...`` following ``next_page`` until it is null; the interval entities pass the
   run's data interval as ``start``/``end``; hierarchical entities (``parent:``) repeat this for every key of the
   parent entity's raw partition of the same interval (forecast projects -> baseline, scenarios).
3. **Retries** what is worth retrying, with exponential backoff and jitter (tenacity): 5xx, timeouts and connection
   errors; a 429 waits what its ``Retry-After`` says; a body that is not JSON is asked for again. Every request has a
   bounded number of attempts, after which the run fails naming the request, the attempts and the last problem.
   Other 4xx fail at once (retrying a 404 only delays the error).
4. **Types each record** by the entity's declared schema (``dags/config/sources/<source>.yml``), quarantining the
   records that do not fit (:mod:`medalflow.extract.quarantine`) and a page that stayed unparseable. A declared field
   missing from a page fails the run naming source, entity and column (a renamed field); an undeclared one passes
   through as text (from that page on; a new part file starts when the columns grow, which readers union by name).
5. **Streams** the records, a bounded batch at a time, into Parquet through :meth:`Lake.replace_partition`, with
   the metadata columns (``_op = 'U'``: the API sends current state), then **reconciles**: records written plus
   records quarantined must equal the ``total`` the API reported.

Why requests + tenacity and not Airflow's ``HttpHook``: the hook turns the connection's login/password into HTTP
basic auth on every request, while this API wants them once at a login endpoint in exchange for a bearer token; and
its ``run_with_advanced_retry`` is tenacity without the 401-refresh and ``Retry-After`` handling needed here. The
connection is still Airflow's (``BaseHook.get_connection``), so on MWAA it comes from Secrets Manager. urllib3's
``Retry`` covers 5xx and ``Retry-After`` but not a token refresh nor a truncated 200 body, so one tenacity policy
covers every case instead of two layered ones.
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from medalflow.extract.metadata import IngestionContext, metadata_fields, with_metadata
from medalflow.extract.quarantine import Limits, Quarantine, RecordConverter, RecordProblem
from medalflow.extract.schema import DeclaredSchema, SchemaError
from medalflow.lake import RAW_ZONE, Lake, PartitionWriter, partition_path

if TYPE_CHECKING:
    import pyarrow as pa
    import requests

log = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """The API failed in a way retrying did not (or could not) fix."""


class MalformedPageError(ApiError):
    """A page's body stayed unparseable after every attempt; ``text`` is the last body received."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


class _RetryableError(Exception):
    """A failed attempt worth repeating; ``retry_after`` (seconds) overrides the backoff when the server says so."""

    def __init__(self, reason: str, retry_after: float | None = None, body: str | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.body = body


@dataclass(frozen=True)
class RestEntity:
    """One endpoint to extract, as declared in the source config."""

    name: str
    path: str  # may name the parent's key: /forecast/projects/{project_id}/baseline
    key: tuple[str, ...]
    schema: DeclaredSchema
    interval_params: tuple[str, str] | None = ("start", "end")  # None: a snapshot, no interval filter
    params: Mapping[str, str] = field(default_factory=dict)
    parent: str | None = None  # the entity whose keys this one is fetched for
    parent_key: str | None = None


@dataclass(frozen=True)
class RestSettings:
    """How to talk to the API; every field can be set per source group in its YAML."""

    login_path: str = "/api/v1/users/login"
    page_size: int = 500
    connect_timeout_seconds: float = 10.0
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0
    token_refresh_margin_seconds: float = 30.0
    batch_rows: int = 10_000
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RestSettings:
        known = {name for name in cls.__dataclass_fields__ if name != "limits"}
        values = {name: options[name] for name in known if name in options}
        return cls(**values, limits=Limits.from_options(options))


@dataclass(frozen=True)
class ApiLocation:
    """Where the API is and who logs in: from an Airflow connection, never from code or config."""

    base_url: str
    username: str
    password: str = field(repr=False)

    @classmethod
    def from_airflow_connection(cls, connection: Any) -> ApiLocation:
        """conn_type http: host, port, schema (http or https, as Airflow's HTTP provider reads it), login, password."""
        host = (connection.host or "").rstrip("/")
        if not host:
            raise ValueError(f"connection {connection.conn_id!r} has no host")
        if "://" not in host:
            host = f"{connection.schema or 'http'}://{host}"
        if connection.port:
            host = f"{host}:{connection.port}"
        if not connection.login:
            raise ValueError(f"connection {connection.conn_id!r} has no login for the API")
        return cls(host, connection.login, connection.password or "")


def _retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


class RestClient:
    """A requests session with login, token refresh and the retry policy; one per extraction."""

    def __init__(self, location: ApiLocation, settings: RestSettings, session: requests.Session | None = None) -> None:
        import requests

        self.location = location
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._fresh_tokens_refused = 0
        self.logins = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: Mapping[str, Any]) -> Any:
        """GET and parse JSON, under the retry policy; raises :class:`MalformedPageError` or :class:`ApiError`."""
        return self._with_retries("GET", path, params)

    def _with_retries(self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

        settings = self.settings
        backoff = wait_exponential_jitter(
            initial=settings.backoff_seconds, max=settings.max_backoff_seconds, jitter=settings.backoff_seconds / 2
        )

        def wait(state: Any) -> float:
            failure = state.outcome.exception()
            if isinstance(failure, _RetryableError) and failure.retry_after is not None:
                return failure.retry_after
            return backoff(state)

        def before_sleep(state: Any) -> None:
            log.warning(
                "%s %s %s: %s; attempt %s of %s, next in %.1f s",
                method,
                path,
                dict(params or {}),
                state.outcome.exception(),
                state.attempt_number,
                settings.max_attempts,
                state.next_action.sleep,
            )

        retrying = Retrying(
            stop=stop_after_attempt(settings.max_attempts),
            wait=wait,
            retry=retry_if_exception_type(_RetryableError),
            before_sleep=before_sleep,
        )
        try:
            return retrying(self._attempt, method, path, params, body)
        except RetryError as exhausted:
            last = exhausted.last_attempt.exception()
            where = f"{method} {self.location.base_url}{path} {dict(params or {})}"
            message = f"{where}: gave up after {settings.max_attempts} attempt(s); last: {last}"
            if isinstance(last, _RetryableError) and last.body is not None:
                raise MalformedPageError(message, last.body) from last
            raise ApiError(message) from last

    def _attempt(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> Any:
        import requests

        is_login = path == self.settings.login_path
        headers = {}
        fresh_token = False
        if not is_login:
            fresh_token = self._ensure_token()
            headers["Authorization"] = f"Bearer {self._token}"
        timeout = (self.settings.connect_timeout_seconds, self.settings.timeout_seconds)
        try:
            response = self.session.request(
                method, self.location.base_url + path, params=params, json=body, headers=headers, timeout=timeout
            )
        except requests.Timeout as timeout_error:
            raise _RetryableError(
                f"timed out after {self.settings.timeout_seconds} s ({type(timeout_error).__name__})"
            ) from None
        except requests.ConnectionError as connection_error:
            raise _RetryableError(f"connection failed: {connection_error}") from None
        status = response.status_code
        if status == 429:
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.settings.max_retry_after_seconds:
                raise ApiError(
                    f"{method} {path}: rate limited with Retry-After {wait:.0f} s, more than "
                    f"max_retry_after_seconds ({self.settings.max_retry_after_seconds})"
                )
            raise _RetryableError(f"429 rate limited (Retry-After {response.headers.get('Retry-After')})", wait)
        if status >= 500:
            raise _RetryableError(f"{status} {_short(response.text)}")
        if status == 401 and is_login:
            raise ApiError(f"POST {path}: the API refused the login of user {self.location.username!r} (401)")
        if status == 401:
            # A token can expire or be revoked at any moment, even just issued; two fresh ones refused in a row
            # means the credentials cannot read this endpoint, which no retry will fix.
            self._fresh_tokens_refused = self._fresh_tokens_refused + 1 if fresh_token else 0
            if self._fresh_tokens_refused >= 2:
                raise ApiError(f"{method} {path}: 401 even with tokens just issued: {_short(response.text)}")
            self._token = None  # log in again on the next attempt, at once
            raise _RetryableError(f"401 {_short(response.text)}; logging in again", retry_after=0)
        self._fresh_tokens_refused = 0
        if status >= 400:
            raise ApiError(f"{method} {path} {dict(params or {})}: {status} {_short(response.text)}")
        try:
            return response.json()
        except ValueError as not_json:
            raise _RetryableError(f"the body is not JSON ({not_json})", body=response.text) from None

    def _ensure_token(self) -> bool:
        """Log in when there is no token or it is about to expire; True when a new one was issued now."""
        if self._token and time.monotonic() < self._token_expires_at - self.settings.token_refresh_margin_seconds:
            return False
        credentials = {"username": self.location.username, "password": self.location.password}
        answer = self._with_retries("POST", self.settings.login_path, body=credentials)
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise ApiError(f"POST {self.settings.login_path}: no access_token in the answer")
        self._token = answer["access_token"]
        self._token_expires_at = time.monotonic() + float(answer.get("expires_in") or 3600)
        self.logins += 1
        return True


@dataclass
class _Tally:
    """What one entity's extraction saw: the source's own totals and the pages that never parsed."""

    source_total: int = 0
    pages: int = 0
    unparseable_pages: int = 0


class _Pages:
    """Pages of one endpoint, first to last; an unparseable page is quarantined with the records it held."""

    def __init__(self, client: RestClient, path: str, params: Mapping[str, Any], page_size: int) -> None:
        self.client, self.path, self.params, self.page_size = client, path, dict(params), page_size
        self.total: int | None = None  # as the last parsed page reported it

    def __iter__(self) -> Iterator[tuple[int, list[dict[str, Any]] | MalformedPageError]]:
        page, in_a_row = 1, 0
        while True:
            try:
                body = self.client.get_json(self.path, {**self.params, "page": page, "page_size": self.page_size})
            except MalformedPageError as malformed:
                in_a_row += 1
                if in_a_row >= self.client.settings.max_attempts:
                    raise ApiError(f"GET {self.path}: {in_a_row} pages in a row are not JSON; giving up") from None
                yield page, malformed
                page += 1  # the page size is ours, so the next page is known without the body
                continue
            in_a_row = 0
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ApiError(f"GET {self.path} page {page}: expected {{'data': [...], ...}}, got {_short(str(body))}")
            self.total = int(body.get("total") or 0)
            yield page, body["data"]
            following = body.get("next_page")
            if following is None:
                return
            if int(following) <= page:
                raise ApiError(f"GET {self.path} page {page}: next_page {following} does not move forward")
            page = int(following)

    def records_on(self, page: int) -> int:
        """How many records an unparseable page held, from the total a parsed page reported."""
        if self.total is None:
            raise ApiError(f"GET {self.path}: no page parsed, so the records of page {page} cannot be counted")
        return max(0, min(self.page_size, self.total - (page - 1) * self.page_size))


class _BatchBuilder:
    """Typed rows into Arrow record batches of at most ``batch_rows``; undeclared columns widen the schema."""

    def __init__(self, entity: RestEntity, context: IngestionContext, batch_rows: int) -> None:
        self.entity, self.context, self.batch_rows = entity, context, batch_rows
        self.extra_columns: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def file_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([*self.entity.schema.arrow_schema(self.extra_columns), *metadata_fields()])

    def widen(self, new_columns: list[str]) -> Iterator[pa.RecordBatch]:
        """Flush what has the old columns, then accept the new ones."""
        yield from self.flush()
        self.extra_columns += new_columns

    def add(self, row: dict[str, Any]) -> Iterator[pa.RecordBatch]:
        self.rows.append(row)
        if len(self.rows) >= self.batch_rows:
            yield from self.flush()

    def flush(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        if not self.rows:
            return
        data_schema = self.entity.schema.arrow_schema(self.extra_columns)
        batch = pa.RecordBatch.from_pylist(self.rows, schema=data_schema)
        self.rows = []
        yield with_metadata(batch, self.context, "U")


def write_parts(partition: PartitionWriter, batches: Iterator[pa.RecordBatch], empty_schema: pa.Schema) -> int:
    """Batches into ``part-NNNNN.parquet`` files, a new one each time the schema changes; a zero-row file when
    there are no batches (an empty interval is still a replaced interval)."""
    rows, parts = 0, 0
    for parts, (schema, group) in enumerate(itertools.groupby(batches, key=lambda batch: batch.schema), start=1):
        rows += partition.write_batches(f"part-{parts - 1:05d}.parquet", schema, group)
    if parts == 0:
        partition.write_batches("part-00000.parquet", empty_schema, [])
    return rows


def extract_entity(
    client: RestClient,
    entity: RestEntity,
    lake: Lake,
    start: datetime,
    end: datetime,
    context: IngestionContext,
    parent_keys: list[Any] | None = None,
) -> dict[str, Any]:
    """Replace the raw partition of ``start``'s date with the entity's records (of [start, end) for an interval
    entity; for a child entity, of every key in ``parent_keys``)."""
    settings = client.settings
    day = start.date()
    relative = partition_path(RAW_ZONE, context.source, entity.name, day)
    converter = RecordConverter(entity.schema, entity.key, settings.limits)
    builder = _BatchBuilder(entity, context, settings.batch_rows)
    tally = _Tally()
    params = dict(entity.params)
    if entity.interval_params:
        params[entity.interval_params[0]] = start.isoformat()
        params[entity.interval_params[1]] = end.isoformat()
    if entity.parent:
        if parent_keys is None:
            raise ValueError(f"{context.source}.{entity.name} is fetched per {entity.parent}: pass parent_keys")
        paths = [entity.path.format(**{entity.parent_key: key}) for key in parent_keys]
    else:
        paths = [entity.path]

    with Quarantine(lake, context.source, entity.name, day, context.run_id) as quarantine:

        def batches() -> Iterator[pa.RecordBatch]:
            for path in paths:
                yield from _endpoint_batches(client, entity, path, params, converter, builder, quarantine, tally)
            yield from builder.flush()

        with lake.replace_partition(relative, context.run_id) as partition:
            rows = write_parts(partition, batches(), builder.file_schema())
            quarantine_url = quarantine.publish()
            if rows + quarantine.records != tally.source_total:
                raise ApiError(
                    f"{context.source}.{entity.name}: the API reported {tally.source_total} record(s) but "
                    f"{rows} were extracted and {quarantine.records} quarantined; did the data change while paging?"
                )
            quarantine.check_ratio(rows, settings.limits.max_bad_ratio)
    log.info(
        "%s.%s: %s record(s) in %s page(s) of %s endpoint(s) -> %s (%s quarantined)",
        context.source,
        entity.name,
        rows,
        tally.pages,
        len(paths),
        lake.url(relative),
        quarantine.records,
    )
    return {
        "entity": entity.name,
        "rows": rows,
        "quarantined": quarantine.records,
        "source_total": tally.source_total,
        "pages": tally.pages,
        "partition": lake.url(relative),
        "quarantine": quarantine_url,
        "new_columns": builder.extra_columns,
    }


def _endpoint_batches(
    client: RestClient,
    entity: RestEntity,
    path: str,
    params: Mapping[str, Any],
    converter: RecordConverter,
    builder: _BatchBuilder,
    quarantine: Quarantine,
    tally: _Tally,
) -> Iterator[pa.RecordBatch]:
    pages = _Pages(client, path, params, client.settings.page_size)
    unparseable: list[tuple[int, MalformedPageError]] = []
    for number, records in pages:
        tally.pages += 1
        where = f"page {number} of GET {path}"
        if isinstance(records, MalformedPageError):
            unparseable.append((number, records))
            continue
        delivered = list(dict.fromkeys(name for record in records for name in record))
        if records:
            entity.schema.check_required(delivered, where)
        new_columns = [name for name in entity.schema.extra_columns(delivered) if name not in builder.extra_columns]
        if new_columns:
            log.warning("%s: new field(s) %s pass through as text", where, ", ".join(new_columns))
            yield from builder.widen(new_columns)
        for position, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                quarantine.add(location=f"{where}, record {position}", reason="not a JSON object", record=record)
                continue
            row = converter.convert(record, builder.extra_columns)
            if isinstance(row, RecordProblem):
                location = f"{where}, record {position} ({converter.describe(record)})"
                quarantine.add(location=location, field=row.field, reason=row.reason, record=record)
                continue
            yield from builder.add(row)
    tally.source_total += pages.total or 0
    for number, malformed in unparseable:
        held = pages.records_on(number)
        tally.unparseable_pages += 1
        quarantine.add(
            location=f"page {number} of GET {path}",
            reason=f"the body is not JSON ({held} record(s) lost with it): {malformed}",
            record=malformed.text,
            records=held,
        )


def read_parent_keys(lake: Lake, source: str, entity: RestEntity, day: date) -> list[Any]:
    """The keys of the parent entity's raw partition of ``day``, in order (what the children are fetched for)."""
    import pyarrow.parquet as pq

    relative = partition_path(RAW_ZONE, source, entity.parent, day)
    files = [path for path in lake.list_files(relative) if path.endswith(".parquet")]
    if not files:
        raise SchemaError(f"{source}.{entity.name} needs {source}.{entity.parent} of {day}, which is not in the lake")
    keys: list[Any] = []
    for path in files:
        with lake.fs.open(lake.path(path), "rb") as handle:
            keys += pq.read_table(handle, columns=[entity.parent_key]).column(0).to_pylist()
    return sorted(set(keys))
