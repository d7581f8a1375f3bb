"""The lake: a local folder or ``s3://bucket/prefix``, through the same code (fsspec).

Layout::

    <lake>/raw/<source>/<entity>/ingestion_date=YYYY-MM-DD/part-NNNNN.parquet
    <lake>/quarantine/<source>/<entity>/ingestion_date=YYYY-MM-DD/<run>.jsonl
    <lake>/_staging/<run>/...                  (never read by dbt)

A partition is replaced as a whole: files are written under ``_staging`` first and moved into place only when every
file of the interval is complete, then files the new run did not write are removed. A reader therefore never sees a
partial file, and rerunning an interval yields exactly the same objects. Success or failure, nothing stays under
``_staging``: a failed run lands nothing for its interval and leaves no folder behind.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from collections.abc import Generator, Iterable
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

RAW_ZONE = "raw"
QUARANTINE_ZONE = "quarantine"
STAGING_ZONE = "_staging"


def partition_path(zone: str, source: str, entity: str, ingestion_date: date) -> str:
    """The lake-relative folder of one source entity's interval."""
    return posixpath.join(zone, source, entity, f"ingestion_date={ingestion_date.isoformat()}")


class Lake:
    """A root URI plus the filesystem that serves it."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        from fsspec.core import url_to_fs

        self.uri = uri.rstrip("/")
        self.fs: AbstractFileSystem
        # A fresh filesystem object: fsspec's instance cache would reuse one bound to the endpoint and credentials
        # the environment had when it was first made (AWS_ENDPOINT_URL, a rotated session token).
        self.fs, self.root = url_to_fs(self.uri, skip_instance_cache=True, **(storage_options or {}))
        self.root = self.root.rstrip("/")

    def path(self, relative: str) -> str:
        """Filesystem path (no protocol) of a lake-relative path."""
        return posixpath.join(self.root, relative)

    def url(self, relative: str) -> str:
        """Full URI of a lake-relative path, as dbt and the Airflow Assets see it."""
        return posixpath.join(self.uri, relative)

    def list_files(self, relative: str) -> list[str]:
        """Lake-relative paths of the files under a folder, sorted; empty when the folder does not exist."""
        base = self.path(relative)
        # Other processes write the lake: a listing must see the store, not what this object saw before.
        self.fs.invalidate_cache(base)
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        return sorted(posixpath.relpath(path, self.root) for path in found)

    @contextmanager
    def replace_partition(self, relative: str, run_id: str) -> Generator[PartitionWriter, None, None]:
        """Stage the files of one partition, then swap them in; on error the old partition stays untouched."""
        staging = posixpath.join(STAGING_ZONE, _safe_name(run_id), uuid.uuid4().hex)
        writer = PartitionWriter(self, staging)
        try:
            yield writer
            self._publish(writer, relative)
        except BaseException:
            try:
                self._remove_staging(staging)
            except Exception:  # the run's own error is the one to report; the leftover is named in the log
                log.warning("could not remove the staging folder %s", self.url(staging), exc_info=True)
            raise
        self._remove_staging(staging)

    def _publish(self, writer: PartitionWriter, relative: str) -> None:
        target = self.path(relative)
        self.fs.makedirs(target, exist_ok=True)
        self.fs.invalidate_cache(target)
        for name in writer.names:
            self.fs.mv(self.path(posixpath.join(writer.staging, name)), posixpath.join(target, name))
        stale = [path for path in self.fs.find(target) if posixpath.basename(path) not in writer.names]
        for path in stale:
            self.fs.rm(path)
        log.info("published %s file(s) to %s (%s stale removed)", len(writer.names), self.url(relative), len(stale))

    def _remove_staging(self, staging: str) -> None:
        """Remove a partition's staging folder, then its run's folder and ``_staging`` itself once they are empty.

        Other tasks of the same run stage beside it at the same time: ``rmdir`` removes only an empty folder, and
        refuses (OSError) one that another writer is using, which stops the climb. On object stores there are no
        folders: once the files are gone nothing is left, and ``rmdir`` of a prefix raises, which stops it too.
        """
        path = self.path(staging)
        self.fs.invalidate_cache(path)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
        parent = posixpath.dirname(staging)
        while parent and parent != ".":
            try:
                self.fs.rmdir(self.path(parent))
            except OSError:
                break
            parent = posixpath.dirname(parent)
        self.fs.invalidate_cache(self.path(STAGING_ZONE))


class PartitionWriter:
    """Collects the files of one partition in the staging area."""

    def __init__(self, lake: Lake, staging: str) -> None:
        self.lake = lake
        self.staging = staging
        self.names: list[str] = []

    def _open(self, name: str):
        if name in self.names:
            raise ValueError(f"file {name!r} written twice in one partition")
        self.names.append(name)
        path = self.lake.path(posixpath.join(self.staging, name))
        for attempt in (1, 2, 3):
            try:
                self.lake.fs.makedirs(posixpath.dirname(path), exist_ok=True)
                break
            except FileNotFoundError:
                # Another task of the run removed the then-empty run folder between makedirs' steps: make it again.
                if attempt == 3:
                    raise
        return self.lake.fs.open(path, "wb")

    def write_batches(
        self, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch], **parquet_options: Any
    ) -> int:
        """Stream record batches into one Parquet file (one row group per batch: memory stays bounded).

        ``parquet_options`` go to ``pyarrow.parquet.ParquetWriter`` (zstd compression unless they say otherwise).
        """
        import pyarrow.parquet as pq

        rows = 0
        options = {"compression": "zstd", **parquet_options}
        with self._open(name) as handle, pq.ParquetWriter(handle, schema, **options) as parquet:
            for batch in batches:
                parquet.write_batch(batch)
                rows += batch.num_rows
        return rows

    def write_bytes(self, name: str, payload: bytes) -> None:
        with self._open(name) as handle:
            handle.write(payload)

    def copy_from(self, name: str, source_fs: AbstractFileSystem, source_path: str) -> None:
        """Copy a file from any filesystem into the partition, streaming."""
        with source_fs.open(source_path, "rb") as source, self._open(name) as target:
            while chunk := source.read(8 * 1024 * 1024):
                target.write(chunk)


def _safe_name(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value)
