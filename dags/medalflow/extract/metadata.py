"""The ingestion metadata every raw record carries, whatever its source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

INGESTED_AT = "_ingested_at"
SOURCE = "_source"
RUN_ID = "_run_id"
OPERATION = "_op"
METADATA_COLUMNS = (INGESTED_AT, SOURCE, RUN_ID, OPERATION)


@dataclass(frozen=True)
class IngestionContext:
    """Who is writing a raw partition: the source name, the Airflow run and the moment of ingestion (UTC)."""

    source: str
    run_id: str
    ingested_at: datetime


def with_metadata(batch: pa.RecordBatch, context: IngestionContext, operation: pa.Array | str) -> pa.RecordBatch:
    """Append the metadata columns; ``operation`` is a column of I/U/D codes or one code for the whole batch."""
    import pyarrow as pa

    rows = batch.num_rows
    if isinstance(operation, str):
        operation = pa.array([operation] * rows, type=pa.string())
    columns = [*batch.columns, _repeat(pa.scalar(context.ingested_at, pa.timestamp("us", tz="UTC")), rows)]
    columns += [_repeat(pa.scalar(context.source), rows), _repeat(pa.scalar(context.run_id), rows), operation]
    names = [*batch.schema.names, INGESTED_AT, SOURCE, RUN_ID, OPERATION]
    return pa.RecordBatch.from_arrays(columns, names=names)


def metadata_fields() -> list[pa.Field]:
    import pyarrow as pa

    return [
        pa.field(INGESTED_AT, pa.timestamp("us", tz="UTC")),
        pa.field(SOURCE, pa.string()),
        pa.field(RUN_ID, pa.string()),
        pa.field(OPERATION, pa.string()),
    ]


def _repeat(value: pa.Scalar, rows: int) -> pa.Array:
    import pyarrow as pa

    return pa.repeat(value, rows) if rows else pa.array([], type=value.type)
