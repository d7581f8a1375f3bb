"""A raw zone for the dbt tests, built from the demo world exactly as docs/raw-zone.md specifies.

* **ERP** (real path): each day's changes are applied to a SQLite ERP (``medalflow_demo.erp``) and the real
  ``medalflow.extract.sql.extract_changes`` lands every entity of ``dags/config/sources/erp.yml``.
* **Partner API, forecast API, file drops** (stand-in): the REST and file extractors are not written yet (issue 3), so
  :func:`write_partner_day`, :func:`write_file_drops_day` and :func:`write_forecast_week` write what they will
  write, straight from the world: the documented columns, the metadata columns (``_op='U'``: these sources send
  current state), one partition per ``ingestion_date`` replaced through ``Lake.replace_partition``. Swap them for the
  extractors when those land; nothing in dbt depends on who wrote the files.

Everything is deterministic (the world, the run ids, ``_ingested_at``), so two lakes built from the same arguments
hold the same records and a rebuilt day is the same partition.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from medalflow.extract.config import load_source_group
from medalflow.extract.metadata import IngestionContext, metadata_fields, with_metadata
from medalflow.extract.sql import DatabaseLocation, extract_changes
from medalflow.lake import RAW_ZONE, Lake, partition_path
from medalflow_demo import erp
from medalflow_demo.world import SHIPMENT_CHANNELS, World

# The raw schemas of the stand-in datasets (docs/raw-zone.md); the extractors of issue 3 will declare the same in
# dags/config/sources/{partner,forecast,files}.yml.
_TS = pa.timestamp("us")
_MONEY = pa.decimal128(18, 2)
PARTNER_SCHEMAS = {
    "payments": pa.schema(
        [
            ("payment_id", pa.int64()),
            ("order_id", pa.int64()),
            ("direction", pa.string()),
            ("amount", _MONEY),
            ("currency", pa.string()),
            ("method", pa.string()),
            ("status", pa.string()),
            ("paid_at", _TS),
            ("updated_at", _TS),
        ]
    ),
    "fx_rates": pa.schema(
        [
            ("rate_date", pa.date32()),
            ("base_currency", pa.string()),
            ("quote_currency", pa.string()),
            ("rate", pa.decimal128(18, 4)),
            ("published_at", _TS),
        ]
    ),
    "shipments": pa.schema(
        [
            ("shipment_id", pa.int64()),
            ("order_id", pa.int64()),
            ("carrier", pa.string()),
            ("status", pa.string()),
            ("origin_port", pa.string()),
            ("destination_port", pa.string()),
            ("shipped_at", _TS),
            ("eta", pa.date32()),
            ("delivered_at", _TS),
            ("updated_at", _TS),
        ]
    ),
}
FILE_SHIPMENTS_SCHEMA = pa.schema([*PARTNER_SCHEMAS["shipments"], ("partner", pa.string()), ("_file", pa.string())])
FORECAST_SCHEMAS = {
    "projects": pa.schema(
        [("project_id", pa.int64()), ("name", pa.string()), ("owner", pa.string()), ("created_at", _TS)]
    ),
    "baselines": pa.schema([("project_id", pa.int64()), ("month", pa.date32()), ("amount_brl", _MONEY)]),
    "scenarios": pa.schema(
        [("project_id", pa.int64()), ("scenario", pa.string()), ("month", pa.date32()), ("amount_brl", _MONEY)]
    ),
}
FILE_PARTNERS = tuple(channel for channel in SHIPMENT_CHANNELS if channel != "api")  # oceanic, skyfreight
FORECAST_WEEKDAY = 6  # Sundays (extract_forecast runs Sundays 02:00)


def context(source: str, day: date) -> IngestionContext:
    """Deterministic ingestion metadata: the run of the day's interval, ingested half an hour after it closed."""
    ingested_at = datetime.combine(day + timedelta(days=1), time(0, 30), UTC)
    return IngestionContext(
        source=source, run_id=f"scheduled__{day.isoformat()}T00:00:00+00:00", ingested_at=ingested_at
    )


