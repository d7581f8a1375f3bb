"""Extraction of relational tables (PostgreSQL, MariaDB/MySQL, SQLite) into the raw zone, with the CDC operation.

Each table is declared in its source config (``dags/config/sources/<source>.yml``, :func:`parse_sql_entity`) in one
of two modes:

* ``incremental`` (tables with a change timestamp): each run reads the rows whose ``cursor`` column (``updated_at``
  unless declared otherwise, e.g. ``modified``) falls in the run's data interval [start, end), and tags each with
  the CDC operation: ``D`` when its ``deleted_at`` (soft delete) falls on or after the start, ``I`` when its
  ``created_at`` does, ``U`` otherwise. A row stamped exactly at midnight belongs to the day that starts then.
* ``snapshot`` (tables without one): each run lands the whole table, every row tagged against the previous snapshot
  in the raw zone (the latest ``ingestion_date`` before the run's): ``I`` for a key it did not have, ``U`` for a key
  it had, and, for each key of the previous snapshot that is gone, its last known row as ``D``. A partition is then
  the table's complete state of that day plus the day's deletions, and the previous state is always one partition
  away (the ``D`` rows aside), however long ago it was taken.

Rows stream from the database as Arrow record batches (ADBC for PostgreSQL and SQLite; PyMySQL's unbuffered cursor
for MariaDB/MySQL, which needs no client library to build on MWAA) into Parquet; a reader thread fetches the next
batch while the current one is encoded, and a bounded queue between them keeps memory at a few batches whatever the
table size. The Airflow connection's ``conn_type`` (``postgres``, ``mysql``, ``sqlite``) chooses the engine.
"""

from __future__ import annotations

import logging
import posixpath
import queue
import re
import threading
from collections.abc import Generator, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from medalflow.extract.metadata import OPERATION, IngestionContext, metadata_fields, with_metadata
from medalflow.extract.schema import DeclaredSchema, SchemaError, parse_declared_entity
from medalflow.lake import RAW_ZONE, Lake, partition_path

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

MODES = ("incremental", "snapshot")
# The PostgreSQL driver sizes its batches in bytes (16 MiB is its default). Larger batches
# were no faster in benchmarks/erp_extraction.py and cost memory: 32 MiB took a task from 222 to 264 MB peak.
POSTGRES_BATCH_BYTES = 16 * 1024 * 1024
# PyMySQL hands rows over as Python tuples, ~1 KB each in memory: 20k rows is a ~20 MB batch.
MYSQL_BATCH_ROWS = 20_000
PREFETCHED_BATCHES = 2
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class SourceConnectionError(ConnectionError):
    """The source database cannot be reached or refuses the connection's credentials."""


@dataclass(frozen=True)
class SqlEntity:
    """One table to extract, as declared in the source config (see :func:`parse_sql_entity`)."""

    name: str
    table: str
    key: str | tuple[str, ...]
    schema: DeclaredSchema
    mode: str = "incremental"
    cursor: str | None = "updated_at"  # incremental only: the change timestamp the interval filters on
    created_at: str | None = "created_at"  # incremental only: rows created in the interval are 'I'
    deleted_at: str | None = "deleted_at"  # incremental only: rows soft-deleted in the interval are 'D'
    db_schema: str | None = None  # the database schema (PostgreSQL) or database (MySQL) holding the table
    where: str | None = None  # a fixed SQL filter on the table, from the config (trusted, never from user input)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,) if isinstance(self.key, str) else tuple(self.key)


_SQL_KEYS = {"table", "schema", "key", "columns", "mode", "cursor", "created_at", "deleted_at", "where"}


