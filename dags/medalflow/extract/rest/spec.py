"""The YAML vocabulary of a REST source: auth, pagination, records, incremental, parents; parsed and checked.

Everything here is plain data, parsed when the source config is loaded (DAG parse time), so a mistake in a YAML
fails loudly before any run, with a message that starts with the key path inside the entity or the source
(``pagination.type: 'cursr' is not one of ...``). The names follow dlt's ``rest_api`` source where it has one
(``auth``, paginator types, ``data_selector``, ``incremental``, ``{resources.<parent>.<field>}``); secrets never
appear: the YAML names which field of the Airflow connection holds each (``login``, ``password``,
``extra.<name>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medalflow.extract.quarantine import Limits
from medalflow.extract.schema import DeclaredSchema, SchemaError, arrow_type

# --- small helpers ---------------------------------------------------------------------------------------------------

_CONNECTION_FIELD = re.compile(r"^(login|password|extra\.[A-Za-z0-9_.\-]+)$")
# Keys that would hold a secret: refused with a message saying where the secret goes instead.
_SECRET_KEYS = frozenset(
    {"password", "token", "access_token", "api_key", "key", "value", "secret", "client_secret", "username"}
)
_SECRET_HEADER = re.compile(r"authorization|api[-_]?key|token|secret|password|cookie", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{resources\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_.]*)\}")


class _Inherit:
    """Marks an entity setting left to the source's default (distinct from an explicit ``null``)."""

    def __repr__(self) -> str:
        return "INHERIT"


INHERIT: Any = _Inherit()


def _fail(where: str, message: str) -> SchemaError:
    return SchemaError(f"{where}: {message}")


def parse_json_path(text: Any, where: str) -> tuple[str, ...]:
    """A dotted JSON path (``results.items``; a leading ``$.`` is accepted, ``$`` alone is the body itself) as a
    tuple of keys; a key of digits also indexes a list (``items.0.id``)."""
    if text is None:
        return ()
    if not isinstance(text, str):
        raise _fail(where, f"{text!r} is not a JSON path; write it as dotted keys, e.g. results.items")
    stripped = text.strip()
    if stripped in ("", "$"):
        return ()
    stripped = stripped.removeprefix("$.")
    parts = tuple(stripped.split("."))
    if any(not part for part in parts):
        raise _fail(where, f"{text!r} is not a JSON path: empty key between dots")
    return parts


