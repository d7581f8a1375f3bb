"""The HTTP side: where the API is (the Airflow connection), and one requests session with the retry policy."""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from medalflow.extract.rest.auth import Authenticator, build_authenticator
from medalflow.extract.rest.spec import AuthSpec, RestSettings

if TYPE_CHECKING:
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
class ApiLocation:
    """Where the API is and the secrets to reach it: from an Airflow connection, never from code or config."""

    base_url: str
    username: str = ""
    password: str = field(default="", repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    conn_id: str = "the connection"

    @classmethod
    def from_airflow_connection(cls, connection: Any) -> ApiLocation:
        """conn_type http: host (or a full URL in host), port, schema (http or https, as Airflow's HTTP provider
        reads it), login, password; extras may hold ``{"headers": {...}}`` sent with every request and any secret
        an auth block names (``extra.<name>``)."""
        host = (connection.host or "").rstrip("/")
        if not host:
            raise ValueError(f"connection {connection.conn_id!r} has no host")
        if "://" not in host:
            host = f"{connection.schema or 'http'}://{host}"
            if connection.port:
                host = f"{host}:{connection.port}"
        elif connection.port and not urlsplit(host).port:
            parts = urlsplit(host)
            host = parts._replace(netloc=f"{parts.netloc}:{connection.port}").geturl()
        extra = connection.extra_dejson if getattr(connection, "extra", None) else {}
        headers = extra.get("headers", {})
        if not isinstance(headers, Mapping):
            raise ValueError(f"connection {connection.conn_id!r}: extra 'headers' must be an object of header: value")
        return cls(host, connection.login or "", connection.password or "", dict(extra), connection.conn_id)

    @property
    def headers(self) -> dict[str, str]:
        return {str(name): str(value) for name, value in (self.extra.get("headers") or {}).items()}

    def secret(self, field_name: str) -> str:
        """The value of a connection field named in the YAML (``login``, ``password``, ``extra.<name>``)."""
        if field_name == "login":
            value: Any = self.username
        elif field_name == "password":
            value = self.password
        else:
            value = self.extra.get(field_name.removeprefix("extra."))
        if value in (None, ""):
            raise ValueError(
                f"connection {self.conn_id!r}: {field_name} is empty, but the source's auth block reads a "
                "credential from it; set it in the connection (Secrets Manager on MWAA, AIRFLOW_CONN_* locally)"
            )
        return str(value)


@dataclass(frozen=True)
class Answer:
    """A parsed page: its JSON body, the ``Link`` header's relations and the URL it came from."""

    body: Any
    links: Mapping[str, Any]
    url: str


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


def short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


class RestClient:
    """A requests session with authentication, token refresh and the retry policy; one per extraction."""

    def __init__(self, location: ApiLocation, settings: RestSettings, session: requests.Session | None = None) -> None:
        import requests

        self.location = location
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.headers.update(location.headers)
        self._authenticators: dict[int, tuple[AuthSpec, Authenticator]] = {}
        self._fresh_tokens_refused = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def authenticator(self, spec: AuthSpec | None = None) -> Authenticator:
        """One authenticator per auth block, so a token is shared by the endpoints that share the block."""
        spec = spec or self.settings.auth
        if id(spec) not in self._authenticators:
            self._authenticators[id(spec)] = (spec, build_authenticator(spec, self.location))
        return self._authenticators[id(spec)][1]

    def url(self, target: str, *, same_origin: bool = False) -> str:
        """A path against the base URL, or a full URL; ``same_origin`` refuses another host (a next-page link
        must not carry the credentials elsewhere)."""
        if "://" not in target:
            return self.location.base_url + ("" if target.startswith("/") else "/") + target
        if same_origin:
            ours, theirs = urlsplit(self.location.base_url), urlsplit(target)
            if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
                raise ApiError(
                    f"the next page's URL {target} is on {theirs.scheme}://{theirs.netloc}, not on the connection's "
                    f"{ours.scheme}://{ours.netloc}; refusing to send the credentials there"
                )
        return target

    def join(self, current_url: str, link: str) -> str:
        """A link from a body or header, relative to the page it came from."""
        return self.url(urljoin(current_url, link), same_origin=True)

    def api_error(self, message: str) -> ApiError:
        return ApiError(message)

    def get_page(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        auth: Authenticator | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """GET a page and parse its JSON under the retry policy; raises :class:`MalformedPageError` or
        :class:`ApiError`."""
        return self._with_retries("GET", url, params, auth=auth or self.authenticator(), headers=headers)

    def token_request(self, target: str, *, who: str, **send: Any) -> Any:
        """POST to a login or token endpoint (no authenticator; the credentials are in ``send``)."""
        try:
            return self._with_retries("POST", self.url(target), None, who=who, **send).body
        except MalformedPageError as malformed:  # not a page to quarantine: the run cannot authenticate
            raise ApiError(f"{who}: the answer stayed unparseable; {malformed}") from None

    def _with_retries(self, method: str, url: str, params: Mapping[str, Any] | None, **send: Any) -> Answer:
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
                url,
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
            return retrying(self._attempt, method, url, params, **send)
        except RetryError as exhausted:
            last = exhausted.last_attempt.exception()
            message = (
                f"{method} {url} {dict(params or {})}: gave up after {settings.max_attempts} attempt(s); last: {last}"
            )
            if isinstance(last, _RetryableError) and last.body is not None:
                raise MalformedPageError(message, last.body) from last
            raise ApiError(message) from last

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        *,
        auth: Authenticator | None = None,
        who: str | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
    ) -> Answer:
        import requests

        # The credential goes into copies: the params in messages and logs never hold an API key.
        sent_headers, sent_params = dict(headers or {}), dict(params or {})
        fresh_token = auth.apply(self, sent_headers, sent_params) if auth else False
        timeout = (self.settings.connect_timeout_seconds, self.settings.timeout_seconds)
        shown = f"{method} {url} {dict(params or {})}"
        try:
            response = self.session.request(
                method, url, params=sent_params, json=json, data=data, headers=sent_headers, timeout=timeout
            )
        except requests.Timeout as timeout_error:
            raise _RetryableError(
                f"timed out after {self.settings.timeout_seconds} s ({type(timeout_error).__name__})"
            ) from None
        except requests.ConnectionError as connection_error:
            raise _RetryableError(f"connection failed: {type(connection_error).__name__}") from None
        status = response.status_code
        if status == 429:
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.settings.max_retry_after_seconds:
                raise ApiError(
                    f"{shown}: rate limited with Retry-After {wait:.0f} s, more than "
                    f"max_retry_after_seconds ({self.settings.max_retry_after_seconds})"
                )
            raise _RetryableError(f"429 rate limited (Retry-After {response.headers.get('Retry-After')})", wait)
        if status >= 500:
            raise _RetryableError(f"{status} {short(response.text)}")
        if who is not None and status in (400, 401, 403):
            raise ApiError(f"{method} {url}: the API refused {who} ({status}): {short(response.text)}")
        if status == 401 and auth is not None:
            if not auth.refreshable:  # a static credential refused stays refused
                raise ApiError(f"{shown}: 401, the API refused {auth.describe()}: {short(response.text)}")
            # A token can expire or be revoked at any moment, even just issued; two fresh ones refused in a row
            # means the credentials cannot read this endpoint, which no retry will fix.
            self._fresh_tokens_refused = self._fresh_tokens_refused + 1 if fresh_token else 0
            if self._fresh_tokens_refused >= 2:
                raise ApiError(f"{shown}: 401 even with tokens just issued: {short(response.text)}")
            auth.invalidate()  # a new token on the next attempt, at once
            raise _RetryableError(f"401 {short(response.text)}; fetching a new token", retry_after=0)
        self._fresh_tokens_refused = 0
        if status >= 400:
            raise ApiError(f"{shown}: {status} {short(response.text)}")
        try:
            body = response.json()
        except ValueError as not_json:
            raise _RetryableError(f"the body is not JSON ({not_json})", body=response.text) from None
        return Answer(body, response.links, response.url)