def parse_sql_entity(source: str, name: str, spec: Mapping[str, Any]) -> SqlEntity:
    """An entity of a ``kind: sql`` source group from its YAML mapping.

    ``key`` (a column or a list) and ``columns`` (name: type) are required; ``table`` (default: the entity's name),
    ``schema`` (the database schema or MySQL database; default: the connection's), ``where`` (a fixed SQL filter)
    and ``mode`` are optional. ``mode: incremental`` (the default) takes ``cursor`` (default ``updated_at``) and the
    op columns ``created_at`` / ``deleted_at`` (defaults of the same names; ``null`` when the table has none);
    ``mode: snapshot`` takes none of them. A :class:`SchemaError` names the key at fault first (``mode: ...``).
    """
    schema, keys = parse_declared_entity("sql", source, name, spec, _SQL_KEYS, ("key", "columns"))
    columns = spec["columns"]
    mode = spec.get("mode", "incremental")
    if mode not in MODES:
        raise SchemaError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    table = spec.get("table", name)
    db_schema = spec.get("schema")
    for setting, value in (("table", table), ("schema", db_schema)):
        if value is not None and not (isinstance(value, str) and _IDENTIFIER.match(value)):
            raise SchemaError(f"{setting}: {value!r} is not a plain identifier (letters, digits, _)")
    where = spec.get("where")
    if where is not None and (not isinstance(where, str) or ";" in where):
        raise SchemaError(f"where: expected one SQL condition, got {where!r}")
    op_columns: dict[str, str | None] = {}
    if mode == "snapshot":
        given = sorted({"cursor", "created_at", "deleted_at"} & set(spec))
        if given:
            raise SchemaError(f"{given[0]}: only with mode: incremental; a snapshot compares keys between runs")
        op_columns = {"cursor": None, "created_at": None, "deleted_at": None}
    else:
        for setting in ("cursor", "created_at", "deleted_at"):
            column = spec.get(setting, "updated_at" if setting == "cursor" else setting)
            if column is None and setting == "cursor":
                raise SchemaError("cursor: required with mode: incremental; use mode: snapshot for a table without one")
            if column is not None and column not in columns:
                hint = "" if setting == "cursor" else f", or set {setting}: null when the table has none"
                raise SchemaError(f"{setting}: {column!r} is not a declared column; declare it under columns{hint}")
            op_columns[setting] = column
    return SqlEntity(
        name=name,
        table=table,
        key=keys[0] if isinstance(spec["key"], str) else keys,
        schema=schema,
        mode=mode,
        db_schema=db_schema,
        where=where,
        **op_columns,
    )


# --- reaching the database -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseLocation:
    """How to reach the database: a dialect and its URI (a file path for SQLite), and the connection's id."""

    dialect: str  # postgresql, mysql (MariaDB too) or sqlite
    uri: str = field(repr=False)  # may hold the password: never shown
    conn_id: str | None = None

    @classmethod
    def from_airflow_connection(cls, connection: Any) -> DatabaseLocation:
        """Build from an Airflow connection: conn_type postgres, mysql (MariaDB too), or sqlite (path as host)."""
        dialect = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}.get(
            connection.conn_type, connection.conn_type
        )
        if dialect in ("postgresql", "mysql"):
            credentials = quote(connection.login or "", safe="")
            if connection.password:
                credentials += ":" + quote(connection.password, safe="")
            port = connection.port or (5432 if dialect == "postgresql" else 3306)
            host = f"{connection.host or 'localhost'}:{port}"
            return cls(dialect, f"{dialect}://{credentials}@{host}/{connection.schema or ''}", connection.conn_id)
        if dialect == "sqlite":
            return cls("sqlite", connection.host, connection.conn_id)
        raise ValueError(
            f"connection {connection.conn_id!r}: conn_type {connection.conn_type!r} is not supported by the sql "
            "extraction; use postgres, mysql or sqlite"
        )

    @property
    def safe_address(self) -> str:
        """Where the database is, for messages: host, port and database, never the credentials."""
        if self.dialect == "sqlite":
            return self.uri
        parts = urlsplit(self.uri)
        return f"{self.dialect}://{parts.hostname}:{parts.port}{parts.path}"

    def redact(self, text: str) -> str:
        """``text`` with the password (raw or URL-encoded) and the full URI masked."""
        password = urlsplit(self.uri).password if self.dialect != "sqlite" else None
        text = text.replace(self.uri, self.safe_address)
        for secret in filter(None, {password, password and unquote(password)}):
            text = text.replace(secret, "***")
        return text

    def quote(self, identifier: str) -> str:
        return f"`{identifier}`" if self.dialect == "mysql" else f'"{identifier}"'

    def literal(self, moment: datetime) -> str:
        """A timestamp literal (naive UTC, as the ERP stores them); built from datetimes only, never from user text."""
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        text = moment.isoformat(sep=" ")
        # SQLite keeps timestamps as text ('YYYY-MM-DD HH:MM:SS[.ffffff]'); with no fraction the literal compares
        # correctly against values stored with or without one.
        return f"'{text}'" if self.dialect == "sqlite" else f"TIMESTAMP '{text}'"

    @contextmanager
    def open(self, source: str, entity: str) -> Generator[Any, None, None]:
        """A DB-API connection; a failure to connect names the source, entity and connection, without secrets."""
        try:
            connection = self._connect()
        except Exception as error:  # each driver has its own exception tree; all of them mean "cannot connect"
            raise SourceConnectionError(self._explain(source, entity, error)) from None
        try:
            yield connection
        finally:
            connection.close()

    def _connect(self) -> Any:
        if self.dialect == "postgresql":
            import adbc_driver_postgresql.dbapi

            return adbc_driver_postgresql.dbapi.connect(self.uri)
        if self.dialect == "mysql":
            import pymysql

            parts = urlsplit(self.uri)
            return pymysql.connect(
                host=parts.hostname or "localhost",
                port=parts.port or 3306,
                user=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
                database=parts.path.lstrip("/") or None,
                charset="utf8mb4",
                init_command="SET time_zone = '+00:00'",  # TIMESTAMP columns come back in UTC, as the lake keeps them
                connect_timeout=30,
            )
        import adbc_driver_sqlite.dbapi

        return adbc_driver_sqlite.dbapi.connect(self.uri)

    def _explain(self, source: str, entity: str, error: Exception) -> str:
        reason = self.redact(str(error).strip() or type(error).__name__)
        lowered = reason.lower()
        if "refused" in lowered or "could not translate" in lowered or "timed out" in lowered or "2003" in lowered:
            fix = "is the database up, and are host and port of the connection right?"
        elif "password" in lowered or "access denied" in lowered or "authentication" in lowered:
            fix = "check the login and password of the connection"
        elif "does not exist" in lowered or "unknown database" in lowered:
            fix = "check the connection's schema field (the database name)"
        else:
            fix = "check host, port, login, password and schema (database) of the connection"
        where = f"Airflow connection {self.conn_id!r}" if self.conn_id else "the configured connection"
        return (
            f"source {source!r}, entity {entity!r}: cannot connect to {self.safe_address} through {where}: {fix} "
            f"({reason})"
        )

    @contextmanager
    def stream(self, connection: Any, query: str) -> Generator[tuple[list[str], Iterator[pa.RecordBatch]], None, None]:
        """Run ``query``; its column names and its result as Arrow record batches, fetched lazily. The cursor is
        closed on leaving, whether or not the batches were all read."""
        import pyarrow as pa

        if self.dialect == "mysql":
            import pymysql.cursors

            # Unbuffered: the server streams the result; the client holds one fetchmany() of it, not the table.
            cursor = connection.cursor(pymysql.cursors.SSCursor)
        else:
            cursor = connection.cursor()
            if self.dialect == "postgresql":
                options = {"adbc.postgresql.batch_size_hint_bytes": str(POSTGRES_BATCH_BYTES)}
                cursor.adbc_statement.set_options(**options)
        try:
            cursor.execute(query)
            if self.dialect != "mysql":
                reader = cursor.fetch_record_batch()
                yield list(reader.schema.names), iter(reader)
                return
            names = [column[0] for column in cursor.description]

            def batches() -> Iterator[pa.RecordBatch]:
                while rows := cursor.fetchmany(MYSQL_BATCH_ROWS):
                    # Types as PyMySQL decodes them (datetime, Decimal, int, str); conform() casts to the declared.
                    columns = [pa.array(column) for column in zip(*rows, strict=True)]
                    yield pa.RecordBatch.from_arrays(columns, names=names)

            yield names, batches()
        finally:
            cursor.close()


