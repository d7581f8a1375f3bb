"""One entity's extraction: its pages' records, checked against the interval, typed, into a raw partition."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from medalflow.extract.metadata import IngestionContext, metadata_fields, with_metadata
from medalflow.extract.quarantine import Quarantine, RecordConverter, RecordProblem
from medalflow.extract.rest.client import ApiError, MalformedPageError, RestClient
from medalflow.extract.rest.paginate import Pages
from medalflow.extract.rest.records import Flattener, cursor_moment, dotted, interval_query, needs_client_filter, select
from medalflow.extract.rest.spec import EffectiveEndpoint, IncrementalSpec, RestEntity
from medalflow.extract.schema import SchemaError
from medalflow.lake import RAW_ZONE, Lake, PartitionWriter, partition_path

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


@dataclass
class _Tally:
    """What one entity's extraction saw: the source's own totals, the pages, the records of other intervals."""

    source_total: int | None = 0  # None once an endpoint reports no total
    pages: int = 0
    unparseable_pages: int = 0
    out_of_interval: int = 0


class _BatchBuilder:
    """Typed rows into Arrow record batches of at most ``batch_rows``; undeclared columns widen the schema."""

    def __init__(self, entity: RestEntity, context: IngestionContext, batch_rows: int) -> None:
        self.entity, self.context, self.batch_rows = entity, context, batch_rows
        self.extra_columns: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def file_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([*self.entity.schema.arrow_schema(self.extra_columns), *metadata_fields()])

    def widen(self, new_columns: list[str]) -> Iterator[pa.RecordBatch]:
        """Flush what has the old columns, then accept the new ones."""
        yield from self.flush()
        self.extra_columns += new_columns

    def add(self, row: dict[str, Any]) -> Iterator[pa.RecordBatch]:
        self.rows.append(row)
        if len(self.rows) >= self.batch_rows:
            yield from self.flush()

    def flush(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        if not self.rows:
            return
        data_schema = self.entity.schema.arrow_schema(self.extra_columns)
        batch = pa.RecordBatch.from_pylist(self.rows, schema=data_schema)
        self.rows = []
        yield with_metadata(batch, self.context, "U")


class _IntervalCheck:
    """Places each record by its ``cursor_field`` in ``[start, end)``, or not."""

    def __init__(self, spec: IncrementalSpec, start: datetime, end: datetime) -> None:
        self.spec, self.start, self.end = spec, start, end

    def problem(self, record: Mapping[str, Any]) -> str | None:
        """None when the record belongs to the interval; otherwise why not."""
        value = select(record, self.spec.cursor_field)
        moment = cursor_moment(value)
        if moment is None:
            return f"cursor field {dotted(self.spec.cursor_field)} is {value!r}, not a date, datetime or epoch"
        if self.start <= moment < self.end:
            return None
        return (
            f"{dotted(self.spec.cursor_field)} {value!r} is outside [{self.start.isoformat()}, {self.end.isoformat()})"
        )

    def outside(self, record: Mapping[str, Any]) -> bool:
        moment = cursor_moment(select(record, self.spec.cursor_field))
        return moment is not None and not self.start <= moment < self.end


def write_parts(partition: PartitionWriter, batches: Iterator[pa.RecordBatch], empty_schema: pa.Schema) -> int:
    """Batches into ``part-NNNNN.parquet`` files, a new one each time the schema changes; a zero-row file when
    there are no batches (an empty interval is still a replaced interval)."""
    rows, parts = 0, 0
    for parts, (schema, group) in enumerate(itertools.groupby(batches, key=lambda batch: batch.schema), start=1):
        rows += partition.write_batches(f"part-{parts - 1:05d}.parquet", schema, group)
    if parts == 0:
        partition.write_batches("part-00000.parquet", empty_schema, [])
    return rows


def _requests(entity: RestEntity, endpoint: EffectiveEndpoint, parent_keys: list[Any] | None, source: str):
    """(path, params) of each request series: one, or one per parent key with the placeholder filled in."""
    if not entity.parent:
        return [(entity.path, dict(endpoint.params))]
    if parent_keys is None:
        raise ValueError(f"{source}.{entity.name} is fetched per {entity.parent}: pass parent_keys")
    placeholder = entity.placeholder
    series = []
    for key in parent_keys:
        path = entity.path.replace(placeholder, quote(str(key), safe=""))
        params = {
            name: str(value).replace(placeholder, str(key)) if isinstance(value, str) else value
            for name, value in endpoint.params.items()
        }
        series.append((path, params))
    return series


def extract_entity(
    client: RestClient,
    entity: RestEntity,
    lake: Lake,
    start: datetime,
    end: datetime,
    context: IngestionContext,
    parent_keys: list[Any] | None = None,
) -> dict[str, Any]:
    """Replace the raw partition of ``start``'s date with the entity's records (of [start, end) for an
    incremental entity; for a child entity, of every key in ``parent_keys``)."""
    settings = client.settings
    endpoint = entity.effective(settings)
    auth = client.authenticator(endpoint.auth)
    headers = {**endpoint.headers}
    day = start.date()
    relative = partition_path(RAW_ZONE, context.source, entity.name, day)
    converter = RecordConverter(entity.schema, entity.key, settings.limits)
    builder = _BatchBuilder(entity, context, settings.batch_rows)
    flattener = Flattener(entity.column_paths)
    tally = _Tally()
    check = None
    series = _requests(entity, endpoint, parent_keys, context.source)
    if endpoint.incremental:
        incremental = endpoint.incremental
        query = interval_query(incremental, start, end)
        series = [(path, {**params, **query}) for path, params in series]
        if incremental.cursor_field:
            check = _IntervalCheck(incremental, start, end)
        elif needs_client_filter(incremental, start, end):
            raise SchemaError(
                f"{context.source}.{entity.name}: the interval [{start.isoformat()}, {end.isoformat()}) cannot be "
                f"asked for exactly with incremental.format {incremental.format!r}; declare incremental.cursor_field "
                "so the records outside it are filtered"
            )

    with Quarantine(lake, context.source, entity.name, day, context.run_id) as quarantine:

        def batches() -> Iterator[pa.RecordBatch]:
            for path, params in series:
                pages = Pages(client, path, params, endpoint.pagination, endpoint.data_selector, auth, headers)
                yield from _endpoint_batches(pages, entity, flattener, converter, builder, quarantine, tally, check)
            yield from builder.flush()

        with lake.replace_partition(relative, context.run_id) as partition:
            rows = write_parts(partition, batches(), builder.file_schema())
            quarantine_url = quarantine.publish()
            accounted = rows + quarantine.records + tally.out_of_interval
            if tally.source_total is not None and accounted != tally.source_total:
                raise ApiError(
                    f"{context.source}.{entity.name}: the API reported {tally.source_total} record(s) but {rows} "
                    f"were extracted, {quarantine.records} quarantined and {tally.out_of_interval} belong to other "
                    "intervals; did the data change while paging?"
                )
            quarantine.check_ratio(rows, settings.limits.max_bad_ratio)
    if tally.out_of_interval:
        log.warning(
            "%s.%s: %s record(s) the API sent were outside [%s, %s) on %s and were left to their own interval's run",
            context.source,
            entity.name,
            tally.out_of_interval,
            start.isoformat(),
            end.isoformat(),
            dotted(check.spec.cursor_field) if check else "?",
        )
    log.info(
        "%s.%s: %s record(s) in %s page(s) of %s request series -> %s (%s quarantined; the API reported %s)",
        context.source,
        entity.name,
        rows,
        tally.pages,
        len(series),
        lake.url(relative),
        quarantine.records,
        "no total" if tally.source_total is None else tally.source_total,
    )
    return {
        "entity": entity.name,
        "rows": rows,
        "quarantined": quarantine.records,
        "out_of_interval": tally.out_of_interval,
        "source_total": tally.source_total,
        "pages": tally.pages,
        "partition": lake.url(relative),
        "quarantine": quarantine_url,
        "new_columns": builder.extra_columns,
    }


def _endpoint_batches(
    pages: Pages,
    entity: RestEntity,
    flattener: Flattener,
    converter: RecordConverter,
    builder: _BatchBuilder,
    quarantine: Quarantine,
    tally: _Tally,
    check: _IntervalCheck | None,
) -> Iterator[pa.RecordBatch]:
    unparseable: list[tuple[int, str, MalformedPageError]] = []
    for page in pages:
        tally.pages += 1
        if isinstance(page.records, MalformedPageError):
            unparseable.append((page.number, page.where, page.records))
            continue
        records = page.records
        delivered = flattener.delivered(records)
        if records:
            try:
                entity.schema.check_required(delivered, page.where)
            except SchemaError as missing:
                paths = [
                    f"{name} from {dotted(path)}" for name, path in flattener.nested.items() if name not in delivered
                ]
                if not paths:
                    raise
                raise SchemaError(f"{missing} (nested: {', '.join(paths)})") from None
        new_columns = [name for name in entity.schema.extra_columns(delivered) if name not in builder.extra_columns]
        if new_columns:
            surprising = [name for name in new_columns if name not in flattener.consumed_roots]
            if surprising:
                log.warning("%s: new field(s) %s pass through as text", page.where, ", ".join(surprising))
            yield from builder.widen(new_columns)
        for position, record in enumerate(records, start=1):
            where = f"{page.where}, record {position}"
            if not isinstance(record, Mapping):
                quarantine.add(location=where, reason="not a JSON object", record=record)
                continue
            if check is not None and (problem := check.problem(record)):
                if check.outside(record) and check.spec.out_of_interval == "drop":
                    tally.out_of_interval += 1
                else:
                    quarantine.add(location=where, field=dotted(check.spec.cursor_field), reason=problem, record=record)
                continue
            flat = flattener.flat(record)
            row = converter.convert(flat, builder.extra_columns)
            if isinstance(row, RecordProblem):
                location = f"{where} ({converter.describe(flat)})"
                quarantine.add(location=location, field=row.field, reason=row.reason, record=record)
                continue
            yield from builder.add(row)
    if tally.source_total is not None:
        tally.source_total = None if pages.total is None else tally.source_total + pages.total
    for number, where, malformed in unparseable:
        held = pages.records_on(number)
        tally.unparseable_pages += 1
        quarantine.add(
            location=where,
            reason=f"the body is not JSON ({held} record(s) lost with it): {malformed}",
            record=malformed.text,
            records=held,
        )


def read_parent_keys(lake: Lake, source: str, entity: RestEntity, day: date) -> list[Any]:
    """The values of the parent's field (``{resources.<parent>.<field>}``) in its raw partition of ``day``, sorted
    and distinct: what the children are fetched for."""
    import pyarrow.parquet as pq

    relative = partition_path(RAW_ZONE, source, entity.parent, day)
    files = [path for path in lake.list_files(relative) if path.endswith(".parquet")]
    if not files:
        raise SchemaError(f"{source}.{entity.name} needs {source}.{entity.parent} of {day}, which is not in the lake")
    keys: list[Any] = []
    for path in files:
        with lake.fs.open(lake.path(path), "rb") as handle:
            table = pq.read_table(handle)
        if entity.parent_key not in table.column_names:
            raise SchemaError(
                f"{source}.{entity.name}: path refers to {{resources.{entity.parent}.{entity.parent_key}}}, but "
                f"{entity.parent} has no column {entity.parent_key!r}; it has {table.column_names}"
            )
        keys += table.column(entity.parent_key).to_pylist()
    return sorted({key for key in keys if key is not None})
