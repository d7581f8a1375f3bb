"""Incremental extraction from a relational database with change data capture.

Each run reads the rows whose ``updated_at`` falls in the run's data interval [start, end) and tags each with the
CDC operation: ``D`` when the row was soft-deleted in the interval, ``I`` when it was created in it, ``U`` otherwise.
Rows stream from the database as Arrow record batches through ADBC (PostgreSQL and SQLite drivers) straight into
Parquet, so memory stays bounded by one batch whatever the table size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from medalflow.extract.metadata import OPERATION, IngestionContext, metadata_fields, with_metadata
from medalflow.extract.schema import DeclaredSchema
from medalflow.lake import RAW_ZONE, Lake, partition_path

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqlEntity:
    """One table to extract, as declared in the source config."""

    name: str
    table: str
    key: str
    schema: DeclaredSchema
    updated_at: str = "updated_at"
    created_at: str = "created_at"
    deleted_at: str | None = "deleted_at"


@dataclass(frozen=True)
class DatabaseLocation:
    """How to reach the database: a dialect and what its ADBC driver needs."""

    dialect: str  # "postgresql" or "sqlite"
    uri: str

    @classmethod
    def from_airflow_connection(cls, connection: Any) -> DatabaseLocation:
        """Build from an Airflow connection (conn_type postgres, or sqlite with the file path as host)."""
        if connection.conn_type in ("postgres", "postgresql"):
            credentials = quote(connection.login or "", safe="")
            if connection.password:
                credentials += ":" + quote(connection.password, safe="")
            host = f"{connection.host or 'localhost'}:{connection.port or 5432}"
            return cls("postgresql", f"postgresql://{credentials}@{host}/{connection.schema or ''}")
        if connection.conn_type == "sqlite":
            return cls("sqlite", connection.host)
        raise ValueError(f"connection {connection.conn_id!r}: conn_type {connection.conn_type!r} is not supported")

    def connect(self):
        if self.dialect == "postgresql":
            import adbc_driver_postgresql.dbapi

            return adbc_driver_postgresql.dbapi.connect(self.uri)
        import adbc_driver_sqlite.dbapi

        return adbc_driver_sqlite.dbapi.connect(self.uri)

    def literal(self, moment: datetime) -> str:
        """A timestamp literal (naive UTC, as the ERP stores them); built from datetimes only, never from user text."""
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        text = moment.isoformat(sep=" ")
        # SQLite keeps timestamps as text ('YYYY-MM-DD HH:MM:SS[.ffffff]'); with no fraction the literal compares
        # correctly against values stored with or without one.
        return f"TIMESTAMP '{text}'" if self.dialect == "postgresql" else f"'{text}'"


def change_query(entity: SqlEntity, location: DatabaseLocation, start: datetime, end: datetime) -> str:
    start_literal, end_literal = location.literal(start), location.literal(end)
    deleted = (
        f"WHEN {entity.deleted_at} IS NOT NULL AND {entity.deleted_at} >= {start_literal} THEN 'D' "
        if entity.deleted_at
        else ""
    )
    return (
        f"SELECT *, CASE {deleted}WHEN {entity.created_at} >= {start_literal} THEN 'I' ELSE 'U' END AS {OPERATION} "
        f"FROM {entity.table} "
        f"WHERE {entity.updated_at} >= {start_literal} AND {entity.updated_at} < {end_literal} "
        f"ORDER BY {entity.updated_at}, {entity.key}"
    )


def extract_changes(
    location: DatabaseLocation,
    entity: SqlEntity,
    lake: Lake,
    start: datetime,
    end: datetime,
    context: IngestionContext,
) -> dict[str, Any]:
    """Replace the raw partition of ``start``'s date with the entity's changes in [start, end)."""
    import pyarrow as pa

    query = change_query(entity, location, start, end)
    relative = partition_path(RAW_ZONE, context.source, entity.name, start.date())
    with location.connect() as connection, connection.cursor() as cursor:
        cursor.execute(query)
        reader = cursor.fetch_record_batch()
        delivered = [name for name in reader.schema.names if name != OPERATION]
        where = f"table {entity.table}"
        entity.schema.check_required(delivered, where)
        extra = entity.schema.extra_columns(delivered)
        if extra:
            log.warning("%s: new column(s) %s pass through as text", where, ", ".join(extra))
        data_schema = entity.schema.arrow_schema(extra)
        file_schema = pa.schema([*data_schema, *metadata_fields()])

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                operations = batch.column(batch.schema.get_field_index(OPERATION))
                typed = entity.schema.conform(batch, data_schema)
                yield with_metadata(typed, context, operations)

        with lake.replace_partition(relative, context.run_id) as partition:
            rows = partition.write_batches("part-00000.parquet", file_schema, batches())
    log.info("%s.%s: %s change(s) in [%s, %s) -> %s", context.source, entity.name, rows, start, end, relative)
    return {"entity": entity.name, "rows": rows, "partition": lake.url(relative), "new_columns": extra}
