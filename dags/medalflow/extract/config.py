"""Source configs: one YAML file per source group, so adding a source is configuration and a YAML file is a DAG.

The folder is ``dags/config/sources/`` (next to this package, found through ``__file__``) unless
``MEDALFLOW_SOURCES_DIR`` names another; every ``*.yml`` in it is a source group, read in sorted order. A group
names its kind (sql, rest, files), the Airflow connection that holds its credentials, a ``dag:`` section (schedule,
owner, tags...) and its entities with their declared raw schemas. The other top-level keys of the file (timeouts,
retries, ``max_bad_ratio``) are the kind's options, checked here by name and type and read by the extractor of the
kind (``RestSettings.from_options``, ``Limits.from_options``); each entity is parsed by its kind's module.

A mistake gives a :class:`SourceConfigError` that names the file and the key path and says what to do
(``dags/config/sources/shop.yml: entities.orders.columns: required; ...``), never a traceback from deep inside.
Only YAML is read here: nothing connects anywhere, so DAG files can call this at parse time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model, field_validator

from medalflow.extract.files import parse_file_entity
from medalflow.extract.rest import parse_rest_entity
from medalflow.extract.schema import SchemaError
from medalflow.extract.sql import parse_sql_entity

DEFAULT_SOURCES_DIR = Path(__file__).resolve().parents[2] / "config" / "sources"
SOURCES_DIR_VARIABLE = "MEDALFLOW_SOURCES_DIR"
KINDS = ("sql", "rest", "files")
# The named schedules of the ``dag:`` section; anything else must be a five-field cron expression (UTC).
SCHEDULES = ("daily", "weekly")
DOCS = "docs/sources.md"

_NAME = r"^[a-z][a-z0-9_]*$"  # a source or entity name: it becomes a lake folder, an Asset name and a task id
Name = Annotated[str, StringConstraints(pattern=_NAME)]


class SourceConfigError(SchemaError):
    """A source config that cannot become a DAG; the message names the file and the key path, and what to do."""


def sources_dir() -> Path:
    """The folder of source configs: ``MEDALFLOW_SOURCES_DIR`` when set (tests, teams), else dags/config/sources."""
    return Path(os.getenv(SOURCES_DIR_VARIABLE) or DEFAULT_SOURCES_DIR)


class DagSettings(BaseModel):
    """The ``dag:`` section of a source config: how its extraction DAG is named, scheduled and labelled.

    Every key is optional. ``schedule`` is ``daily`` (00:00 UTC over the day before), ``weekly`` (Sundays 02:00 UTC
    over the week before) or a five-field cron expression in UTC whose data interval runs from one tick to the next.
    ``retries`` defaults to the house default (``MEDALFLOW_TASK_RETRIES``, 2), ``owner`` to ``data-platform``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dag_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]+$")
    schedule: str = "daily"
    owner: str | None = Field(None, min_length=1)
    tags: tuple[str, ...] | None = None
    retries: int | None = Field(None, ge=0)
    max_active_runs: int = Field(1, ge=1)
    start_date: date | None = None

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, value: str) -> str:
        value = " ".join(value.split())
        if value in SCHEDULES:
            return value
        from croniter import croniter  # Airflow's own cron library, installed with it

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError("must be daily, weekly or a five-field cron expression in UTC, e.g. '30 1 * * *'")
        return value


class _DateWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: date = Field(alias="from")
    to: date


class _LimitOptions(BaseModel):
    """What every kind tolerates (``medalflow.extract.quarantine.Limits``)."""

    model_config = ConfigDict(extra="forbid")

    max_bad_ratio: float = Field(0.0, ge=0.0, le=1.0)
    plausible_dates: _DateWindow | None = None


def _settings_fields(settings_class: type) -> dict[str, Any]:
    """A settings dataclass's fields as pydantic fields, typed by their defaults (ints stay ints, floats accept
    ints): a setting the kind's module adds is accepted here without an edit."""
    return {
        item.name: (type(item.default) if item.default is not MISSING else Any, item.default)
        for item in fields(settings_class)
        if item.default is not MISSING and isinstance(item.default, int | float | str | bool)
    }


@cache
def _kind_options(kind: str) -> type[BaseModel]:
    """The top-level options a source of ``kind`` takes, beside source, kind, conn_id, description, dag, entities."""
    if kind == "rest":
        from medalflow.extract.rest import RestSettings

        return create_model(
            "RestOptions", __base__=_LimitOptions, **_settings_fields(RestSettings), **RestSettings.block_fields()
        )
    return _LimitOptions


class _GroupDocument(BaseModel):
    """The group-level keys of a source config; the kind's options are the extra keys (checked by kind)."""

    model_config = ConfigDict(extra="allow")

    source: Name
    kind: Literal["sql", "rest", "files"]
    conn_id: str | None = None
    description: str = Field(min_length=1)
    dag: DagSettings = Field(default_factory=DagSettings)
    entities: dict[Name, dict[str, Any]] = Field(min_length=1)


