"""CDC extraction against real databases: SQLite and PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from medalflow.extract.metadata import IngestionContext
from medalflow.extract.schema import DeclaredSchema, SchemaError
from medalflow.extract.sql import DatabaseLocation, SqlEntity, extract_changes
from medalflow.lake import Lake

START, END = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
ROWS = [
    # id, amount, created, updated, deleted   -> expected operation
    (1, "10.50", "2026-01-05 08:00:00", "2026-01-05 08:00:00", None),  # I
    (2, "20.00", "2026-01-01 08:00:00", "2026-01-05 09:00:00", None),  # U
    (3, "30.00", "2026-01-01 08:00:00", "2026-01-05 23:59:59.999", "2026-01-05 23:59:59.999"),  # D
    (4, "40.00", "2026-01-01 08:00:00", "2026-01-04 12:00:00", None),  # before the interval
    (5, "50.00", "2026-01-01 08:00:00", "2026-01-06 00:00:00", None),  # after: the end is exclusive
]
ENTITY = SqlEntity(
    name="orders",
    table="orders",
    key="order_id",
    schema=DeclaredSchema(
        "erp",
        "orders",
        {
            "order_id": "bigint",
            "amount": "decimal(18,2)",
            "created_at": "timestamp",
            "updated_at": "timestamp",
            "deleted_at": "timestamp",
        },
    ),
)


def load(url: str, extra_column: bool = False) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        extra = ", channel varchar(10)" if extra_column else ""
        connection.execute(
            text(
                "create table orders (order_id bigint primary key, amount numeric(18,2), created_at timestamp, "
                f"updated_at timestamp, deleted_at timestamp{extra})"
            )
        )
        for row in ROWS:
            values = dict(zip(["i", "a", "c", "u", "d"], row, strict=True))
            columns = "order_id, amount, created_at, updated_at, deleted_at" + (", channel" if extra_column else "")
            placeholders = ":i, :a, :c, :u, :d" + (", 'web'" if extra_column else "")
            connection.execute(text(f"insert into orders ({columns}) values ({placeholders})"), values)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, postgres_database):
    if request.param == "sqlite":
        path = tmp_path / "erp.sqlite"
        return f"sqlite:///{path}", DatabaseLocation("sqlite", str(path))
    url = postgres_database(f"extract_{request.node.name[-12:-1]}")
    name = url.rsplit("/", 1)[1]
    return url, DatabaseLocation("postgresql", f"postgresql://postgres@127.0.0.1:5432/{name}")


def context(run_id="run-1"):
    return IngestionContext("erp", run_id, datetime(2026, 1, 6, 0, 5, tzinfo=UTC))


def test_changes_in_interval_with_operations(database, tmp_path):
    url, location = database
    load(url)
    lake = Lake(str(tmp_path / "lake"))
    result = extract_changes(location, ENTITY, lake, START, END, context())
    table = pq.read_table(tmp_path / "lake/raw/erp/orders/ingestion_date=2026-01-05/part-00000.parquet")
    assert result["rows"] == 3
    assert dict(zip(table.column("order_id").to_pylist(), table.column("_op").to_pylist(), strict=True)) == {
        1: "I",
        2: "U",
        3: "D",
    }
    assert str(table.schema.field("amount").type) == "decimal128(18, 2)"
    assert set(table.column("_run_id").to_pylist()) == {"run-1"}
    assert set(table.column("_source").to_pylist()) == {"erp"}


def test_rerun_replaces_the_same_objects(database, tmp_path):
    url, location = database
    load(url)
    lake = Lake(str(tmp_path / "lake"))
    extract_changes(location, ENTITY, lake, START, END, context("run-1"))
    first = lake.list_files("raw")
    extract_changes(location, ENTITY, lake, START, END, context("run-2"))
    assert lake.list_files("raw") == first
    table = pq.read_table(tmp_path / "lake" / first[0])
    assert table.num_rows == 3
    assert set(table.column("_run_id").to_pylist()) == {"run-2"}


def test_new_column_passes_through_as_text(database, tmp_path):
    url, location = database
    load(url, extra_column=True)
    result = extract_changes(location, ENTITY, Lake(str(tmp_path / "lake")), START, END, context())
    assert result["new_columns"] == ["channel"]
    table = pq.read_table(tmp_path / "lake/raw/erp/orders/ingestion_date=2026-01-05/part-00000.parquet")
    assert set(table.column("channel").to_pylist()) == {"web"}


def test_missing_required_column_names_source_entity_and_column(database, tmp_path):
    url, location = database
    load(url)
    schema = DeclaredSchema("erp", "orders", {**ENTITY.schema.columns, "currency": "string"})
    entity = SqlEntity("orders", "orders", "order_id", schema)
    with pytest.raises(SchemaError, match=r"source 'erp', entity 'orders' is missing required column\(s\) currency"):
        extract_changes(location, entity, Lake(str(tmp_path / "lake")), START, END, context())
    assert not (tmp_path / "lake" / "raw").exists()