def _connection_field(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _CONNECTION_FIELD.match(value):
        raise _fail(
            where,
            f"{value!r} is not a connection field; use login, password or extra.<name> (the Airflow connection "
            "holds the secret, the YAML only says where)",
        )
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping, got {value!r}")
    return dict(value)


def _check_keys(spec: Mapping[str, Any], accepted: Mapping[str, Any], where: str, what: str) -> None:
    for key in spec:
        if key in accepted:
            continue
        if key in _SECRET_KEYS:
            raise _fail(
                f"{where}.{key}",
                "secrets never go in the YAML; put it in the Airflow connection and name the field that holds it "
                f"(one of the *_from keys: {', '.join(sorted(k for k in accepted if k.endswith('_from'))) or 'none'})",
            )
        raise _fail(f"{where}.{key}", f"unknown key for {what}; accepted: {', '.join(sorted(accepted)) or 'none'}")


def _check_texts(options: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> None:
    """A key whose default is a name (a parameter, a header, a path) must stay one: ``login_path: null`` is a
    mistake to name here, not a TypeError at run time."""
    for key, default in defaults.items():
        if isinstance(default, str) and default and (not isinstance(options[key], str) or not options[key].strip()):
            raise _fail(f"{where}.{key}", f"expected a non-empty name, got {options[key]!r} (default {default!r})")


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise _fail(where, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(where, f"expected a positive integer, got {value!r}")
    return value


def static_headers(value: Any, where: str) -> dict[str, str]:
    """Non-secret headers declared in the YAML; anything that looks like a credential is refused."""
    headers = _mapping(value, where)
    for name, text in headers.items():
        if _SECRET_HEADER.search(str(name)):
            raise _fail(
                f"{where}.{name}",
                "looks like a credential; secrets never go in the YAML: use auth (api_key) or the connection's "
                'extras {"headers": {...}}',
            )
        headers[name] = str(text)
    return headers


# --- auth ------------------------------------------------------------------------------------------------------------

AUTH_TYPES: dict[str, dict[str, Any]] = {
    "none": {},
    "api_key": {"name": "X-API-Key", "location": "header", "value_from": "password", "prefix": ""},
    "http_basic": {"username_from": "login", "password_from": "password"},
    "bearer": {"token_from": "password"},
    "bearer_login": {
        "login_path": "/login",
        "username_from": "login",
        "password_from": "password",
        "username_field": "username",
        "password_field": "password",
        "token_path": "access_token",
        "expires_in_path": "expires_in",
        "default_expires_in_seconds": 3600,
    },
    "oauth2_client_credentials": {
        "token_url": None,
        "scopes": [],
        "client_id_from": "login",
        "client_secret_from": "password",
        "client_auth": "basic",
        "default_expires_in_seconds": 3600,
    },
}


@dataclass(frozen=True)
class AuthSpec:
    """How requests prove who they are; ``options`` holds the type's keys with their defaults filled in."""

    type: str = "none"
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, where: str = "auth") -> AuthSpec:
        if value is None:
            return cls()
        if isinstance(value, str):  # shorthand: auth: http_basic
            value = {"type": value}
        spec = _mapping(value, where)
        kind = _choice(spec.pop("type", None), tuple(AUTH_TYPES), f"{where}.type")
        accepted = AUTH_TYPES[kind]
        _check_keys(spec, accepted, where, f"auth type {kind!r}")
        options = {**accepted, **spec}
        _check_texts(options, accepted, where)
        for key, text in options.items():
            if key.endswith("_from"):
                _connection_field(text, f"{where}.{key}")
        if kind == "api_key":
            _choice(options["location"], ("header", "query"), f"{where}.location")
        if kind == "oauth2_client_credentials":
            if not options["token_url"]:
                raise _fail(f"{where}.token_url", "required for oauth2_client_credentials (a path or a full URL)")
            _choice(options["client_auth"], ("basic", "body"), f"{where}.client_auth")
            scopes = options["scopes"]
            options["scopes"] = scopes.split() if isinstance(scopes, str) else list(scopes or [])
        if kind == "bearer_login":
            options["token_path"] = parse_json_path(options["token_path"], f"{where}.token_path")
            options["expires_in_path"] = parse_json_path(options["expires_in_path"], f"{where}.expires_in_path")
        return cls(kind, options)


# --- pagination ------------------------------------------------------------------------------------------------------

_COMMON_PAGINATION = {"maximum_pages": 10_000}
PAGINATION_TYPES: dict[str, dict[str, Any]] = {
    "single_page": {},
    "page_number": {
        "page_param": "page",
        "base_page": 1,
        "page_size": None,
        "page_size_param": "page_size",
        "total_path": None,
    },
    "offset": {"offset_param": "offset", "limit_param": "limit", "limit": 100, "total_path": None},
    "cursor": {"cursor_path": None, "cursor_param": "cursor", "page_size": None, "page_size_param": "limit"},
    "json_link": {"next_url_path": None, "page_size": None, "page_size_param": "limit"},
    "header_link": {"page_size": None, "page_size_param": "limit"},
}
_REQUIRED_PATHS = {
    "cursor": ("cursor_path", "the JSON path of the next cursor in the body, e.g. meta.next_cursor"),
    "json_link": ("next_url_path", "the JSON path of the next page's URL in the body, e.g. links.next"),
}


@dataclass(frozen=True)
class PaginationSpec:
    """How to walk an endpoint's pages; ``options`` holds the type's keys with their defaults filled in."""

    type: str = "single_page"
    options: Mapping[str, Any] = field(default_factory=lambda: dict(_COMMON_PAGINATION))

    @classmethod
    def parse(cls, value: Any, where: str = "pagination") -> PaginationSpec:
        if value is None:
            return cls()
        if isinstance(value, str):  # shorthand: pagination: header_link
            value = {"type": value}
        spec = _mapping(value, where)
        kind = _choice(spec.pop("type", None), tuple(PAGINATION_TYPES), f"{where}.type")
        accepted = {**PAGINATION_TYPES[kind], **_COMMON_PAGINATION}
        _check_keys(spec, accepted, where, f"pagination type {kind!r}")
        options = {**accepted, **spec}
        _check_texts(options, accepted, where)
        if kind in _REQUIRED_PATHS:
            key, meaning = _REQUIRED_PATHS[kind]
            if not options[key]:
                raise _fail(f"{where}.{key}", f"required for pagination type {kind!r}: {meaning}")
        for key in ("cursor_path", "next_url_path", "total_path"):
            if options.get(key) is not None:
                options[key] = parse_json_path(options[key], f"{where}.{key}")
                if not options[key]:
                    raise _fail(f"{where}.{key}", "must name a field of the body, not the body itself")
        for key in ("page_size", "limit", "maximum_pages"):
            if options.get(key) is not None:
                _positive_int(options[key], f"{where}.{key}")
        if kind == "page_number" and not isinstance(options["base_page"], int):
            raise _fail(f"{where}.base_page", f"expected an integer, got {options['base_page']!r}")
        return cls(kind, options)


# --- incremental -----------------------------------------------------------------------------------------------------

INTERVAL_FORMATS = ("date", "datetime", "datetime_naive", "epoch_seconds")
OUT_OF_INTERVAL = ("drop", "quarantine")


@dataclass(frozen=True)
class IncrementalSpec:
    """How the run's data interval ``[start, end)`` is asked for, and how records are checked against it.

    ``end_inclusive``: the API includes records at ``end`` itself. For ``format: date`` the last day of the
    interval is sent (``until=D`` for the day D), which is exact; for the second-granular formats ``end`` is sent
    as is and the record at exactly ``end`` (it belongs to the next interval) is filtered out on ``cursor_field``,
    which is therefore required.
    """

    start_param: str
    end_param: str | None
    format: str = "datetime"
    end_inclusive: bool = False
    cursor_field: tuple[str, ...] | None = None
    out_of_interval: str = "drop"

    @classmethod
    def parse(cls, value: Any, where: str = "incremental") -> IncrementalSpec | None:
        if value is None:
            return None
        spec = _mapping(value, where)
        accepted = {
            "start_param": None,
            "end_param": None,
            "format": "datetime",
            "end_inclusive": False,
            "cursor_field": None,
            "out_of_interval": "drop",
        }
        _check_keys(spec, accepted, where, "incremental")
        options = {**accepted, **spec}
        if not options["start_param"]:
            raise _fail(f"{where}.start_param", "required: the query parameter that takes the interval's start")
        _choice(options["format"], INTERVAL_FORMATS, f"{where}.format")
        _choice(options["out_of_interval"], OUT_OF_INTERVAL, f"{where}.out_of_interval")
        if not isinstance(options["end_inclusive"], bool):
            raise _fail(f"{where}.end_inclusive", f"expected true or false, got {options['end_inclusive']!r}")
        cursor = parse_json_path(options["cursor_field"], f"{where}.cursor_field") or None
        if cursor is None and options["end_inclusive"] and options["format"] != "date":
            raise _fail(
                f"{where}.cursor_field",
                f"required when end_inclusive with format {options['format']!r}: the record at exactly the "
                "interval's end belongs to the next interval and is filtered out on this field",
            )
        if cursor is None and not options["end_param"]:
            raise _fail(f"{where}.cursor_field", "required without end_param: the end is applied on this field")
        return cls(
            start_param=str(options["start_param"]),
            end_param=str(options["end_param"]) if options["end_param"] else None,
            format=options["format"],
            end_inclusive=options["end_inclusive"],
            cursor_field=cursor,
            out_of_interval=options["out_of_interval"],
        )


# --- source-level settings -------------------------------------------------------------------------------------------

_NUMBERS = {
    "connect_timeout_seconds": 10.0,
    "timeout_seconds": 60.0,
    "max_attempts": 6,
    "backoff_seconds": 1.0,
    "max_backoff_seconds": 60.0,
    "max_retry_after_seconds": 300.0,
    "token_refresh_margin_seconds": 30.0,
    "batch_rows": 10_000,
}
_LIMIT_KEYS = ("max_bad_ratio", "plausible_dates")
_BLOCKS = ("auth", "pagination", "data_selector", "incremental", "headers", "params")


@dataclass(frozen=True)
class RestSettings:
    """How to talk to the API: the source-level defaults of the YAML (an entity may override the blocks)."""

    auth: AuthSpec = field(default_factory=AuthSpec)
    pagination: PaginationSpec = field(default_factory=PaginationSpec)
    data_selector: tuple[str, ...] = ()
    incremental: IncrementalSpec | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
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
    def block_fields(cls) -> dict[str, Any]:
        """The source-level blocks (auth, pagination, ...) as pydantic field definitions, each checked by its
        parser, for a config loader that validates every top-level key by name at parse time."""
        from typing import Annotated

        from pydantic import AfterValidator

        parsers = {
            "auth": AuthSpec.parse,
            "pagination": PaginationSpec.parse,
            "data_selector": parse_json_path,
            "incremental": IncrementalSpec.parse,
            "headers": static_headers,
            "params": _mapping,
        }

        def checked(name: str) -> Any:
            def check(value: Any) -> Any:
                parsers[name](value, name)  # a SchemaError (a ValueError) becomes the loader's validation error
                return value

            return Annotated[Any, AfterValidator(check)]

        return {name: (checked(name), None) for name in _BLOCKS}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RestSettings:
        """The source's top-level keys (besides source, kind, conn_id, description, entities); unknown keys are
        refused naming the accepted ones, so a typo never silently falls back to a default."""
        accepted = (*_BLOCKS, *_NUMBERS, *_LIMIT_KEYS)
        for key in options:
            if key not in accepted:
                hint = " (secrets go in the Airflow connection)" if key in _SECRET_KEYS else ""
                raise SchemaError(
                    f"{key}: unknown key for a REST source{hint}; accepted: {', '.join(sorted(accepted))}"
                )
        numbers: dict[str, Any] = {}
        for key, default in _NUMBERS.items():
            value = options.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise SchemaError(f"{key}: expected a non-negative number, got {value!r}")
            numbers[key] = type(default)(value)
        if numbers["max_attempts"] < 1:
            raise SchemaError("max_attempts: at least 1")
        try:
            limits = Limits.from_options(options)
        except ValueError as problem:
            raise SchemaError(f"max_bad_ratio: {problem}") from None
        return cls(
            auth=AuthSpec.parse(options.get("auth")),
            pagination=PaginationSpec.parse(options.get("pagination")),
            data_selector=parse_json_path(options.get("data_selector"), "data_selector"),
            incremental=IncrementalSpec.parse(options.get("incremental")),
            headers=static_headers(options.get("headers"), "headers"),
            params=_mapping(options.get("params"), "params"),
            limits=limits,
            **numbers,
        )


# --- entities --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestEntity:
    """One endpoint to extract, as declared in the source config. Blocks left ``INHERIT`` take the source's."""

    name: str
    path: str  # may name a parent's field: /forecast/projects/{resources.projects.project_id}/baseline
    key: tuple[str, ...]
    schema: DeclaredSchema
    column_paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flat column -> path in the record
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Any = INHERIT
    pagination: Any = INHERIT
    data_selector: Any = INHERIT
    incremental: Any = INHERIT
    parent: str | None = None  # the entity whose keys this one is fetched for
    parent_key: str | None = None  # the parent's column the placeholder names

    @property
    def placeholder(self) -> str | None:
        return f"{{resources.{self.parent}.{self.parent_key}}}" if self.parent else None

    @property
    def interval_params(self) -> tuple[str, str | None] | None:
        """The interval's query parameters as the entity declares them (None: a snapshot, or inherited)."""
        if isinstance(self.incremental, IncrementalSpec):
            return (self.incremental.start_param, self.incremental.end_param)
        return None

    def effective(self, settings: RestSettings) -> EffectiveEndpoint:
        """The entity's blocks with the source's defaults filled in."""

        def pick(own: Any, default: Any) -> Any:
            return default if own is INHERIT else own

        return EffectiveEndpoint(
            auth=pick(self.auth, settings.auth),
            pagination=pick(self.pagination, settings.pagination),
            data_selector=pick(self.data_selector, settings.data_selector),
            incremental=pick(self.incremental, settings.incremental),
            headers={**settings.headers, **self.headers},
            params={**settings.params, **self.params},
        )


@dataclass(frozen=True)
class EffectiveEndpoint:
    auth: AuthSpec
    pagination: PaginationSpec
    data_selector: tuple[str, ...]
    incremental: IncrementalSpec | None
    headers: Mapping[str, str]
    params: Mapping[str, Any]


_ENTITY_KEYS = (
    "path",
    "key",
    "columns",
    "params",
    "headers",
    "auth",
    "pagination",
    "data_selector",
    "incremental",
)


def _columns(value: Any) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """``name: type`` or ``name: {path: a.b, type: t}``: the declared types and each column's path in a record."""
    columns = _mapping(value, "columns")
    if not columns:
        raise _fail("columns", "declare at least one column (name: type, or name: {path: a.b, type: type})")
    types, paths = {}, {}
    for name, declared in columns.items():
        where = f"columns.{name}"
        if "." in str(name):
            raise _fail(
                where,
                "a column name cannot contain dots; name it flat and give the nested path, e.g. "
                f"{str(name).replace('.', '_')}: {{path: {name}, type: ...}}",
            )
        if isinstance(declared, Mapping):
            _check_keys(declared, {"path": None, "type": None}, where, "a column")
            if "type" not in declared:
                raise _fail(f"{where}.type", "required")
            kind, path = declared["type"], parse_json_path(declared.get("path", name), f"{where}.path")
            if not path:
                raise _fail(f"{where}.path", "must name a field of the record")
        else:
            kind, path = declared, (str(name),)
        try:
            arrow_type(str(kind))
        except SchemaError as problem:
            raise _fail(f"{where}.type" if isinstance(declared, Mapping) else where, str(problem)) from None
        types[str(name)], paths[str(name)] = str(kind), path
    return types, paths


def _parent_reference(spec: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The one parent named by ``{resources.<parent>.<field>}`` placeholders in the path and params."""
    found = set(_PLACEHOLDER.findall(str(spec.get("path", ""))))
    for value in (spec.get("params") or {}).values():
        found |= set(_PLACEHOLDER.findall(str(value)))
    if len(found) > 1:
        names = ", ".join(f"{{resources.{p}.{f}}}" for p, f in sorted(found))
        raise _fail("path", f"refers to more than one parent field ({names}); one parent field per entity")
    leftover = re.sub(_PLACEHOLDER, "", str(spec.get("path", "")))
    if "{" in leftover or "}" in leftover:
        raise _fail("path", f"{spec['path']!r}: a placeholder must read {{resources.<parent entity>.<field>}}")
    return next(iter(found), (None, None))


def parse_rest_entity(source: str, name: str, spec: dict[str, Any]) -> RestEntity:
    """One ``entities:`` item of a REST source; :class:`SchemaError` messages start with the key path inside it."""
    spec = _mapping(spec, "entity")
    for key in spec:
        if key not in _ENTITY_KEYS:
            hint = " (secrets go in the Airflow connection)" if key in _SECRET_KEYS else ""
            raise _fail(key, f"unknown key for a REST entity{hint}; accepted: {', '.join(sorted(_ENTITY_KEYS))}")
    for required in ("path", "key", "columns"):
        if required not in spec:
            raise _fail(required, "required")
    if not isinstance(spec["path"], str) or not spec["path"]:
        raise _fail("path", f"expected the endpoint's path, got {spec['path']!r}")
    types, paths = _columns(spec["columns"])
    raw_key = spec["key"]
    key_names = [raw_key] if isinstance(raw_key, str) else list(raw_key or [])
    if not key_names:
        raise _fail("key", "name at least one column")
    by_path = {".".join(path): column for column, path in paths.items()}
    key: list[str] = []
    for part in key_names:  # a key may be given as a column or as the nested path a column reads
        column = part if part in types else by_path.get(part)
        if column is None:
            raise _fail("key", f"{part!r} is not a declared column (nor the path of one); declared: {sorted(types)}")
        key.append(column)
    parent, parent_key = _parent_reference(spec)

    def block(key: str, parse: Any) -> Any:
        return parse(spec[key], key) if key in spec else INHERIT

    return RestEntity(
        name=name,
        path=spec["path"],
        key=tuple(key),
        schema=DeclaredSchema(source, name, types),
        column_paths=paths,
        params=_mapping(spec.get("params"), "params"),
        headers=static_headers(spec.get("headers"), "headers"),
        auth=block("auth", AuthSpec.parse),
        pagination=block("pagination", PaginationSpec.parse),
        data_selector=block("data_selector", parse_json_path),
        incremental=block("incremental", IncrementalSpec.parse),
        parent=parent,
        parent_key=parent_key,
    )
