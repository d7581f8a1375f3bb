"""Extraction of partner file drops from the lake's inbox into the raw zone.

Partners without an API drop a file a day (CSV, Parquet or JSON lines) under
``<lake>/inbox/<partner>/<entity>/<YYYY-MM-DD>/``. Each partner's format is declared with its options (a CSV's
delimiter, encoding and whether it has a header: without one, the declared column order names the columns; see
:func:`parse_file_entity`). For the run's interval day ``D``, every file of every configured partner in that day's
folder is:

1. **validated**: the declared columns must all be there (else the run fails naming source, entity, column and
   file); each row is typed by the declared schema, and a row that does not fit (an unparseable date, a null key, a
   date far outside any plausible range, a wrong column count) is quarantined with the file and line;
2. **converted** to Parquet (CSV is read in blocks by pyarrow, Parquet in row batches, JSON lines a line at a time:
   memory stays bounded) with the
   metadata columns (``_op = 'U'``), ``partner`` (from the inbox folder: the partner who dropped it) and ``_file``
   (the original's URL), as ``raw/<source>/<entity>/ingestion_date=D/<partner>-<original name>.parquet``;
3. **kept**: the inbox is only read, never changed, so the originals stay as the partner sent them.

The day's partition is replaced as a whole (:meth:`Lake.replace_partition`): rerunning a day yields exactly the same
objects, and a file that arrived late is picked up by rerunning its day. Each partner is expected to drop a file
every day (``require_daily_file``), even an empty one, so a missing file fails the run (and Airflow retries later)
instead of landing a silently incomplete day.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from medalflow.extract.metadata import METADATA_COLUMNS, IngestionContext, metadata_fields, with_metadata
from medalflow.extract.quarantine import Limits, Quarantine, RecordConverter, RecordProblem
from medalflow.extract.schema import DeclaredSchema, SchemaError, parse_declared_entity
from medalflow.lake import RAW_ZONE, Lake, partition_path

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

PARTNER_COLUMN = "partner"
FILE_COLUMN = "_file"
FORMATS = ("csv", "parquet", "jsonl")
BATCH_ROWS = 10_000


class FileDropError(RuntimeError):
    """A file drop is missing or cannot be read at all."""


@dataclass(frozen=True)
class FileFormat:
    """How one partner writes its files: the format, and for CSV its delimiter, encoding and header.

    ``encoding`` (any Python codec name: ``utf-8``, ``latin-1``, ``cp1252``...) applies to CSV and JSON lines;
    without a ``header`` the CSV's columns are the entity's declared columns, in their declared order.
    """

    kind: str = "csv"  # one of FORMATS
    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True

    @property
    def extension(self) -> str:
        return f".{self.kind}"


@dataclass(frozen=True)
class FileEntity:
    """One kind of file partners drop, as declared in the source config."""

    name: str
    key: tuple[str, ...]
    schema: DeclaredSchema
    formats: Mapping[str, FileFormat]  # partner -> how it writes its files
    inbox: str = "inbox/{partner}/{entity}/{day}"  # lake-relative folder of one partner's files of a day
    require_daily_file: bool = True

    @property
    def partners(self) -> dict[str, str]:
        """partner -> format name."""
        return {partner: file_format.kind for partner, file_format in self.formats.items()}

    def inbox_folder(self, partner: str, day: date) -> str:
        return self.inbox.format(partner=partner, entity=self.name, day=day.isoformat())


_FILE_KEYS = {"key", "columns", "partners", "inbox", "require_daily_file", "format", "delimiter", "encoding", "header"}
_FORMAT_KEYS = ("format", "delimiter", "encoding", "header")


def parse_file_entity(source: str, name: str, spec: Mapping[str, Any]) -> FileEntity:
    """An entity of a ``kind: files`` source group from its YAML mapping.

    ``key`` (a column or a list), ``columns`` (name: type) and ``partners`` are required. Each partner is either a
    format name (``oceanic: csv``) or a mapping of ``format`` and its options (``delimiter``, ``encoding``,
    ``header``); the same options at the entity level are every partner's defaults. ``inbox`` (a folder pattern
    with ``{partner}``, ``{entity}``, ``{day}``) and ``require_daily_file`` (default true) are optional.
    A :class:`SchemaError` names the key at fault first (``partners.oceanic.delimiter: ...``).
    """
    schema, keys = parse_declared_entity("files", source, name, spec, _FILE_KEYS, ("key", "columns", "partners"))
    defaults = _file_format("", {name: spec[name] for name in _FORMAT_KEYS if name in spec}, FileFormat())
    partners = spec["partners"]
    if not isinstance(partners, Mapping) or not partners:
        raise SchemaError("partners: expected a mapping of partner to its format (csv, parquet, jsonl)")
    formats = {}
    for partner, declared in partners.items():
        options = {"format": declared} if isinstance(declared, str) else declared
        if not isinstance(options, Mapping):
            raise SchemaError(f"partners.{partner}: expected a format name or a mapping with format and options")
        formats[str(partner)] = _file_format(f"partners.{partner}.", options, defaults)
    inbox = spec.get("inbox", FileEntity.inbox)
    try:
        inbox.format(partner="p", entity="e", day="d")
    except (KeyError, IndexError, ValueError, AttributeError):
        raise SchemaError(f"inbox: {inbox!r} may only use {{partner}}, {{entity}} and {{day}}") from None
    require_daily_file = spec.get("require_daily_file", True)
    if not isinstance(require_daily_file, bool):
        raise SchemaError(f"require_daily_file: expected true or false, got {require_daily_file!r}")
    return FileEntity(
        name=name,
        key=keys,
        schema=schema,
        formats=formats,
        inbox=inbox,
        require_daily_file=require_daily_file,
    )


def _file_format(path: str, options: Mapping[str, Any], defaults: FileFormat) -> FileFormat:
    unknown = sorted(set(options) - set(_FORMAT_KEYS))
    if unknown:
        raise SchemaError(f"{path}{unknown[0]}: unknown setting; a format takes {', '.join(_FORMAT_KEYS)}")
    kind = options.get("format", defaults.kind)
    if kind not in FORMATS:
        raise SchemaError(f"{path}format: {kind!r} is not one of {', '.join(FORMATS)}")
    delimiter = options.get("delimiter", defaults.delimiter)
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise SchemaError(f"{path}delimiter: {delimiter!r} must be one character (not a quote or newline)")
    encoding = options.get("encoding", defaults.encoding)
    try:
        codecs.lookup(str(encoding))
    except LookupError:
        raise SchemaError(f"{path}encoding: {encoding!r} is not a known encoding (utf-8, latin-1, cp1252...)") from None
    header = options.get("header", defaults.header)
    if not isinstance(header, bool):
        raise SchemaError(f"{path}header: expected true or false, got {header!r}")
    not_csv = sorted({"delimiter", "header"} & set(options))
    if kind != "csv" and not_csv:
        raise SchemaError(f"{path}{not_csv[0]}: only for format csv, not {kind}")
    if kind == "parquet" and "encoding" in options:
        raise SchemaError(f"{path}encoding: Parquet has no text encoding to declare")
    return FileFormat(kind=kind, delimiter=delimiter, encoding=str(encoding), header=header)


@dataclass
class _FileResult:
    path: str
    partner: str
    source_rows: int = 0
    rows: int = 0


def extract_file_drops(
    entity: FileEntity, lake: Lake, day: date, context: IngestionContext, limits: Limits | None = None
) -> dict[str, Any]:
    """Replace the raw partition of ``day`` with every partner's files of that day, validated and as Parquet."""
    limits = limits or Limits()
    drops = _find_drops(entity, lake, day)
    relative = partition_path(RAW_ZONE, context.source, entity.name, day)
    results: list[_FileResult] = []
    with (
        Quarantine(lake, context.source, entity.name, day, context.run_id) as quarantine,
        lake.replace_partition(relative, context.run_id) as partition,
    ):
        for partner, path in drops:
            result = _FileResult(path, partner)
            reader = _FileReader(entity, lake, partner, path, limits, quarantine, context, result)
            partition.write_batches(reader.output_name(), reader.file_schema(), reader.batches())
            results.append(result)
        if not drops:  # an interval with no files is still a replaced interval
            partition.write_batches("empty.parquet", _file_schema(entity, []), [])
        quarantine_url = quarantine.publish()
        quarantine.check_ratio(sum(result.rows for result in results), limits.max_bad_ratio)
    rows = sum(result.rows for result in results)
    log.info(
        "%s.%s: %s row(s) from %s file(s) -> %s (%s quarantined)",
        context.source,
        entity.name,
        rows,
        len(results),
        lake.url(relative),
        quarantine.records,
    )
    return {
        "entity": entity.name,
        "rows": rows,
        "quarantined": quarantine.records,
        "source_total": sum(result.source_rows for result in results),
        "files": [lake.url(result.path) for result in results],
        "partition": lake.url(relative),
        "quarantine": quarantine_url,
    }


