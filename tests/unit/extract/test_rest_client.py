"""Each auth kind and each paginator against a small programmable HTTP server on 127.0.0.1 (a thread).

A test gives the server a function from the request to the answer; the server keeps every request it got, so the
tests check what was really sent (headers, query, form) and how many requests the walk took.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from airflow.models.connection import Connection
from rest_shapes import Answer, Request, Server

from medalflow.extract.rest import ApiError, ApiLocation, MalformedPageError, PaginationSpec, RestClient, RestSettings
from medalflow.extract.rest.paginate import Pages


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


SETTINGS = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.02, "timeout_seconds": 2, "max_attempts": 3}


def client_for(server: Server, extra: dict | None = None, **options: Any) -> RestClient:
    location = ApiLocation(server.base_url, "user", "s3cret-pw", extra or {}, "test_api")
    return RestClient(location, RestSettings.from_options({**SETTINGS, **options}))


def walk(client: RestClient, pagination: dict | str, selector: tuple[str, ...] = ("data",), params=None) -> list:
    spec = PaginationSpec.parse(pagination)
    pages = Pages(client, "/items", params or {}, spec, selector, client.authenticator(), {})
    return [page.records for page in pages]


def listing(records: list, **more: Any) -> Answer:
    return Answer(200, {"data": records, **more})


# --- auth ------------------------------------------------------------------------------------------------------------


def test_api_key_in_a_header_from_the_password(server):
    server.app = lambda request: listing([1])
    client = client_for(server, auth={"type": "api_key", "name": "X-Api-Key"})
    walk(client, "single_page")
    assert server.requests[0].headers["X-Api-Key"] == "s3cret-pw"


def test_api_key_in_the_query_from_an_extra_never_shows_in_messages(server):
    server.app = lambda request: Answer(404, {"error": "gone"})
    extra = {"api_token": "tok-987"}
    client = client_for(
        server, extra, auth={"type": "api_key", "name": "key", "location": "query", "value_from": "extra.api_token"}
    )
    with pytest.raises(ApiError, match=r"GET .*/items \{\}: 404") as failure:
        walk(client, "single_page")
    assert server.requests[0].query["key"] == "tok-987"
    assert "tok-987" not in str(failure.value)


def test_http_basic_from_login_and_password(server):
    server.app = lambda request: listing([1])
    walk(client_for(server, auth="http_basic"), "single_page")
    assert server.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"user:s3cret-pw").decode()


def test_a_static_credential_refused_fails_at_once_naming_it_not_its_value(server):
    server.app = lambda request: Answer(401, {"error": "nope"})
    client = client_for(server, auth={"type": "bearer", "token_from": "password"})
    with pytest.raises(
        ApiError, match=r"401, the API refused the bearer token from the connection's password"
    ) as failure:
        walk(client, "single_page")
    assert len(server.requests) == 1
    assert server.requests[0].headers["Authorization"] == "Bearer s3cret-pw"
    assert "s3cret-pw" not in str(failure.value)


def test_bearer_login_posts_the_credentials_and_logs_in_again_on_a_401(server):
    tokens = iter(["t1", "t2"])
    refused = []

    def app(request: Request) -> Answer:
        if request.path == "/auth/login":
            assert json.loads(request.body) == {"user": "user", "pass": "s3cret-pw"}
            return Answer(200, {"result": {"token": next(tokens)}, "ttl": 600})
        if request.headers["Authorization"] == "Bearer t1" and not refused:
            refused.append(1)
            return Answer(401, {"error": "expired"})
        return listing([request.headers["Authorization"]])

    server.app = app
    auth = {
        "type": "bearer_login",
        "login_path": "/auth/login",
        "username_field": "user",
        "password_field": "pass",
        "token_path": "result.token",
        "expires_in_path": "ttl",
    }
    assert walk(client_for(server, auth=auth), "single_page") == [["Bearer t2"]]
    assert [request.path for request in server.requests] == ["/auth/login", "/items", "/auth/login", "/items"]


def test_a_refused_login_fails_at_once_naming_the_user(server):
    server.app = lambda request: Answer(401, {"error": "bad password"})
    with pytest.raises(ApiError, match=r"POST .*/login: the API refused the login of user 'user' \(401\)"):
        walk(client_for(server, auth={"type": "bearer_login"}), "single_page")
    assert len(server.requests) == 1


def test_oauth2_client_credentials_fetches_one_token_for_every_page_and_a_new_one_on_a_401(server):
    issued = []

    def app(request: Request) -> Answer:
        if request.path == "/oauth/token":
            form = {name: values[-1] for name, values in parse_qs(request.body.decode()).items()}
            assert form == {"grant_type": "client_credentials", "scope": "read write"}
            assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"user:s3cret-pw").decode()
            issued.append(f"tok{len(issued)}")
            return Answer(200, {"access_token": issued[-1], "token_type": "bearer", "expires_in": 3600})
        if len(server.data_requests()) == 3:  # the token is revoked once, mid-walk
            return Answer(401, {"error": "invalid_token"})
        page = int(request.query.get("page", 1))
        return listing([page], total=4)

    server.app = app
    auth = {"type": "oauth2_client_credentials", "token_url": "/oauth/token", "scopes": ["read", "write"]}
    pages = walk(client_for(server, auth=auth), {"type": "page_number", "page_size": 1, "total_path": "total"})
    assert pages == [[1], [2], [3], [4]]
    assert issued == ["tok0", "tok1"]
    assert [r.headers["Authorization"] for r in server.data_requests()] == ["Bearer tok0"] * 3 + ["Bearer tok1"] * 2


def test_oauth2_client_secret_in_the_form_when_declared(server):
    def app(request: Request) -> Answer:
        if request.path == "/token":
            form = {name: values[-1] for name, values in parse_qs(request.body.decode()).items()}
            assert (form["client_id"], form["client_secret"]) == ("user", "s3cret-pw")
            assert "Authorization" not in request.headers
            return Answer(200, {"access_token": "abc"})
        return listing([1])

    server.app = app
    auth = {"type": "oauth2_client_credentials", "token_url": f"{server.base_url}/token", "client_auth": "body"}
    assert walk(client_for(server, auth=auth), "single_page") == [[1]]


def test_connection_extras_headers_go_with_every_request(server):
    server.app = lambda request: listing([1])
    walk(client_for(server, {"headers": {"X-Tenant": "acme"}}), "single_page")
    assert server.requests[0].headers["X-Tenant"] == "acme"


def test_location_from_a_connection_with_a_full_url_in_host_and_extras():
    connection = Connection(
        conn_id="api", conn_type="http", host="https://api.example/v2", password="k", extra='{"headers": {"A": "b"}}'
    )
    location = ApiLocation.from_airflow_connection(connection)
    assert (location.base_url, location.headers, location.secret("password")) == (
        "https://api.example/v2",
        {"A": "b"},
        "k",
    )
    with pytest.raises(ValueError, match=r"connection 'api': login is empty, but the source's auth block reads"):
        location.secret("login")
    assert "'k'" not in repr(location)


# --- pagination ------------------------------------------------------------------------------------------------------


def numbered(total: int, cap: int | None = None) -> Callable[[Request], Answer]:
    """Pages of 1..total by page number and page size; ``cap`` is the API's own maximum page size."""

    def app(request: Request) -> Answer:
        size = min(int(request.query.get("page_size", 10)), cap or 10**6)
        page = int(request.query.get("page", 1))
        return listing(list(range((page - 1) * size + 1, min(page * size, total) + 1)), total=total)

    return app


