"""Source configs: one YAML file per source group in dags/config/sources/, so adding a source is configuration.

A group names its kind (sql, rest, files), the Airflow connection that holds its credentials, and its entities
with their declared raw schemas. Everything else at the top level of the file (timeouts, retries, ``max_bad_ratio``)
lands in ``options``, read by the extractor of the kind (``RestSettings.from_options``, ``Limits.from_options``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from medalflow.extract.files import FORMATS, FileEntity
from medalflow.extract.rest import RestEntity
from medalflow.extract.schema import DeclaredSchema, SchemaError
from medalflow.extract.sql import SqlEntity

SOURCES_DIR = Path(__file__).resolve().parents[2] / "config" / "sources"
KINDS = ("sql", "rest", "files")


@dataclass(frozen=True)
class SourceGroup:
    name: str
    kind: str
    conn_id: str | None
    description: str
    entities: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def entity(self, name: str) -> Any:
        try:
            return self.entities[name]
        except KeyError:
            raise KeyError(f"source {self.name!r} has no entity {name!r}; it has {sorted(self.entities)}") from None


def _sql_entity(source: str, name: str, spec: dict[str, Any]) -> SqlEntity:
    return SqlEntity(
        name=name,
        table=spec.get("table", name),
        key=spec["key"],
        schema=DeclaredSchema(source, name, dict(spec["columns"])),
        updated_at=spec.get("updated_at", "updated_at"),
        created_at=spec.get("created_at", "created_at"),
        deleted_at=spec.get("deleted_at", "deleted_at"),
    )


def _key(spec: dict[str, Any]) -> tuple[str, ...]:
    key = spec["key"]
    return (key,) if isinstance(key, str) else tuple(key)


def _rest_entity(source: str, name: str, spec: dict[str, Any]) -> RestEntity:
    """``path``, ``key``, ``columns``; ``interval_params: [start, end]`` (default) or ``null`` for a snapshot;
    ``params`` (static query parameters); ``parent`` + ``parent_key`` to fetch per key of another entity."""
    interval = spec.get("interval_params", ["start", "end"])
    parent, parent_key = spec.get("parent"), spec.get("parent_key")
    if bool(parent) != bool(parent_key):
        raise SchemaError(f"entity {name!r}: parent and parent_key go together")
    if parent_key and "{" + parent_key + "}" not in spec["path"]:
        raise SchemaError(f"entity {name!r}: path {spec['path']!r} must contain {{{parent_key}}}")
    return RestEntity(
        name=name,
        path=spec["path"],
        key=_key(spec),
        schema=DeclaredSchema(source, name, dict(spec["columns"])),
        interval_params=tuple(interval) if interval else None,
        params=dict(spec.get("params") or {}),
        parent=parent,
        parent_key=parent_key,
    )


def _file_entity(source: str, name: str, spec: dict[str, Any]) -> FileEntity:
    """``key``, ``columns``, ``partners: {name: csv | parquet}``; optional ``inbox`` and ``require_daily_file``."""
    partners = dict(spec["partners"])
    unknown = {partner: kind for partner, kind in partners.items() if kind not in FORMATS}
    if unknown:
        raise SchemaError(f"entity {name!r}: partner formats {unknown} are not among {FORMATS}")
    return FileEntity(
        name=name,
        key=_key(spec),
        schema=DeclaredSchema(source, name, dict(spec["columns"])),
        partners=partners,
        inbox=spec.get("inbox", FileEntity.inbox),
        require_daily_file=bool(spec.get("require_daily_file", True)),
    )


_ENTITY_PARSERS = {"sql": _sql_entity, "rest": _rest_entity, "files": _file_entity}


def parse_source_group(document: dict[str, Any], origin: str) -> SourceGroup:
    try:
        name, kind = document["source"], document["kind"]
        if kind not in KINDS:
            raise SchemaError(f"{origin}: kind {kind!r} is not one of {KINDS}")
        entities: dict[str, Any] = {}
        for entity_name, spec in sorted(document["entities"].items()):
            try:
                entities[entity_name] = _ENTITY_PARSERS[kind](name, entity_name, spec)
            except KeyError as missing:
                raise SchemaError(f"{origin}: entity {entity_name!r} is missing key {missing}") from None
            except SchemaError as problem:
                raise SchemaError(f"{origin}: {problem}") from None
        for entity in entities.values():
            if getattr(entity, "parent", None) and entity.parent not in entities:
                raise SchemaError(f"{origin}: entity {entity.name!r} has parent {entity.parent!r}, not an entity")
    except KeyError as missing:
        raise SchemaError(f"{origin}: missing key {missing}") from None
    return SourceGroup(
        name=name,
        kind=kind,
        conn_id=document.get("conn_id"),
        description=document.get("description", ""),
        entities=entities,
        options={
            k: v for k, v in document.items() if k not in {"source", "kind", "conn_id", "description", "entities"}
        },
    )


@cache
def load_source_group(name: str, directory: Path = SOURCES_DIR) -> SourceGroup:
    path = directory / f"{name}.yml"
    return parse_source_group(yaml.safe_load(path.read_text()), str(path))