class _Prefetcher:
    """Reads ``batches`` in a thread, ``depth`` ahead of the consumer: the database read overlaps the Parquet
    encoding (both release the GIL), and the bounded queue keeps memory at ``depth`` batches.

    :meth:`close` stops and joins the thread; call it before closing the cursor the batches come from.
    """

    _DONE = object()

    def __init__(self, batches: Iterator[pa.RecordBatch], depth: int | None = None) -> None:
        self._batches = batches
        self._handoff: queue.Queue = queue.Queue(maxsize=depth or PREFETCHED_BATCHES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="sql-batch-reader", daemon=True)
        self._thread.start()

    def _offer(self, item: object) -> bool:
        """Put ``item`` in the queue unless the consumer has stopped; False once it has."""
        while not self._stop.is_set():
            try:
                self._handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for batch in self._batches:
                if not self._offer(batch):
                    return
            self._offer(self._DONE)
        except BaseException as error:  # handed to the consumer, which raises it in the task's thread
            self._offer(error)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while (item := self._handoff.get()) is not self._DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# --- queries -------------------------------------------------------------------------------------------------------


def _table_reference(entity: SqlEntity, location: DatabaseLocation) -> str:
    table = location.quote(entity.table)
    return f"{location.quote(entity.db_schema)}.{table}" if entity.db_schema else table