def test_page_number_with_a_total_stops_when_it_is_reached(server):
    server.app = numbered(6)
    pages = walk(client_for(server), {"type": "page_number", "page_size": 3, "total_path": "total"})
    assert pages == [[1, 2, 3], [4, 5, 6]]  # no third request for an empty page


def test_page_number_with_a_total_reads_past_a_silently_capped_page_size(server):
    server.app = numbered(5, cap=2)
    pages = walk(client_for(server), {"type": "page_number", "page_size": 3, "total_path": "total"})
    assert [record for page in pages for record in page] == [1, 2, 3, 4, 5]


def test_page_number_without_a_total_stops_at_a_short_page(server):
    server.app = numbered(5)
    assert walk(client_for(server), {"type": "page_number", "page_size": 2}) == [[1, 2], [3, 4], [5]]
    assert [r.query["page"] for r in server.requests] == ["1", "2", "3"]


def test_offset_limit_with_and_without_a_total(server):
    def app(request: Request) -> Answer:
        offset, limit = int(request.query["skip"]), int(request.query["take"])
        return Answer(200, {"rows": list(range(offset, min(offset + limit, 7))), "count": 7})

    server.app = app
    spec = {"type": "offset", "offset_param": "skip", "limit_param": "take", "limit": 3}
    assert walk(client_for(server), spec, ("rows",)) == [[0, 1, 2], [3, 4, 5], [6]]
    server.requests.clear()
    pages = walk(client_for(server), {**spec, "total_path": "count"}, ("rows",))
    assert [record for page in pages for record in page] == list(range(7))
    assert len(server.requests) == 3


def test_an_empty_page_ends_any_walk(server):
    server.app = lambda request: Answer(200, {"data": [], "next": "more"})
    assert walk(client_for(server), {"type": "cursor", "cursor_path": "next"}) == [[]]