def _find_drops(entity: FileEntity, lake: Lake, day: date) -> list[tuple[str, str]]:
    """(partner, lake-relative path) of each file dropped for ``day``, sorted; fails on a missing daily file."""
    drops = []
    for partner, file_format in sorted(entity.partners.items()):
        folder = entity.inbox_folder(partner, day)
        found = [path for path in lake.list_files(folder) if path.endswith(f".{file_format}")]
        ignored = [path for path in lake.list_files(folder) if path not in found]
        if ignored:  # temporary uploads, other formats: not what this partner sends
            log.warning("partner %s: ignoring %s (not .%s)", partner, ", ".join(ignored), file_format)
        if not found and entity.require_daily_file:
            raise FileDropError(
                f"no .{file_format} file from partner {partner!r} in {lake.url(folder)} for {day}: it drops one a "
                "day (require_daily_file), so it has not arrived yet or went elsewhere"
            )
        drops += [(partner, path) for path in found]
    return drops


def _file_schema(entity: FileEntity, extra_columns: list[str]) -> pa.Schema:
    import pyarrow as pa

    declared = entity.schema.arrow_schema()
    extras = [pa.field(name, pa.string()) for name in extra_columns]
    provenance = [pa.field(PARTNER_COLUMN, pa.string()), pa.field(FILE_COLUMN, pa.string())]
    return pa.schema([*declared, *provenance, *extras, *metadata_fields()])


