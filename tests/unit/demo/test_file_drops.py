"""Partner file drops: paths, formats, content, channel split, broken rows, and S3 through fsspec."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medalflow_demo.files import SHIPMENT_FILE_COLUMNS, drop_path, manifest_rows, write_file_drops
from medalflow_demo.world import SHIPMENT_CHANNELS, DemoConfig, World, generate

START = date(2026, 1, 1)
DAY = date(2026, 1, 12)


@pytest.fixture(scope="module")
def world() -> World:
    return generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=date(2026, 3, 1)))


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_each_partner_drops_its_manifest_where_expected(world: World, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    written = write_file_drops(world, DAY, str(inbox))
    assert written == [
        f"{inbox}/oceanic/shipments/2026-01-12/oceanic_shipments_20260112.csv",
        f"{inbox}/skyfreight/shipments/2026-01-12/skyfreight_shipments_20260112.parquet",
    ]
    assert sorted(path.name for path in inbox.rglob("*") if path.is_file()) == [
        "oceanic_shipments_20260112.csv",
        "skyfreight_shipments_20260112.parquet",
    ], "no temporary files are left behind"


def test_csv_manifest_has_the_world_shipments(world: World, tmp_path: Path) -> None:
    (path,) = write_file_drops(world, DAY, str(tmp_path), partners=["oceanic"])
    with open(path, encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(SHIPMENT_FILE_COLUMNS)
    rows = read_csv(path)
    expected = world.shipment_changes(DAY, "oceanic")
    assert len(rows) == len(expected) > 5
    assert {(int(row["shipment_id"]), row["status"]) for row in rows} == {
        (shipment["shipment_id"], shipment["status"]) for shipment in expected
    }
    for row in rows:
        assert row["partner"] == "oceanic"
        assert row["carrier"] == "Oceanic Container Lines"
        updated_at = datetime.strptime(row["updated_at"], "%Y-%m-%d %H:%M:%S")
        assert updated_at.date() == DAY
        date.fromisoformat(row["eta"])
        assert (row["shipped_at"] == "") == (row["status"] == "booked")


def test_parquet_manifest_is_typed(world: World, tmp_path: Path) -> None:
    (path,) = write_file_drops(world, DAY, str(tmp_path), partners=["skyfreight"])
    table = pq.read_table(path)
    assert table.schema.names == list(SHIPMENT_FILE_COLUMNS)
    assert table.schema.field("shipment_id").type == pa.int64()
    assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("eta").type == pa.date32()
    rows = table.to_pylist()
    expected = world.shipment_changes(DAY, "skyfreight")
    assert len(rows) == len(expected) > 0
    assert {row["shipment_id"] for row in rows} == {shipment["shipment_id"] for shipment in expected}
    assert all(row["updated_at"].date() == DAY and row["updated_at"].tzinfo is not None for row in rows)
    assert {row["partner"] for row in rows} == {"skyfreight"}


def test_every_shipment_has_exactly_one_channel(world: World) -> None:
    owners: dict[int, set[str]] = {}
    for day in world.days(START, START + timedelta(days=30)):
        for channel in SHIPMENT_CHANNELS:
            for shipment in world.shipment_changes(day, channel):
                owners.setdefault(shipment["shipment_id"], set()).add(channel)
    assert all(len(channels) == 1 for channels in owners.values())
    per_channel = {channel: sum(channels == {channel} for channels in owners.values()) for channel in SHIPMENT_CHANNELS}
    assert per_channel["api"] > per_channel["oceanic"] > per_channel["skyfreight"] > 50


def test_rewriting_a_day_gives_identical_files(world: World, tmp_path: Path) -> None:
    first = [Path(path).read_bytes() for path in write_file_drops(world, DAY, str(tmp_path))]
    again = [Path(path).read_bytes() for path in write_file_drops(world, DAY, str(tmp_path))]
    assert first == again


def test_a_day_without_shipments_still_gets_a_manifest(tmp_path: Path) -> None:
    tiny = generate(DemoConfig(scale=0.05, start_date=START, end_date=date(2026, 2, 1)))
    assert manifest_rows(tiny, START, "skyfreight") == []
    csv_path, parquet_path = write_file_drops(tiny, START, str(tmp_path))
    assert read_csv(csv_path) == [] or all(row["partner"] == "oceanic" for row in read_csv(csv_path))
    empty = pq.read_table(parquet_path)
    assert empty.num_rows == 0
    assert empty.schema.names == list(SHIPMENT_FILE_COLUMNS)


def test_missing_required_field(world: World, tmp_path: Path) -> None:
    csv_path, parquet_path = write_file_drops(world, DAY, str(tmp_path), bad_row="missing_required")
    rows = read_csv(csv_path)
    assert len(rows) == len(world.shipment_changes(DAY, "oceanic")) + 1
    assert rows[-1]["shipment_id"] == ""
    assert all(row["shipment_id"] for row in rows[:-1])
    shipment_ids = pq.read_table(parquet_path).column("shipment_id").to_pylist()
    assert shipment_ids[-1] is None
    assert None not in shipment_ids[:-1]


def test_bad_date(world: World, tmp_path: Path) -> None:
    csv_path, parquet_path = write_file_drops(world, DAY, str(tmp_path), bad_row="bad_date")
    rows = read_csv(csv_path)
    with pytest.raises(ValueError, match=r"does not match format|out of range"):
        datetime.strptime(rows[-1]["shipped_at"], "%Y-%m-%d %H:%M:%S")
    shipped = pq.read_table(parquet_path).column("shipped_at").to_pylist()
    assert shipped[-1] == datetime(1900, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="bad_row"):
        write_file_drops(world, DAY, str(tmp_path), bad_row="gremlins")


def test_drops_to_s3(world: World, moto_endpoint: str) -> None:
    s3fs = pytest.importorskip("s3fs")
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": moto_endpoint, "region_name": "eu-west-1"},
    }
    filesystem = s3fs.S3FileSystem(**options)
    filesystem.mkdir("file-drops-lake")
    written = write_file_drops(world, DAY, "s3://file-drops-lake/inbox", storage_options=options)
    assert written == [drop_path("s3://file-drops-lake/inbox", partner, DAY) for partner in ("oceanic", "skyfreight")]
    assert sorted(filesystem.find("file-drops-lake/inbox")) == [url.removeprefix("s3://") for url in written]
    rows = list(csv.DictReader(io.StringIO(filesystem.cat_file(written[0]).decode())))
    assert len(rows) == len(world.shipment_changes(DAY, "oceanic"))
    table = pq.read_table(io.BytesIO(filesystem.cat_file(written[1])))
    assert table.num_rows == len(world.shipment_changes(DAY, "skyfreight"))
