"""Walking an endpoint's pages: page number, offset/limit, cursor, next-page link (body or ``Link`` header), or a
single page, each with the same robust stops and a runaway guard.

Stops: an empty page always ends the walk; page number and offset stop when the records seen reach the total the
API reports (``total_path``) or, without a total, at a page shorter than the page size (with a total, a short page
does not stop the walk, so an API that silently caps the page size is still read to the end); cursor and link
pagination stop when the body (or header) carries no next cursor / URL, and fail when it repeats the current one.
More than ``maximum_pages`` pages fails the run: a stop condition that never comes is a bug to see, not a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from medalflow.extract.rest.auth import Authenticator
from medalflow.extract.rest.client import ApiError, MalformedPageError, RestClient, short
from medalflow.extract.rest.records import MISSING, dotted, select
from medalflow.extract.rest.spec import PaginationSpec

log = logging.getLogger(__name__)

SKIPPABLE = ("page_number", "offset")  # the next request is known without the body


@dataclass
class Page:
    number: int
    records: list[Any] | MalformedPageError
    where: str  # "page 3 of GET /api/v1/payments", for messages and quarantine locations


class Pages:
    """The pages of one endpoint, first to last. An unparseable page (after every retry) is yielded as its
    :class:`MalformedPageError` when the paginator can go on without it; otherwise the walk fails."""

    def __init__(
        self,
        client: RestClient,
        path: str,
        params: Mapping[str, Any],
        pagination: PaginationSpec,
        data_selector: tuple[str, ...],
        auth: Authenticator,
        headers: Mapping[str, str],
    ) -> None:
        self.client, self.path, self.params = client, path, dict(params)
        self.pagination, self.data_selector, self.auth, self.headers = pagination, data_selector, auth, headers
        self.total: int | None = None  # as the last parsed page reported it
        self.seen = 0
        self._skipped_at: dict[int, int] = {}  # unparseable page number -> position of its first record

    @property
    def size(self) -> int | None:
        options = self.pagination.options
        return options.get("limit") if self.pagination.type == "offset" else options.get("page_size")

    def __iter__(self) -> Iterator[Page]:
        kind, options = self.pagination.type, self.pagination.options
        url, params = self.client.url(self.path), dict(self.params)
        size = self.size
        if kind == "page_number":
            page_number = options["base_page"]
            params[options["page_param"]] = page_number
            if size:
                params[options["page_size_param"]] = size
        elif kind == "offset":
            params[options["offset_param"]], params[options["limit_param"]] = 0, size
        elif size and options.get("page_size_param"):
            params[options["page_size_param"]] = size
        position, number, in_a_row = 0, 0, 0
        while True:
            number += 1
            where = f"page {number} of GET {urlsplit(url).path}"
            if number > options["maximum_pages"]:
                raise ApiError(
                    f"{where}: more than pagination.maximum_pages ({options['maximum_pages']}) pages; the stop "
                    "condition never came (raise maximum_pages if the endpoint really is that long)"
                )
            try:
                answer = self.client.get_page(url, params, self.auth, self.headers)
            except MalformedPageError as malformed:
                if kind not in SKIPPABLE or not size:
                    raise ApiError(
                        f"{where}: the body stayed unparseable and with {kind} pagination"
                        f"{'' if size else ' and no page size'} the next page is only known from it; giving up: "
                        f"{malformed}"
                    ) from None
                in_a_row += 1
                if in_a_row >= self.client.settings.max_attempts:
                    raise ApiError(f"GET {self.path}: {in_a_row} pages in a row are not JSON; giving up") from None
                self._skipped_at[number] = position
                yield Page(number, malformed, where)
                position += size
                params = self._advance(params, size)
                continue
            in_a_row = 0
            body = answer.body
            records = select(body, self.data_selector)
            if not isinstance(records, list):
                found = "nothing" if records is MISSING else type(records).__name__
                raise ApiError(
                    f"{where}: expected a list of records at data_selector {dotted(self.data_selector)!r}, found "
                    f"{found}; the body begins {short(str(body), 200)}"
                )
            if options.get("total_path"):
                total = select(body, options["total_path"])
                if isinstance(total, bool) or not isinstance(total, int | str) or not str(total).isdigit():
                    raise ApiError(f"{where}: no record count at total_path {dotted(options['total_path'])!r}")
                self.total = int(total)
            yield Page(number, records, where)
            self.seen += len(records)
            position += len(records)
            if kind == "single_page" or not records:
                return
            if kind in SKIPPABLE:
                if self.total is not None:
                    if position >= self.total:
                        return
                elif size and len(records) < size:
                    return
                params = self._advance(params, size or len(records))
            elif kind == "cursor":
                cursor = select(body, options["cursor_path"])
                if cursor in (MISSING, None, ""):
                    return
                if params.get(options["cursor_param"]) == cursor:
                    raise ApiError(f"{where}: the next cursor is the current one ({cursor!r}); the API loops")
                params[options["cursor_param"]] = cursor
            else:
                if kind == "json_link":
                    link = select(body, options["next_url_path"])
                else:
                    link = (answer.links.get("next") or {}).get("url")
                if link in (MISSING, None, ""):
                    return
                following = self.client.join(url, str(link))
                if following == url and not params:
                    raise ApiError(f"{where}: the next page's URL is this page's ({following}); the API loops")
                url, params = following, {}  # the link carries its own query

    def _advance(self, params: dict[str, Any], step: int) -> dict[str, Any]:
        options = self.pagination.options
        if self.pagination.type == "page_number":
            return {**params, options["page_param"]: params[options["page_param"]] + 1}
        return {**params, options["offset_param"]: params[options["offset_param"]] + step}

    def records_on(self, number: int) -> int:
        """How many records an unparseable page held, from the total a parsed page reported."""
        if self.total is None:
            raise ApiError(
                f"GET {self.path}: page {number} stayed unparseable and the API reports no total "
                "(pagination.total_path), so the records lost with it cannot be counted"
            )
        return max(0, min(self.size or 0, self.total - self._skipped_at[number]))
