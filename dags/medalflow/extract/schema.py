"""Declared raw schemas: the columns a source entity must deliver, with their types.

A declared column that is missing fails the run with a message naming source, entity and column. A column the
source adds passes through as text, so nothing new is lost and the raw schema stays stable until it is declared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


class SchemaError(ValueError):
    """The source delivered something the declared schema cannot hold."""


def arrow_type(declared: str) -> pa.DataType:
    """Map the small type vocabulary of the source configs to Arrow."""
    import pyarrow as pa

    simple = {
        "int": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    if declared in simple:
        return simple[declared]
    if match := _DECIMAL.match(declared):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    raise SchemaError(f"unknown column type {declared!r}; use one of {sorted(simple)} or decimal(p,s)")


@dataclass(frozen=True)
class DeclaredSchema:
    source: str
    entity: str
    columns: Mapping[str, str]

    def arrow_schema(self, extra_columns: list[str] = ()) -> pa.Schema:  # type: ignore[assignment]
        import pyarrow as pa

        fields = [pa.field(name, arrow_type(kind)) for name, kind in self.columns.items()]
        fields += [pa.field(name, pa.string()) for name in extra_columns]
        return pa.schema(fields)

    def extra_columns(self, delivered: list[str]) -> list[str]:
        """Columns the source sends that are not declared, in the order it sends them."""
        return [name for name in delivered if name not in self.columns]

    def check_required(self, delivered: list[str], where: str) -> None:
        missing = [name for name in self.columns if name not in delivered]
        if missing:
            raise SchemaError(
                f"{where}: source {self.source!r}, entity {self.entity!r} is missing required column(s) "
                f"{', '.join(missing)}"
            )

    def conform(self, batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
        """Cast a delivered batch to the target schema (declared columns typed, extra columns as text)."""
        import pyarrow as pa

        arrays = []
        for field in target:
            column = batch.column(batch.schema.get_field_index(field.name))
            if isinstance(column.type, pa.ExtensionType):
                column = column.storage
            if column.type != field.type:
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                    raise SchemaError(
                        f"source {self.source!r}, entity {self.entity!r}, column {field.name!r}: "
                        f"cannot read {column.type} as {field.type}: {error}"
                    ) from error
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, schema=target)


def parse_declared_entity(
    kind: str, source: str, name: str, spec: Any, allowed: set[str] | frozenset[str], required: tuple[str, ...]
) -> tuple[DeclaredSchema, tuple[str, ...]]:
    """What every entity of the SQL and file kinds declares, checked the same way: only ``allowed`` settings, the
    ``required`` ones present, ``columns`` (name: type) typed, ``key`` one declared column or a list of them.

    Raises :class:`SchemaError` whose message starts with the setting at fault (the config loader puts the file and
    the entity in front)."""
    if not isinstance(spec, Mapping):
        raise SchemaError(f"expected a mapping of settings, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise SchemaError(f"{unknown[0]}: unknown setting; a {kind} entity takes {', '.join(sorted(allowed))}")
    for setting in required:
        if setting not in spec:
            raise SchemaError(f"{setting}: missing; a {kind} entity needs {', '.join(required)}")
    columns = spec["columns"]
    if not isinstance(columns, Mapping) or not columns:
        raise SchemaError("columns: expected a mapping of column name to type")
    schema = DeclaredSchema(source, name, dict(columns))
    try:
        schema.arrow_schema()
    except SchemaError as problem:
        raise SchemaError(f"columns: {problem}") from None
    key = spec["key"]
    keys = (key,) if isinstance(key, str) else tuple(key) if isinstance(key, list) else ()
    if not keys or not all(isinstance(column, str) for column in keys):
        raise SchemaError(f"key: expected a column name or a list of them, got {key!r}")
    for column in keys:
        if column not in columns:
            raise SchemaError(f"key: {column!r} is not a declared column")
    return schema, keys
