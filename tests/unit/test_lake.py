from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medalflow.lake import Lake, partition_path

SCHEMA = pa.schema([pa.field("id", pa.int64())])


def batches(*values):
    yield from (pa.record_batch([pa.array([value])], schema=SCHEMA) for value in values)


def test_partition_path_layout():
    assert partition_path("raw", "erp", "orders", date(2026, 1, 5)) == "raw/erp/orders/ingestion_date=2026-01-05"


def test_replacing_a_partition_keeps_exactly_the_new_files(tmp_path):
    lake = Lake(str(tmp_path))
    relative = partition_path("raw", "erp", "orders", date(2026, 1, 5))
    with lake.replace_partition(relative, "run-1") as partition:
        partition.write_batches("part-00000.parquet", SCHEMA, batches(1, 2))
        partition.write_batches("part-00001.parquet", SCHEMA, batches(3))
    with lake.replace_partition(relative, "run-2") as partition:
        assert partition.write_batches("part-00000.parquet", SCHEMA, batches(7)) == 1
    assert lake.list_files(relative) == [f"{relative}/part-00000.parquet"]
    assert pq.read_table(tmp_path / relative).column("id").to_pylist() == [7]
    assert lake.list_files("_staging") == []


def test_a_failed_write_leaves_the_old_partition_untouched(tmp_path):
    lake = Lake(str(tmp_path))
    relative = partition_path("raw", "erp", "orders", date(2026, 1, 5))
    with lake.replace_partition(relative, "run-1") as partition:
        partition.write_batches("part-00000.parquet", SCHEMA, batches(1))

    def failing():
        yield from batches(9)
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"), lake.replace_partition(relative, "run-2") as partition:
        partition.write_batches("part-00000.parquet", SCHEMA, failing())
    assert pq.read_table(tmp_path / relative).column("id").to_pylist() == [1]
    assert lake.list_files("_staging") == []


def write_then_fail(lake, relative, run_id):
    """A run that stages files, then fails before its partition is complete."""
    with lake.replace_partition(relative, run_id) as partition:
        partition.write_batches("part-00000.parquet", SCHEMA, batches(9))
        partition.write_bytes("extra.bin", b"never published")
        raise RuntimeError("boom")


def test_no_staging_folder_is_left_behind_locally(tmp_path):
    """Success or failure, the lake has no ``_staging`` folder afterwards (it used to keep an empty one per run)."""
    lake = Lake(str(tmp_path))
    relative = partition_path("raw", "erp", "orders", date(2026, 1, 5))
    with lake.replace_partition(relative, "scheduled__2026-01-06T00:00:00+00:00") as partition:
        partition.write_batches("part-00000.parquet", SCHEMA, batches(1))
    assert not (tmp_path / "_staging").exists()

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(lake, relative, "run-2")
    assert not (tmp_path / "_staging").exists()
    assert pq.read_table(tmp_path / relative).column("id").to_pylist() == [1]


def test_a_run_folder_in_use_by_another_partition_is_kept(tmp_path):
    """Two entities of one run stage side by side: the first to finish must not remove the other's folder."""
    lake = Lake(str(tmp_path))
    orders = partition_path("raw", "erp", "orders", date(2026, 1, 5))
    customers = partition_path("raw", "erp", "customers", date(2026, 1, 5))
    with lake.replace_partition(customers, "run-1") as slow:
        slow.write_batches("part-00000.parquet", SCHEMA, batches(1))
        with lake.replace_partition(orders, "run-1") as fast:
            fast.write_batches("part-00000.parquet", SCHEMA, batches(2))
        assert lake.list_files("_staging/run-1") == [f"{slow.staging}/part-00000.parquet"]
    assert lake.list_files(orders) == [f"{orders}/part-00000.parquet"]
    assert lake.list_files(customers) == [f"{customers}/part-00000.parquet"]
    assert not (tmp_path / "_staging").exists()


@pytest.fixture
def s3_lake(moto_s3_bucket):
    return Lake(f"s3://{moto_s3_bucket}/medalflow"), moto_s3_bucket


def test_an_s3_lake_lands_only_on_success_and_keeps_no_staging_objects(s3_lake):
    import boto3

    lake, bucket = s3_lake
    relative = partition_path("raw", "erp", "orders", date(2026, 1, 5))
    with lake.replace_partition(relative, "run-1") as partition:
        partition.write_batches("part-00000.parquet", SCHEMA, batches(1, 2))
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(lake, relative, "run-2")

    listed = boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item["Key"] for item in listed] == [f"medalflow/{relative}/part-00000.parquet"]
    with lake.fs.open(lake.path(f"{relative}/part-00000.parquet"), "rb") as handle:
        assert pq.read_table(handle).column("id").to_pylist() == [1, 2]