_GROUP_KEYS = tuple(_GroupDocument.model_fields)


@dataclass(frozen=True)
class SourceGroup:
    name: str
    kind: str
    conn_id: str | None
    description: str
    entities: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    dag: DagSettings = field(default_factory=DagSettings)
    # Optional ``description:`` of each entity (kept here: the kind's parsers never see it), for the DAG's docs.
    entity_descriptions: dict[str, str] = field(default_factory=dict)
    path: Path | None = None  # the YAML file it came from

    @property
    def dag_id(self) -> str:
        return self.dag.dag_id or f"extract_{self.name}"

    def entity(self, name: str) -> Any:
        try:
            return self.entities[name]
        except KeyError:
            raise KeyError(f"source {self.name!r} has no entity {name!r}; it has {sorted(self.entities)}") from None


_ENTITY_PARSERS = {"sql": parse_sql_entity, "rest": parse_rest_entity, "files": parse_file_entity}


def display_path(path: Path | str) -> str:
    """A config file as people know it: relative to the project (``dags/config/sources/erp.yml``) when inside it."""
    from medalflow.settings import PROJECT_ROOT

    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _described(item: Mapping[str, Any], known: Mapping[tuple[Any, ...], tuple[str, ...]]) -> str:
    """One pydantic problem in the words of a person editing the YAML, with what to do."""
    location = tuple(item["loc"])
    kind = item["type"]
    if kind == "missing":
        return "required; add it"
    if kind == "extra_forbidden":
        keys = known.get(location[:-1], ())
        return f"unknown key; remove it or fix its spelling (known here: {', '.join(keys)})"
    if kind == "string_pattern_mismatch" and location[-1:] != ("dag_id",):
        return f"{item['input']!r} is not a valid name: use lower-case letters, digits and _ (it names folders)"
    if kind == "value_error":  # our own validators' messages (the schedule), without pydantic's prefix
        return f"{item['ctx']['error']}, got {item['input']!r}"
    return f"{item['msg'][0].lower()}{item['msg'][1:]}, got {item['input']!r}"


def _problems(error: ValidationError, known: Mapping[tuple[Any, ...], tuple[str, ...]]) -> list[str]:
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        own = str(item.get("ctx", {}).get("error", "")) if item["type"] == "value_error" else ""
        if own.startswith((f"{path}.", f"{path}:")):
            problems.append(own)  # a kind's parser already named the key path inside the block
        else:
            problems.append(f"{path}: {_described(item, known)}")
    return problems


def _fail(origin: str, problems: list[str]) -> SourceConfigError:
    return SourceConfigError("\n".join(f"{origin}: {problem}" for problem in problems))


def _entity(kind: str, source: str, name: str, spec: dict[str, Any], origin: str) -> tuple[Any, str]:
    """Parse one entity with its kind's parser; its problems come back prefixed ``<file>: entities.<name>.``."""
    spec = dict(spec)
    description = spec.pop("description", "") or ""
    if not isinstance(description, str):
        raise _fail(origin, [f"entities.{name}.description: expected text, got {description!r}"])
    try:
        return _ENTITY_PARSERS[kind](source, name, spec), description
    except SchemaError as problem:
        raise _fail(origin, [f"entities.{name}.{problem}"]) from None
    except KeyError as missing:
        raise _fail(origin, [f"entities.{name}.{missing.args[0]}: required; add it"]) from None
    except (TypeError, ValueError) as problem:
        raise _fail(origin, [f"entities.{name}: {problem}"]) from None


def parse_source_group(document: Any, origin: str) -> SourceGroup:
    """A source group from a YAML document; ``origin`` (the file) starts every error message."""
    if not isinstance(document, Mapping):
        keys = ", ".join(_GROUP_KEYS)
        raise _fail(origin, [f"expected a mapping with the keys {keys}, got {type(document).__name__}"])
    problems: list[str] = []
    try:
        group = _GroupDocument.model_validate(document)
    except ValidationError as error:
        known = {(): _GROUP_KEYS, ("dag",): tuple(DagSettings.model_fields)}
        problems += _problems(error, known)
        group = None
    kind = document.get("kind")
    if kind in KINDS:
        options_model = _kind_options(kind)
        extra = {key: value for key, value in document.items() if key not in _GROUP_KEYS}
        try:
            options_model.model_validate(extra)
        except ValidationError as error:
            option_keys = tuple(name for name in options_model.model_fields)
            known = {(): (*_GROUP_KEYS, *option_keys), ("plausible_dates",): ("from", "to")}
            problems += _problems(error, known)
    if group is not None and group.kind in ("sql", "rest") and not group.conn_id:
        problems.append(
            f"conn_id: required for a {group.kind} source; name the Airflow connection with its credentials"
        )
    if problems or group is None:
        raise _fail(origin, problems)

    entities: dict[str, Any] = {}
    descriptions: dict[str, str] = {}
    for entity_name, spec in sorted(group.entities.items()):
        entities[entity_name], descriptions[entity_name] = _entity(group.kind, group.source, entity_name, spec, origin)
    for entity in entities.values():
        parent = getattr(entity, "parent", None)
        if parent and parent not in entities:
            others = ", ".join(sorted(entities))
            raise _fail(
                origin, [f"entities.{entity.name}.parent: {parent!r} is not an entity of this source ({others})"]
            )
    return SourceGroup(
        name=group.source,
        kind=group.kind,
        conn_id=group.conn_id,
        description=group.description.strip(),
        entities=entities,
        options={key: value for key, value in document.items() if key not in _GROUP_KEYS},
        dag=group.dag,
        entity_descriptions={name: text.strip() for name, text in descriptions.items() if text},
    )


