"""Source configs: one YAML file per source group in dags/config/sources/, so adding a source is configuration.

A group names its kind (sql, rest, files), the Airflow connection that holds its credentials, and its entities
with their declared raw schemas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

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


def parse_source_group(document: dict[str, Any], origin: str) -> SourceGroup:
    try:
        name, kind = document["source"], document["kind"]
        if kind not in KINDS:
            raise SchemaError(f"{origin}: kind {kind!r} is not one of {KINDS}")
        entities: dict[str, Any] = {}
        for entity_name, spec in sorted(document["entities"].items()):
            entities[entity_name] = _sql_entity(name, entity_name, spec) if kind == "sql" else spec
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