class _FileReader:
    """Reads one dropped file as typed record batches, quarantining the rows that do not fit."""

    def __init__(
        self,
        entity: FileEntity,
        lake: Lake,
        partner: str,
        path: str,
        limits: Limits,
        quarantine: Quarantine,
        context: IngestionContext,
        result: _FileResult,
    ) -> None:
        self.entity, self.lake, self.partner, self.path = entity, lake, partner, path
        self.quarantine, self.context, self.result = quarantine, context, result
        self.layout = entity.formats[partner]
        self.file_format = self.layout.kind
        self.name = posixpath.basename(path)
        self.url = lake.url(path)
        self.converter = RecordConverter(entity.schema, entity.key, limits, empty_is_null=self.file_format == "csv")
        try:
            self.columns = self._columns()
        except UnicodeDecodeError as error:
            raise self._unreadable(error) from None
        where = f"file {self.url}"
        entity.schema.check_required([name for name in self.columns if name != PARTNER_COLUMN], where)
        self.extra_columns = [
            name for name in entity.schema.extra_columns(self.columns) if name not in {PARTNER_COLUMN, FILE_COLUMN}
        ]
        if self.extra_columns:
            log.warning("%s: new column(s) %s pass through as text", where, ", ".join(self.extra_columns))

    def output_name(self) -> str:
        stem = self.name.rsplit(".", 1)[0]
        return f"{self.partner}-{stem}.parquet"

    def file_schema(self) -> pa.Schema:
        return _file_schema(self.entity, self.extra_columns)

    def _columns(self) -> list[str]:
        """The file's columns: Parquet's schema, the CSV header (the declared columns when it has none), or every
        key the JSON lines' objects use, in first-seen order (a first pass over the file: keys only in memory)."""
        import pyarrow.parquet as pq

        if self.file_format == "csv" and not self.layout.header:
            return list(self.entity.schema.columns)
        with self.lake.fs.open(self.lake.path(self.path), "rb") as handle:
            if self.file_format == "parquet":
                return pq.ParquetFile(handle).schema_arrow.names
            text = io.TextIOWrapper(handle, encoding=_python_encoding(self.layout.encoding), newline="")
            if self.file_format == "csv":
                return next(csv.reader([text.readline()], delimiter=self.layout.delimiter), [])
            seen: dict[str, None] = {}
            for line in text:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # quarantined, with its line, when the rows are read
                if isinstance(record, dict):
                    seen.update(dict.fromkeys(record))
            return list(seen)

    def _unreadable(self, error: Exception) -> FileDropError:
        if isinstance(error, UnicodeDecodeError) or "utf8" in str(error).lower().replace("-", ""):
            return FileDropError(
                f"file {self.url} from partner {self.partner!r} is not {self.layout.encoding} text ({error}): declare "
                f"the encoding it is written in (encoding: latin-1, cp1252...) for this partner in the source config"
            )
        return FileDropError(f"file {self.url} cannot be read as {self.file_format}: {error}")

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        data_schema = pa.schema([field for field in self.file_schema() if field.name not in METADATA_COLUMNS])
        rows: list[dict[str, Any]] = []
        for location, record in self._records():
            self.result.source_rows += 1
            row = self.converter.convert(record, self.extra_columns)
            if isinstance(row, RecordProblem):
                self.quarantine.add(
                    location=f"{location} ({self.converter.describe(record)})",
                    field=row.field,
                    reason=row.reason,
                    record=record,
                )
                continue
            sent_by = record.get(PARTNER_COLUMN)
            if sent_by not in (None, "", self.partner):
                reason = f"says partner {sent_by!r} in a file from {self.partner!r}'s inbox"
                self.quarantine.add(location=location, field=PARTNER_COLUMN, reason=reason, record=record)
                continue
            rows.append({**row, PARTNER_COLUMN: self.partner, FILE_COLUMN: self.url})
            if len(rows) >= BATCH_ROWS:
                yield self._batch(rows, data_schema)
                rows = []
        if rows:
            yield self._batch(rows, data_schema)

    def _batch(self, rows: list[dict[str, Any]], data_schema: pa.Schema) -> pa.RecordBatch:
        import pyarrow as pa

        self.result.rows += len(rows)
        return with_metadata(pa.RecordBatch.from_pylist(rows, schema=data_schema), self.context, "U")

    def _records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(where, record) for each row: ``file <url>, line N`` for CSV, ``row N`` for Parquet."""
        import pyarrow as pa

        try:
            with self.lake.fs.open(self.lake.path(self.path), "rb") as handle:
                if self.file_format == "parquet":
                    yield from self._parquet_records(handle)
                elif self.file_format == "jsonl":
                    yield from self._jsonl_records(handle)
                else:
                    yield from self._csv_records(handle)
        except (pa.ArrowInvalid, UnicodeDecodeError) as unreadable:
            raise self._unreadable(unreadable) from unreadable

    def _jsonl_records(self, handle: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """One JSON object a line; a line that is not one is quarantined with its number (blank lines are skipped)."""
        text = io.TextIOWrapper(handle, encoding=_python_encoding(self.layout.encoding), newline="")
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            location = f"file {self.url}, line {number}"
            try:
                record = json.loads(line)
            except ValueError as error:
                self.result.source_rows += 1
                self.quarantine.add(location=location, reason=f"not JSON: {error}", record=line.rstrip("\r\n"))
                continue
            if not isinstance(record, dict):
                self.result.source_rows += 1
                reason = f"a JSON {type(record).__name__}, not an object"
                self.quarantine.add(location=location, reason=reason, record=line.rstrip("\r\n"))
                continue
            yield location, record

    def _parquet_records(self, handle: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        import pyarrow.parquet as pq

        number = 0
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS):
            for record in batch.to_pylist():
                number += 1
                yield f"file {self.url}, row {number}", record

    def _csv_records(self, handle: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        import pyarrow as pa
        from pyarrow import csv as pa_csv

        invalid: list[Any] = []

        def keep_invalid(row: Any) -> str:
            invalid.append(row)  # quarantined below, with its line: never dropped
            return "skip"

        layout = self.layout
        reader = pa_csv.open_csv(
            handle,
            read_options=pa_csv.ReadOptions(
                block_size=4 * 1024 * 1024,
                use_threads=False,
                # pyarrow decodes UTF-8 (and skips a byte-order mark) natively; other codecs go through Python's.
                encoding="utf8" if codecs.lookup(layout.encoding).name == "utf-8" else layout.encoding,
                column_names=None if layout.header else self.columns,
            ),
            parse_options=pa_csv.ParseOptions(delimiter=layout.delimiter, invalid_row_handler=keep_invalid),
            # Everything as text: typing is the converter's job, so a bad value is one quarantined row, not a
            # failed file; "" stays "" and means null (CSV has nothing else).
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in self.columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        line = 1 if layout.header else 0  # one record per line (the partners' CSVs have no embedded newlines)
        invalid_lines: set[int] = set()
        for batch in reader:
            # The handler saw the block's invalid rows before the batch came out: skip their lines when numbering.
            invalid_lines |= self._quarantine_invalid(invalid)
            for record in batch.to_pylist():
                line += 1
                while line in invalid_lines:
                    line += 1
                yield f"file {self.url}, line {line}", record
        self._quarantine_invalid(invalid)

    def _quarantine_invalid(self, invalid: list[Any]) -> set[int]:
        """Quarantine the rows pyarrow could not split into the header's columns; returns their line numbers."""
        lines = set()
        for row in invalid:
            lines.add(row.number)
            self.result.source_rows += 1
            self.quarantine.add(
                location=f"file {self.url}, line {row.number}",
                reason=f"{row.actual_columns} field(s) where the file has {row.expected_columns} column(s)",
                record=row.text,
            )
        invalid.clear()
        return lines


def _python_encoding(encoding: str) -> str:
    """UTF-8 read as ``utf-8-sig``: a byte-order mark some spreadsheet exports put first is not part of the header."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
