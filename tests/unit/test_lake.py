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