def test_cursor_from_a_json_path_sent_back_as_a_parameter(server):
    def app(request: Request) -> Answer:
        at = int(request.query.get("after", 0))
        return Answer(200, {"items": [at, at + 1], "meta": {"next": str(at + 2) if at < 4 else None}})

    server.app = app
    spec = {"type": "cursor", "cursor_path": "meta.next", "cursor_param": "after", "page_size": 2}
    assert walk(client_for(server), spec, ("items",)) == [[0, 1], [2, 3], [4, 5]]
    assert [r.query.get("after") for r in server.requests] == [None, "2", "4"]
    assert server.requests[0].query["limit"] == "2"


def test_a_cursor_that_does_not_move_fails(server):
    server.app = lambda request: Answer(200, {"data": [1], "cursor": "same"})
    with pytest.raises(ApiError, match=r"page 2 of GET /items: the next cursor is the current one \('same'\)"):
        walk(client_for(server), {"type": "cursor", "cursor_path": "cursor"})


def test_json_link_follows_a_relative_next_url_from_the_body(server):
    def app(request: Request) -> Answer:
        page = int(request.query.get("p", 1))
        return Answer(200, {"data": [page], "links": {"next": f"/items?p={page + 1}" if page < 3 else None}})

    server.app = app
    assert walk(client_for(server), {"type": "json_link", "next_url_path": "links.next"}) == [[1], [2], [3]]


def test_a_next_url_on_another_host_is_refused(server):
    server.app = lambda request: Answer(200, {"data": [1], "next": "http://elsewhere.example/items?p=2"})
    with pytest.raises(ApiError, match=r"is on http://elsewhere\.example, not on the connection's"):
        walk(client_for(server), {"type": "json_link", "next_url_path": "next"})


def test_header_link_follows_rel_next(server):
    def app(request: Request) -> Answer:
        page = int(request.query.get("page", 1))
        link = {"Link": f'<{server.base_url}/items?page={page + 1}&per_page=2>; rel="next"'} if page < 2 else {}
        return Answer(200, [page * 10, page * 10 + 1], link)

    server.app = app
    spec = {"type": "header_link", "page_size": 2, "page_size_param": "per_page"}
    assert walk(client_for(server), spec, ()) == [[10, 11], [20, 21]]


def test_a_runaway_walk_fails_at_maximum_pages(server):
    server.app = lambda request: listing([1], total=10**9)
    with pytest.raises(ApiError, match=r"page 4 of GET /items: more than pagination\.maximum_pages \(3\) pages"):
        walk(client_for(server), {"type": "page_number", "total_path": "total", "maximum_pages": 3})


def test_no_list_at_the_data_selector_fails_naming_it(server):
    server.app = lambda request: Answer(200, {"results": {"rows": []}})
    with pytest.raises(ApiError, match=r"expected a list of records at data_selector 'results\.items', found nothing"):
        walk(client_for(server), "single_page", ("results", "items"))


def test_a_missing_total_fails_naming_the_path(server):
    server.app = lambda request: listing([1])
    with pytest.raises(ApiError, match=r"page 1 of GET /items: no record count at total_path 'meta\.total'"):
        walk(client_for(server), {"type": "page_number", "total_path": "meta.total"})


def test_rate_limits_and_server_errors_are_retried(server):
    answers = iter([Answer(429, {}, {"Retry-After": "0"}), Answer(502, {}), listing([1])])
    server.app = lambda request: next(answers)
    assert walk(client_for(server), "single_page") == [[1]]
    assert len(server.requests) == 3


def test_a_retry_after_past_the_cap_fails_at_once(server):
    server.app = lambda request: Answer(429, {}, {"Retry-After": "3600"})
    with pytest.raises(ApiError, match=r"rate limited with Retry-After 3600 s, more than max_retry_after_seconds"):
        walk(client_for(server, max_retry_after_seconds=10), "single_page")
    assert len(server.requests) == 1


def test_an_unparseable_cursor_page_fails_since_the_next_cursor_is_in_it(server):
    server.app = lambda request: Answer(200, b'{"data": [1, 2')
    with pytest.raises(ApiError, match=r"page 1 of GET /items: the body stayed unparseable and with cursor pagination"):
        walk(client_for(server), {"type": "cursor", "cursor_path": "next"})
    assert len(server.requests) == 3  # every attempt, then the walk gives up


def test_a_login_answer_that_is_not_json_fails_the_run_not_a_page(server):
    server.app = lambda request: Answer(200, b"<html>maintenance</html>")
    with pytest.raises(ApiError, match=r"the login of user 'user': the answer stayed unparseable") as failure:
        walk(client_for(server, auth={"type": "bearer_login"}), {"type": "page_number", "page_size": 5})
    assert not isinstance(failure.value, MalformedPageError)
    assert [request.path for request in server.requests] == ["/login"] * 3
