"""Partner file drops: two logistics partners without an API drop daily shipment manifests into the lake's inbox.

For a day, :func:`write_file_drops` writes the shipment changes of that day (each shipment belongs to exactly one
channel: the API carriers, ``oceanic`` or ``skyfreight``) to::

    <inbox_dir>/oceanic/shipments/<YYYY-MM-DD>/oceanic_shipments_<YYYYMMDD>.csv
    <inbox_dir>/skyfreight/shipments/<YYYY-MM-DD>/skyfreight_shipments_<YYYYMMDD>.parquet

``inbox_dir`` is a local folder or any fsspec URL (``s3://bucket/prefix/inbox``). A manifest is written even on a day
without shipments (header or schema only), so its arrival alone tells the day is complete. Files are written under a
temporary name and then renamed, so a reader listing ``*.csv``/``*.parquet`` never sees a half-written one.

Columns (:data:`SHIPMENT_FILE_COLUMNS`): the API's shipment fields plus ``partner``.

* ``oceanic`` (CSV, comma-separated, UTF-8, header): timestamps ``YYYY-MM-DD HH:MM:SS`` in UTC, ``eta`` as
  ``YYYY-MM-DD``, empty fields for nulls.
* ``skyfreight`` (Parquet): ``shipment_id``/``order_id`` int64, timestamps ``timestamp[us, tz=UTC]``, ``eta`` date32,
  the rest strings.

``bad_row`` appends one broken row (after the real ones) for tests: ``"missing_required"`` (no ``shipment_id``) or
``"bad_date"`` (CSV: an unparseable ``shipped_at``; Parquet, which cannot hold unparseable values in a typed column: a
``shipped_at`` in 1900, far outside any plausible range).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from medalflow_demo.world import World

log = logging.getLogger(__name__)

FILE_PARTNERS = ("oceanic", "skyfreight")
PARTNER_FORMATS = {"oceanic": "csv", "skyfreight": "parquet"}
SHIPMENT_FILE_COLUMNS = (
    "shipment_id",
    "order_id",
    "carrier",
    "status",
    "origin_port",
    "destination_port",
    "shipped_at",
    "eta",
    "delivered_at",
    "updated_at",
    "partner",
)
BAD_ROW_KINDS = ("missing_required", "bad_date")
_CSV_TIMESTAMP = "%Y-%m-%d %H:%M:%S"
_IMPLAUSIBLE_TIMESTAMP = datetime(1900, 1, 1)


def drop_path(inbox_dir: str, partner: str, day: date) -> str:
    """Where a partner's manifest of ``day`` lands (a path or URL under ``inbox_dir``)."""
    extension = PARTNER_FORMATS[partner]
    return f"{inbox_dir.rstrip('/')}/{partner}/shipments/{day:%Y-%m-%d}/{partner}_shipments_{day:%Y%m%d}.{extension}"


def manifest_rows(world: World, day: date, partner: str, bad_row: str | None = None) -> list[dict[str, Any]]:
    """The rows of a partner's manifest for ``day``, in timestamp order, optionally with a broken row appended."""
    if partner not in FILE_PARTNERS:
        raise ValueError(f"unknown file partner {partner!r}; expected one of {FILE_PARTNERS}")
    records = sorted(world.shipment_changes(day, partner), key=lambda r: (r["updated_at"], r["shipment_id"]))
    rows = [{**record, "partner": partner} for record in records]
    if bad_row is not None:
        rows.append(_broken_row(rows, day, partner, bad_row))
    return rows


def _broken_row(rows: list[dict[str, Any]], day: date, partner: str, kind: str) -> dict[str, Any]:
    if kind not in BAD_ROW_KINDS:
        raise ValueError(f"unknown bad_row kind {kind!r}; expected one of {BAD_ROW_KINDS}")
    template = rows[0] if rows else {
        "shipment_id": 5, "order_id": 0, "carrier": "unknown", "status": "booked", "origin_port": "CNSHA",
        "destination_port": "BRSSZ", "shipped_at": None, "eta": day, "delivered_at": None,
        "updated_at": datetime.combine(day, datetime.min.time()), "partner": partner,
    }  # fmt: skip
    broken = dict(template)
    if kind == "missing_required":
        broken["shipment_id"] = None
    else:
        broken["shipped_at"] = "2026-13-45 25:61:00" if PARTNER_FORMATS[partner] == "csv" else _IMPLAUSIBLE_TIMESTAMP
    return broken


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(_CSV_TIMESTAMP)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _csv_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SHIPMENT_FILE_COLUMNS)
    writer.writerows([_csv_value(row[column]) for column in SHIPMENT_FILE_COLUMNS] for row in rows)
    return buffer.getvalue().encode("utf-8")


def _parquet_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    timestamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema([
        pa.field("shipment_id", pa.int64()),
        pa.field("order_id", pa.int64()),
        pa.field("carrier", pa.string()),
        pa.field("status", pa.string()),
        pa.field("origin_port", pa.string()),
        pa.field("destination_port", pa.string()),
        pa.field("shipped_at", timestamp),
        pa.field("eta", pa.date32()),
        pa.field("delivered_at", timestamp),
        pa.field("updated_at", timestamp),
        pa.field("partner", pa.string()),
    ])  # fmt: skip

    def utc(value: Any) -> Any:
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value

    columns = {name: [utc(row[name]) for row in rows] for name in SHIPMENT_FILE_COLUMNS}
    table = pa.table(columns, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    return buffer.getvalue()


def write_file_drops(
    world: World,
    day: date,
    inbox_dir: str,
    *,
    partners: Sequence[str] = FILE_PARTNERS,
    bad_row: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Write each partner's manifest of ``day`` under ``inbox_dir``; returns the written paths/URLs.

    Rewriting a day replaces its files with identical content (the world is deterministic).
    """
    from fsspec.core import url_to_fs

    inbox_dir = str(inbox_dir)
    fs, _root = url_to_fs(inbox_dir, skip_instance_cache=True, **(storage_options or {}))
    written = []
    for partner in partners:
        rows = manifest_rows(world, day, partner, bad_row)
        content = _csv_bytes(rows) if PARTNER_FORMATS[partner] == "csv" else _parquet_bytes(rows)
        target = drop_path(inbox_dir, partner, day)
        _fs, target_path = url_to_fs(target, skip_instance_cache=True, **(storage_options or {}))
        fs.makedirs(target_path.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{target_path}.tmp"
        fs.pipe_file(temporary, content)
        fs.mv(temporary, target_path)
        written.append(target)
        log.info("file drop %s: %d rows -> %s", partner, len(rows), target)
    return written