def read_source_file(path: Path) -> SourceGroup:
    """Parse one source config file; a :class:`SourceConfigError` names it and the key path at fault."""
    stat = path.stat()
    return _read_source_file(path.resolve(), stat.st_mtime_ns, stat.st_size)


@cache
def _read_source_file(path: Path, modified_ns: int, size: int) -> SourceGroup:
    # Cached per file version: the dag-processor and every task of a run read the same file many times.
    origin = display_path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise _fail(origin, [f"{where}not valid YAML ({problem}); check the indentation, colons and quotes"]) from None
    group = parse_source_group(document, origin)
    if group.name != path.stem:
        raise _fail(origin, [f"source: {group.name!r} must be the file's name; rename the file {group.name}.yml"])
    return replace(group, path=path)


def source_files(directory: Path | None = None) -> list[Path]:
    """The source config files of a folder, in sorted order."""
    directory = directory or sources_dir()
    return sorted(directory.glob("*.yml"))


@dataclass(frozen=True)
class SourceCatalogue:
    """Every source config of a folder: the groups that parse, and the error of each file that does not."""

    directory: Path
    groups: dict[str, SourceGroup]
    errors: dict[Path, SourceConfigError]


def load_sources(directory: Path | None = None) -> SourceCatalogue:
    """Read every source config of the folder. One broken file does not hide the others: its error is kept aside.
    Two files may not claim the same DAG id: the later one (in sorted order) is the broken one."""
    directory = directory or sources_dir()
    groups: dict[str, SourceGroup] = {}
    errors: dict[Path, SourceConfigError] = {}
    owners: dict[str, Path] = {}
    for path in source_files(directory):
        try:
            group = read_source_file(path)
        except SourceConfigError as error:
            errors[path] = error
            continue
        if group.dag_id in owners:
            first = display_path(owners[group.dag_id])
            message = f"dag.dag_id: {group.dag_id!r} is already the DAG of {first}; give this source another dag_id"
            errors[path] = _fail(display_path(path), [message])
            continue
        owners[group.dag_id] = path
        groups[group.name] = group
    return SourceCatalogue(directory, groups, errors)


def load_source_group(name: str, directory: Path | None = None) -> SourceGroup:
    """The source group ``name`` (the file ``<name>.yml`` of the sources folder)."""
    directory = directory or sources_dir()
    path = directory / f"{name}.yml"
    if not path.is_file():
        known = ", ".join(path.stem for path in source_files(directory)) or "none"
        raise SourceConfigError(
            f"no source config {name!r}: expected {display_path(path)} (sources folder {directory}, set by "
            f"{SOURCES_DIR_VARIABLE}; it has: {known})"
        )
    return read_source_file(path)


# What deploy.sh configures on MWAA (deploy/<env>.env: SECRETS_CONNECTIONS_PREFIX, SECRETS_LOOKUP_PATTERN), for
# messages written where Airflow's secrets backend is not configured (a laptop, CI).
DEFAULT_CONNECTIONS_PREFIX = "medalflow/<env>/connections"
DEFAULT_LOOKUP_PATTERN = "^medalflow_"


def _secrets_backend_kwargs() -> dict[str, Any]:
    import json

    from airflow.configuration import conf

    try:
        kwargs = json.loads(conf.get("secrets", "backend_kwargs", fallback="") or "{}")
    except ValueError:
        return {}
    return kwargs if isinstance(kwargs, dict) else {}


def connection_locations(conn_id: str) -> tuple[str, str]:
    """Where an Airflow connection is created: the environment variable (local, compose) and the Secrets Manager
    secret (MWAA; its prefix is the ``connections_prefix`` of Airflow's secrets backend, set by deploy.sh)."""
    prefix = str(_secrets_backend_kwargs().get("connections_prefix") or "").rstrip("/") or DEFAULT_CONNECTIONS_PREFIX
    return f"AIRFLOW_CONN_{conn_id.upper()}", f"{prefix}/{conn_id}"


def secrets_lookup_pattern() -> str:
    """The connection ids Airflow looks up in Secrets Manager on MWAA (others are never found there)."""
    return str(_secrets_backend_kwargs().get("connections_lookup_pattern") or DEFAULT_LOOKUP_PATTERN)