def change_query(entity: SqlEntity, location: DatabaseLocation, start: datetime, end: datetime) -> str:
    """The incremental query: rows whose cursor is in [start, end), each with its CDC operation."""
    q = location.quote
    start_literal, end_literal = location.literal(start), location.literal(end)
    cases = ""
    if entity.deleted_at:
        cases += f"WHEN src.{q(entity.deleted_at)} >= {start_literal} THEN 'D' "
    if entity.created_at:
        cases += f"WHEN src.{q(entity.created_at)} >= {start_literal} THEN 'I' "
    operation = f"CASE {cases}ELSE 'U' END" if cases else "'U'"
    cursor = f"src.{q(entity.cursor)}"
    where = f" AND ({entity.where})" if entity.where else ""
    order = ", ".join(f"src.{q(column)}" for column in (entity.cursor, *entity.keys))
    return (
        f"SELECT src.*, {operation} AS {OPERATION} FROM {_table_reference(entity, location)} AS src "
        f"WHERE {cursor} >= {start_literal} AND {cursor} < {end_literal}{where} ORDER BY {order}"
    )


def snapshot_query(entity: SqlEntity, location: DatabaseLocation) -> str:
    """The snapshot query: the whole table (or its ``where`` part), in key order so reruns write the same file."""
    where = f" WHERE {entity.where}" if entity.where else ""
    order = ", ".join(f"src.{location.quote(column)}" for column in entity.keys)
    return f"SELECT src.* FROM {_table_reference(entity, location)} AS src{where} ORDER BY {order}"


# --- extraction ----------------------------------------------------------------------------------------------------


def extract_changes(
    location: DatabaseLocation,
    entity: SqlEntity,
    lake: Lake,
    start: datetime,
    end: datetime,
    context: IngestionContext,
) -> dict[str, Any]:
    """Replace the raw partition of ``start``'s date with the entity's changes in [start, end) (incremental), or
    with its whole table compared to the previous snapshot (snapshot)."""
    import pyarrow as pa

    snapshot = entity.mode == "snapshot"
    query = snapshot_query(entity, location) if snapshot else change_query(entity, location, start, end)
    day = start.date()
    relative = partition_path(RAW_ZONE, context.source, entity.name, day)
    where = f"table {_table_reference(entity, location)}"
    with location.open(context.source, entity.name) as connection, ExitStack() as cleanup:
        try:
            names, source_batches = cleanup.enter_context(location.stream(connection, query))
        except Exception as error:  # a missing table or column, a bad ``where``: the declaration's mistake
            raise SchemaError(
                f"source {context.source!r}, entity {entity.name!r}: the query on {where} through "
                f"{location.safe_address} failed: {location.redact(str(error).strip())}"
            ) from None
        delivered = [name for name in names if name != OPERATION]
        entity.schema.check_required(delivered, where)
        extra = entity.schema.extra_columns(delivered)
        if extra:
            log.warning("%s: new column(s) %s pass through as text", where, ", ".join(extra))
        data_schema = entity.schema.arrow_schema(extra)
        file_schema = pa.schema([*data_schema, *metadata_fields()])
        counts = {"I": 0, "U": 0, "D": 0}
        if snapshot:
            comparison = _SnapshotComparison(entity, lake, context.source, day, data_schema)
            tagged = comparison.batches(source_batches, context, counts)
        else:
            tagged = _tagged_changes(entity, source_batches, data_schema, context, counts)
        # Reading, typing and tagging run in the reader thread, Parquet encoding in this one.
        prefetched = _Prefetcher(tagged)
        cleanup.callback(prefetched.close)  # before the cursor closes, however the writing ends
        with lake.replace_partition(relative, context.run_id) as partition:
            options = parquet_options(file_schema)
            rows = partition.write_batches("part-00000.parquet", file_schema, prefetched, **options)
    log.info(
        "%s.%s (%s): %s row(s) (%s) for [%s, %s) -> %s",
        context.source,
        entity.name,
        entity.mode,
        rows,
        ", ".join(f"{count} {op}" for op, count in counts.items()),
        start,
        end,
        relative,
    )
    return {
        "entity": entity.name,
        "mode": entity.mode,
        "rows": rows,
        "operations": counts,
        "partition": lake.url(relative),
        "new_columns": extra,
        "quarantined": 0,
    }


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """Dictionary encoding only for text columns: on ids, amounts and timestamps (mostly distinct values) it costs
    encoding time and makes larger files than plain zstd (measured by benchmarks/erp_extraction.py)."""
    import pyarrow as pa

    text = [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)]
    return {"compression": "zstd", "use_dictionary": text}