def write_records(lake: Lake, source: str, entity: str, day: date, schema: pa.Schema, records: list[dict]) -> int:
    """Replace one raw partition with ``records`` (zero rows still writes the schema), tagged ``_op='U'``."""
    ingestion = context(source, day)
    batch = pa.RecordBatch.from_pylist(records, schema=schema)
    tagged = with_metadata(batch, ingestion, "U")
    file_schema = pa.schema([*schema, *metadata_fields()])
    relative = partition_path(RAW_ZONE, source, entity, day)
    with lake.replace_partition(relative, ingestion.run_id) as partition:
        return partition.write_batches("part-00000.parquet", file_schema, [tagged])


def write_partner_day(lake: Lake, world: World, day: date) -> None:
    """Stand-in for extract_partner_api: payments, FX rates and the API channel's shipments changed on ``day``."""
    write_records(lake, "partner", "payments", day, PARTNER_SCHEMAS["payments"], world.payment_changes(day))
    write_records(lake, "partner", "fx_rates", day, PARTNER_SCHEMAS["fx_rates"], world.fx_rates(day))
    write_records(lake, "partner", "shipments", day, PARTNER_SCHEMAS["shipments"], world.shipment_changes(day, "api"))


def write_file_drops_day(lake: Lake, world: World, day: date) -> None:
    """Stand-in for extract_file_drops: both partners' shipment files of ``day`` (CSV and Parquet land as Parquet).

    ``_file`` is the original's lake-relative inbox path."""
    records = []
    for partner in FILE_PARTNERS:
        suffix = "csv" if partner == "oceanic" else "parquet"
        inbox = posixpath.join("inbox", partner, "shipments", day.isoformat(), f"shipments.{suffix}")
        records += [{**record, "partner": partner, "_file": inbox} for record in world.shipment_changes(day, partner)]
    write_records(lake, "files", "shipments", day, FILE_SHIPMENTS_SCHEMA, records)


def write_forecast_week(lake: Lake, world: World, day: date) -> None:
    """Stand-in for extract_forecast: the weekly snapshot of projects, baselines and scenarios."""
    projects = world.forecast_projects()
    ids = [project["project_id"] for project in projects]
    write_records(lake, "forecast", "projects", day, FORECAST_SCHEMAS["projects"], projects)
    baselines = [row for project_id in ids for row in world.forecast_baseline(project_id)]
    write_records(lake, "forecast", "baselines", day, FORECAST_SCHEMAS["baselines"], baselines)
    scenarios = [row for project_id in ids for row in world.forecast_scenarios(project_id)]
    write_records(lake, "forecast", "scenarios", day, FORECAST_SCHEMAS["scenarios"], scenarios)


@dataclass
class RawLakeBuilder:
    """Lands the raw zone day by day: the ERP through real CDC extraction, the other sources through the stand-ins."""

    world: World
    lake_uri: str
    erp_path: Path

    def __post_init__(self) -> None:
        self.lake = Lake(self.lake_uri)
        self.engine = erp.make_engine(f"sqlite:///{self.erp_path}")
        erp.create_schema(self.engine)
        self.location = DatabaseLocation("sqlite", str(self.erp_path))
        self.erp_entities = load_source_group("erp").entities

    def land_erp_day(self, day: date) -> None:
        """The ERP's changes of ``day`` happen, then extraction lands each entity's changes (as extract_erp does)."""
        erp.apply_day(self.engine, self.world, day)
        start = datetime.combine(day, time(), UTC)
        for entity in self.erp_entities.values():
            extract_changes(self.location, entity, self.lake, start, start + timedelta(days=1), context("erp", day))

    def land_day(self, day: date) -> None:
        """Every source's data of ``day``; the forecast's on Sundays."""
        self.land_erp_day(day)
        write_partner_day(self.lake, self.world, day)
        write_file_drops_day(self.lake, self.world, day)
        if day.weekday() == FORECAST_WEEKDAY:
            write_forecast_week(self.lake, self.world, day)

    def land(self, days: Iterable[date]) -> None:
        for day in days:
            self.land_day(day)

    def erp_table(self, name: str) -> list[dict[str, Any]]:
        """The current rows of an ERP table (the independent truth the tests compare with)."""
        from sqlalchemy import select

        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(erp.TABLES[name]))]

    def close(self) -> None:
        self.engine.dispose()


def day_range(first: date, count: int) -> Sequence[date]:
    return [first + timedelta(days=offset) for offset in range(count)]
