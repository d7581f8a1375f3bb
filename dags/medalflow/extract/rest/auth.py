"""The ways a request proves who it is, each reading its secrets from the Airflow connection.

An authenticator adds headers or query parameters to a request. The token kinds (``bearer_login``,
``oauth2_client_credentials``) fetch a token through the client's retry policy, cache it until shortly before it
expires, and drop it on a 401 so the next attempt fetches a fresh one.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from medalflow.extract.rest.records import MISSING, select
from medalflow.extract.rest.spec import AuthSpec

if TYPE_CHECKING:
    from medalflow.extract.rest.client import ApiLocation, RestClient


class Authenticator:
    """No authentication; the base of the others."""

    refreshable = False  # whether a 401 is worth a new credential (a token) rather than failing at once

    def apply(self, client: RestClient, headers: dict[str, str], params: dict[str, Any]) -> bool:
        """Add the credential to a request; True when a new token was fetched for it just now."""
        return False

    def invalidate(self) -> None:
        """Forget a refused token."""

    def describe(self) -> str:
        return "no authentication"


class ApiKeyAuth(Authenticator):
    def __init__(self, name: str, location: str, value: str, prefix: str, source_field: str) -> None:
        self.name, self.location, self._value, self.prefix, self.source_field = (
            name,
            location,
            value,
            prefix,
            source_field,
        )

    def apply(self, client: RestClient, headers: dict[str, str], params: dict[str, Any]) -> bool:
        (headers if self.location == "header" else params)[self.name] = f"{self.prefix}{self._value}"
        return False

    def describe(self) -> str:
        return f"the API key in {self.location} {self.name!r} (from the connection's {self.source_field})"


class BasicAuth(Authenticator):
    def __init__(self, username: str, password: str) -> None:
        self.username, self._password = username, password

    def apply(self, client: RestClient, headers: dict[str, str], params: dict[str, Any]) -> bool:
        pair = f"{self.username}:{self._password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return False

    def describe(self) -> str:
        return f"HTTP basic auth of user {self.username!r}"


class StaticBearerAuth(Authenticator):
    def __init__(self, token: str, source_field: str) -> None:
        self._token, self.source_field = token, source_field

    def apply(self, client: RestClient, headers: dict[str, str], params: dict[str, Any]) -> bool:
        headers["Authorization"] = f"Bearer {self._token}"
        return False

    def describe(self) -> str:
        return f"the bearer token from the connection's {self.source_field}"


class _TokenAuth(Authenticator):
    """A bearer token fetched from the API, cached until ``expires_in`` minus the refresh margin."""

    refreshable = True

    def __init__(self, default_expires_in: float) -> None:
        self._token: str | None = None
        self._expires_at = 0.0
        self.default_expires_in = default_expires_in
        self.tokens_fetched = 0

    def apply(self, client: RestClient, headers: dict[str, str], params: dict[str, Any]) -> bool:
        fresh = False
        margin = client.settings.token_refresh_margin_seconds
        if not self._token or time.monotonic() >= self._expires_at - margin:
            answer = self.fetch(client)
            token, expires_in = self.read_token(answer)
            if not isinstance(token, str) or not token:
                raise client.api_error(f"{self.describe()}: no access token in the answer")
            self._token = token
            lifetime = expires_in if isinstance(expires_in, int | float) and expires_in > 0 else self.default_expires_in
            self._expires_at = time.monotonic() + float(lifetime)
            self.tokens_fetched += 1
            fresh = True
        headers["Authorization"] = f"Bearer {self._token}"
        return fresh

    def invalidate(self) -> None:
        self._token = None

    def fetch(self, client: RestClient) -> Any:
        raise NotImplementedError

    def read_token(self, answer: Any) -> tuple[Any, Any]:
        return select(answer, ("access_token",)), select(answer, ("expires_in",))


class LoginBearerAuth(_TokenAuth):
    """``POST <login_path>`` with the user and password as JSON, for a bearer token (today's partner API)."""

    def __init__(self, options: dict[str, Any], username: str, password: str) -> None:
        super().__init__(options["default_expires_in_seconds"])
        self.options, self.username, self._password = options, username, password

    def fetch(self, client: RestClient) -> Any:
        body = {self.options["username_field"]: self.username, self.options["password_field"]: self._password}
        return client.token_request(self.options["login_path"], who=f"the login of user {self.username!r}", json=body)

    def read_token(self, answer: Any) -> tuple[Any, Any]:
        expires = select(answer, self.options["expires_in_path"])
        return select(answer, self.options["token_path"]), None if expires is MISSING else expires

    def describe(self) -> str:
        return f"the login of user {self.username!r} at {self.options['login_path']}"


class OAuth2ClientCredentialsAuth(_TokenAuth):
    """RFC 6749 section 4.4: ``grant_type=client_credentials`` (and the scopes) posted as a form to the token URL,
    the client authenticated by HTTP basic (``client_auth: basic``, the RFC's recommendation) or in the form."""

    def __init__(self, options: dict[str, Any], client_id: str, client_secret: str) -> None:
        super().__init__(options["default_expires_in_seconds"])
        self.options, self.client_id, self._client_secret = options, client_id, client_secret

    def fetch(self, client: RestClient) -> Any:
        form = {"grant_type": "client_credentials"}
        if self.options["scopes"]:
            form["scope"] = " ".join(self.options["scopes"])
        headers = {}
        if self.options["client_auth"] == "basic":
            BasicAuth(self.client_id, self._client_secret).apply(client, headers, {})
        else:
            form |= {"client_id": self.client_id, "client_secret": self._client_secret}
        who = f"the client credentials of client {self.client_id!r}"
        return client.token_request(self.options["token_url"], who=who, data=form, headers=headers)

    def describe(self) -> str:
        return f"the OAuth2 client credentials of client {self.client_id!r}"


def build_authenticator(spec: AuthSpec, location: ApiLocation) -> Authenticator:
    """The authenticator an auth block declares, its secrets read from the connection now (at run time)."""
    options = dict(spec.options)
    secret = location.secret
    if spec.type == "api_key":
        field_name = options["value_from"]
        return ApiKeyAuth(options["name"], options["location"], secret(field_name), options["prefix"], field_name)
    if spec.type == "http_basic":
        return BasicAuth(secret(options["username_from"]), secret(options["password_from"]))
    if spec.type == "bearer":
        return StaticBearerAuth(secret(options["token_from"]), options["token_from"])
    if spec.type == "bearer_login":
        return LoginBearerAuth(options, secret(options["username_from"]), secret(options["password_from"]))
    if spec.type == "oauth2_client_credentials":
        client_id, client_secret = secret(options["client_id_from"]), secret(options["client_secret_from"])
        return OAuth2ClientCredentialsAuth(options, client_id, client_secret)
    return Authenticator()