def _tagged_changes(
    entity: SqlEntity,
    source_batches: Iterator[pa.RecordBatch],
    data_schema: pa.Schema,
    context: IngestionContext,
    counts: dict[str, int],
) -> Iterator[pa.RecordBatch]:
    import pyarrow.compute as pc

    for batch in source_batches:
        operations = batch.column(batch.schema.get_field_index(OPERATION))
        for op, count in zip(*_value_counts(pc, operations), strict=True):
            counts[op] += count
        yield with_metadata(entity.schema.conform(batch, data_schema), context, operations)


def _value_counts(pc: Any, operations: pa.Array) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(operations)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


def _key_array(batch: pa.RecordBatch | pa.Table, keys: tuple[str, ...]) -> pa.Array:
    """One comparable value per row: the key column, or its columns joined as text for a composite key."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [batch.column(batch.schema.get_field_index(name)) for name in keys]
    columns = [column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column for column in columns]
    if len(columns) == 1:
        return columns[0]
    return pc.binary_join_element_wise(*[column.cast(pa.string()) for column in columns], "\x1f")


class _SnapshotComparison:
    """Tags a table's full snapshot against the previous one in the raw zone: I new keys, U kept keys, D gone keys.

    Only key columns are held in memory (the previous snapshot's and this one's); rows stream through.
    """

    def __init__(self, entity: SqlEntity, lake: Lake, source: str, day: date, data_schema: pa.Schema) -> None:
        self.entity, self.lake, self.data_schema = entity, lake, data_schema
        self.previous_files = previous_snapshot_files(lake, source, entity.name, day)
        self.previous_keys = self._previous_keys()

    def _previous_batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The previous snapshot's live rows (its ``D`` rows were already gone then)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        for path in self.previous_files:
            with self.lake.fs.open(self.lake.path(path), "rb") as handle:
                parquet = pq.ParquetFile(handle)
                available = parquet.schema_arrow.names
                wanted = None if columns is None else [name for name in columns if name in available]
                for batch in parquet.iter_batches(batch_size=65_536, columns=wanted):
                    yield batch.filter(pc.not_equal(batch.column(batch.schema.get_field_index(OPERATION)), "D"))

    def _previous_keys(self) -> pa.Array | None:
        import pyarrow as pa

        if not self.previous_files:
            return None
        keys = [_key_array(batch, self.entity.keys) for batch in self._previous_batches([*self.entity.keys, OPERATION])]
        return pa.concat_arrays(keys) if keys else None

    def batches(
        self, source_batches: Iterator[pa.RecordBatch], context: IngestionContext, counts: dict[str, int]
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.compute as pc

        current_keys: list[pa.Array] = []
        for batch in source_batches:
            typed = self.entity.schema.conform(batch, self.data_schema)
            keys = _key_array(typed, self.entity.keys)
            current_keys.append(keys)
            if self.previous_keys is None:
                operations: pa.Array | str = "I"
                counts["I"] += typed.num_rows
            else:
                operations = pc.if_else(pc.is_in(keys, value_set=self.previous_keys), "U", "I")
                for op, count in zip(*_value_counts(pc, operations), strict=True):
                    counts[op] += count
            yield with_metadata(typed, context, operations)
        if self.previous_keys is None:
            return
        still_there = pa.concat_arrays(current_keys) if current_keys else pa.array([], self.previous_keys.type)
        for batch in self._previous_batches():
            gone = batch.filter(pc.invert(pc.is_in(_key_array(batch, self.entity.keys), value_set=still_there)))
            if gone.num_rows:
                counts["D"] += gone.num_rows
                yield with_metadata(_reshape(gone, self.data_schema), context, "D")


def _reshape(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """A previous snapshot's rows in today's schema: columns it lacked are null, columns it had and today's table
    has not are dropped (the raw schema follows the table)."""
    import pyarrow as pa

    arrays = []
    for target_field in target:
        index = batch.schema.get_field_index(target_field.name)
        arrays.append(
            batch.column(index).cast(target_field.type) if index >= 0 else pa.nulls(batch.num_rows, target_field.type)
        )
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def previous_snapshot_files(lake: Lake, source: str, entity: str, day: date) -> list[str]:
    """Lake-relative Parquet files of the latest raw partition of ``entity`` before ``day`` (none on a first run)."""
    folder = posixpath.dirname(partition_path(RAW_ZONE, source, entity, day))
    days: dict[date, list[str]] = {}
    for path in lake.list_files(folder):
        partition = posixpath.basename(posixpath.dirname(path))
        if partition.startswith("ingestion_date=") and path.endswith(".parquet"):
            try:
                days.setdefault(date.fromisoformat(partition.split("=", 1)[1]), []).append(path)
            except ValueError:
                continue  # not one of ours
    earlier = [earlier_day for earlier_day in days if earlier_day < day]
    return sorted(days[max(earlier)]) if earlier else []
