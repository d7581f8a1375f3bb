"""Extraction from REST APIs into the raw zone, declared in YAML (``dags/config/sources/<source>.yml``).

A REST source is configuration, not code: its YAML says how to authenticate, how to page, where the records are
in a body, how the run's data interval is asked for, and which columns to land (``docs/sources.md`` is the
reference). The vocabulary is dlt's ``rest_api`` source's where it has a name for the thing (``auth`` types,
``pagination`` types ``page_number`` / ``offset`` / ``cursor`` / ``json_link`` / ``header_link`` /
``single_page``, ``data_selector``, ``incremental``, ``{resources.<parent>.<field>}``), so data engineers read it
without learning a new one. Secrets never appear in the YAML: it names the field of the Airflow connection that
holds each one (``login``, ``password``, ``extra.<name>``), and the connection's extras may carry static headers.

What one entity's extraction does:

1. **Authenticates** as declared (:mod:`.auth`): none, an API key in a header or query parameter, HTTP basic, a
   static bearer token, a bearer token from a login endpoint, or OAuth2 client credentials; tokens are cached until
   they expire and fetched again on a 401.
2. **Pages to the end** (:mod:`.paginate`) with robust stops and a ``maximum_pages`` guard; entities fetched per
   parent record repeat this for every value of the parent's field in its raw partition of the same interval.
3. **Asks for the interval** ``[start, end)`` in the API's format and end convention (date, datetime with or without
   zone, epoch seconds; inclusive or exclusive end) and, given a ``cursor_field``, checks each record against it:
   a record of another interval is left to that interval's run (counted and logged) or quarantined, as declared.
4. **Retries** what is worth retrying, with exponential backoff and jitter: 5xx, timeouts and connection errors; a
   429 waits what its ``Retry-After`` says (up to a cap); a body that is not JSON is asked for again. Other 4xx fail
   at once, naming the request (never a credential).
5. **Types each record** by the declared schema, nested fields read from their dotted paths into flat columns,
   objects and arrays kept as JSON text; records that do not fit are quarantined, and so is a page that stayed
   unparseable (when the pagination can go on without it).
6. **Streams** the records, a bounded batch at a time, into Parquet through :meth:`Lake.replace_partition`, then
   **reconciles** with the API's own count when it reports one: written + quarantined + other intervals' records
   must equal it.

**Why requests + tenacity and not a library.** dlt (1.31) resolves under MWAA's constraints (checked with
``uv pip compile`` against ``requirements/constraints/airflow_constraints.txt``), but it adds eleven packages
(GitPython, orjson, simplejson, semver...) for the part this module would use, its REST client's paginators and
auth. That client reads secrets and retry settings through dlt's own configuration providers rather than an Airflow
connection, and walks pages inside its own generator, which raises when a body is not JSON: a page that stays
unparseable could not be quarantined (with the records it held) while the walk goes on, and the run's reconciliation,
interval check and quarantine would sit outside the loop that sees each page. Its extract -> normalize -> load
pipeline, with its own state and schema evolution, would duplicate the raw zone's contract. Airflow's ``HttpHook``
sends the connection's login as HTTP basic on every request, and its ``run_with_advanced_retry`` is tenacity
without the 401 token refresh and ``Retry-After`` handling. requests-oauthlib is not installed, and OAuth2 client
credentials is one form POST. So: requests (a session per extraction) and tenacity (one retry policy for every
case), both already locked, with dlt's vocabulary, in this package's few hundred lines and their unit tests.
"""

from medalflow.extract.rest.client import ApiError, ApiLocation, MalformedPageError, RestClient
from medalflow.extract.rest.extract import extract_entity, read_parent_keys, write_parts
from medalflow.extract.rest.spec import (
    AuthSpec,
    IncrementalSpec,
    PaginationSpec,
    RestEntity,
    RestSettings,
    parse_rest_entity,
)

__all__ = [
    "ApiError",
    "ApiLocation",
    "AuthSpec",
    "IncrementalSpec",
    "MalformedPageError",
    "PaginationSpec",
    "RestClient",
    "RestEntity",
    "RestSettings",
    "extract_entity",
    "parse_rest_entity",
    "read_parent_keys",
    "write_parts",
]
