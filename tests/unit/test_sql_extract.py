"""SQL extraction against real databases: SQLite, PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306).

Incremental extraction by a declared cursor with the CDC operation, snapshot mode (deletes found by comparing keys
with the previous snapshot), reruns, connection failures, and the YAML declaration of both modes.
"""

from __future__ import annotations

import traceback
import uuid
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from medalflow.extract.metadata import METADATA_COLUMNS, IngestionContext
from medalflow.extract.schema import DeclaredSchema, SchemaError
from medalflow.extract.sql import (
    DatabaseLocation,
    SourceConnectionError,
    SqlEntity,
    extract_changes,
    parse_sql_entity,
)
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
MARIADB_ADMIN = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@pytest.fixture(scope="module")
def mariadb_database():
    """Factory: a fresh MariaDB database; returns its name. Dropped at the end of the module."""
    import pymysql

    created: list[str] = []

    def admin(statement: str) -> None:
        with pymysql.connect(**MARIADB_ADMIN, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(statement)

    def create() -> str:
        name = f"medalflow_test_{uuid.uuid4().hex[:10]}"
        admin(f"create database `{name}`")
        created.append(name)
        return name

    yield create
    for name in created:
        admin(f"drop database if exists `{name}`")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database(request, tmp_path, postgres_database, mariadb_database):
    """(SQLAlchemy URL to load test data, the extraction's DatabaseLocation, the engine's timestamp type)."""
    if request.param == "sqlite":
        path = tmp_path / "erp.sqlite"
        return f"sqlite:///{path}", DatabaseLocation("sqlite", str(path)), "timestamp"
    if request.param == "mysql":
        name = mariadb_database()
        location = DatabaseLocation("mysql", f"mysql://root@127.0.0.1:3306/{name}", "erp_mariadb")
        # DATETIME: MariaDB's TIMESTAMP columns would set themselves to now() on every update.
        return f"mysql+pymysql://root@127.0.0.1:3306/{name}", location, "datetime(6)"
    url = postgres_database(f"extract_{uuid.uuid4().hex[:8]}")
    name = url.rsplit("/", 1)[1]
    return url, DatabaseLocation("postgresql", f"postgresql://postgres@127.0.0.1:5432/{name}"), "timestamp"


def execute(url: str, *statements: str, **values) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), values)
    engine.dispose()


def load(url: str, timestamp: str, extra_column: bool = False) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        extra = ", channel varchar(10)" if extra_column else ""
        connection.execute(
            text(
                f"create table orders (order_id bigint primary key, amount numeric(18,2), created_at {timestamp}, "
                f"updated_at {timestamp}, deleted_at {timestamp}{extra})"
            )
        )
        for row in ROWS:
            values = dict(zip(["i", "a", "c", "u", "d"], row, strict=True))
            columns = "order_id, amount, created_at, updated_at, deleted_at" + (", channel" if extra_column else "")
            placeholders = ":i, :a, :c, :u, :d" + (", 'web'" if extra_column else "")
            connection.execute(text(f"insert into orders ({columns}) values ({placeholders})"), values)
    engine.dispose()


def context(run_id="run-1"):
    return IngestionContext("erp", run_id, datetime(2026, 1, 6, 0, 5, tzinfo=UTC))


def raw(tmp_path, entity: str, day: date) -> list[dict]:
    return pq.read_table(tmp_path / f"lake/raw/erp/{entity}/ingestion_date={day}/part-00000.parquet").to_pylist()


def test_changes_in_interval_with_operations(database, tmp_path):
    url, location, timestamp = database
    load(url, timestamp)
    lake = Lake(str(tmp_path / "lake"))
    result = extract_changes(location, ENTITY, lake, START, END, context())
    table = pq.read_table(tmp_path / "lake/raw/erp/orders/ingestion_date=2026-01-05/part-00000.parquet")
    assert result["rows"] == 3
    assert result["operations"] == {"I": 1, "U": 1, "D": 1}
    assert dict(zip(table.column("order_id").to_pylist(), table.column("_op").to_pylist(), strict=True)) == {
        1: "I",
        2: "U",
        3: "D",
    }
    assert str(table.schema.field("amount").type) == "decimal128(18, 2)"
    assert str(table.schema.field("updated_at").type) == "timestamp[us]"
    assert table.column("amount").to_pylist()[0] == pytest.approx(10.5)
    assert set(table.column("_run_id").to_pylist()) == {"run-1"}
    assert set(table.column("_source").to_pylist()) == {"erp"}


def test_rerun_replaces_the_same_objects(database, tmp_path):
    url, location, timestamp = database
    load(url, timestamp)
    lake = Lake(str(tmp_path / "lake"))
    extract_changes(location, ENTITY, lake, START, END, context("run-1"))
    first = lake.list_files("raw")
    extract_changes(location, ENTITY, lake, START, END, context("run-2"))
    assert lake.list_files("raw") == first
    table = pq.read_table(tmp_path / "lake" / first[0])
    assert table.num_rows == 3
    assert set(table.column("_run_id").to_pylist()) == {"run-2"}


def test_new_column_passes_through_as_text(database, tmp_path):
    url, location, timestamp = database
    load(url, timestamp, extra_column=True)
    result = extract_changes(location, ENTITY, Lake(str(tmp_path / "lake")), START, END, context())
    assert result["new_columns"] == ["channel"]
    table = pq.read_table(tmp_path / "lake/raw/erp/orders/ingestion_date=2026-01-05/part-00000.parquet")
    assert set(table.column("channel").to_pylist()) == {"web"}


def test_missing_required_column_names_source_entity_and_column(database, tmp_path):
    url, location, timestamp = database
    load(url, timestamp)
    schema = DeclaredSchema("erp", "orders", {**ENTITY.schema.columns, "currency": "string"})
    entity = SqlEntity("orders", "orders", "order_id", schema)
    with pytest.raises(SchemaError, match=r"source 'erp', entity 'orders' is missing required column\(s\) currency"):
        extract_changes(location, entity, Lake(str(tmp_path / "lake")), START, END, context())
    assert not (tmp_path / "lake" / "raw").exists()


# --- a declared cursor -------------------------------------------------------------------------------------------

ITEMS = parse_sql_entity(
    "erp",
    "items",
    {
        "table": "catalog_items",
        "key": "item_id",
        "cursor": "modified",
        "created_at": None,
        "deleted_at": None,
        "where": "active = 1",
        "columns": {"item_id": "bigint", "label": "string", "active": "int", "modified": "timestamp"},
    },
)


def day_interval(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return start, start + timedelta(days=1)


def test_incremental_by_a_declared_cursor_and_midnight_belongs_to_the_new_day(database, tmp_path):
    url, location, timestamp = database
    execute(url, f"create table catalog_items (item_id bigint, label varchar(20), active int, modified {timestamp})")
    for item_id, label, active, modified in [
        (1, "early", 1, "2026-01-05 00:00:00"),  # the first instant of the 5th
        (2, "late", 1, "2026-01-05 23:59:59.999999"),
        (3, "midnight", 1, "2026-01-06 00:00:00"),  # exactly midnight: the 6th, not the 5th
        (4, "filtered", 0, "2026-01-05 12:00:00"),  # outside the declared where
    ]:
        execute(
            url,
            "insert into catalog_items values (:i, :l, :a, :m)",
            i=item_id,
            l=label,
            a=active,
            m=modified,
        )
    lake = Lake(str(tmp_path / "lake"))
    for day in (date(2026, 1, 5), date(2026, 1, 6)):
        extract_changes(location, ITEMS, lake, *day_interval(day), context())
    fifth, sixth = raw(tmp_path, "items", date(2026, 1, 5)), raw(tmp_path, "items", date(2026, 1, 6))
    assert [(row["item_id"], row["_op"]) for row in fifth] == [(1, "U"), (2, "U")]
    assert [(row["item_id"], row["label"], row["modified"]) for row in sixth] == [(3, "midnight", datetime(2026, 1, 6))]


# --- snapshot mode -----------------------------------------------------------------------------------------------

WAREHOUSES = parse_sql_entity(
    "erp",
    "warehouses",
    {"mode": "snapshot", "key": "warehouse_id", "columns": {"warehouse_id": "int", "name": "string", "city": "string"}},
)


def snapshot_day(location, lake, day: date, run_id: str = "run-1") -> dict:
    return extract_changes(location, WAREHOUSES, lake, *day_interval(day), context(run_id))


def test_snapshot_lands_the_table_and_finds_inserts_updates_and_deletes_across_days(database, tmp_path):
    url, location, _timestamp = database
    days = [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)]
    lake = Lake(str(tmp_path / "lake"))
    execute(
        url,
        "create table warehouses (warehouse_id int primary key, name varchar(20), city varchar(20))",
        "insert into warehouses values (1, 'North', 'Santos'), (2, 'South', 'Itajai'), (3, 'East', 'Suape')",
    )
    first = snapshot_day(location, lake, days[0])
    # Day 2: one renamed, one new, one gone.
    execute(
        url,
        "update warehouses set name = 'South II' where warehouse_id = 2",
        "insert into warehouses values (4, 'West', 'Manaus')",
        "delete from warehouses where warehouse_id = 1",
    )
    second = snapshot_day(location, lake, days[1])
    # Day 3: the new one is gone again.
    execute(url, "delete from warehouses where warehouse_id = 4")
    third = snapshot_day(location, lake, days[2])

    def ops(day):
        return [(row["warehouse_id"], row["name"], row["_op"]) for row in raw(tmp_path, "warehouses", day)]

    assert ops(days[0]) == [(1, "North", "I"), (2, "South", "I"), (3, "East", "I")]
    # The vanished key lands as D with its last known values, after the table's rows.
    assert ops(days[1]) == [(2, "South II", "U"), (3, "East", "U"), (4, "West", "I"), (1, "North", "D")]
    assert ops(days[2]) == [(2, "South II", "U"), (3, "East", "U"), (4, "West", "D")]
    assert (first["operations"], second["operations"], third["operations"]) == (
        {"I": 3, "U": 0, "D": 0},
        {"I": 1, "U": 2, "D": 1},
        {"I": 0, "U": 2, "D": 1},
    )
    assert [row["city"] for row in raw(tmp_path, "warehouses", days[1])] == ["Itajai", "Suape", "Manaus", "Santos"]


def test_snapshot_reruns_are_idempotent_and_compare_with_the_day_before(database, tmp_path):
    url, location, _timestamp = database
    days = [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 9)]
    lake = Lake(str(tmp_path / "lake"))
    execute(
        url,
        "create table warehouses (warehouse_id int primary key, name varchar(20), city varchar(20))",
        "insert into warehouses values (1, 'North', 'Santos'), (2, 'South', 'Itajai')",
    )
    snapshot_day(location, lake, days[0])
    execute(url, "delete from warehouses where warehouse_id = 2")
    snapshot_day(location, lake, days[1], "run-1")
    files = lake.list_files("raw")

    def strip(day):
        return [
            {k: v for k, v in row.items() if k not in METADATA_COLUMNS or k == "_op"}
            for row in raw(tmp_path, "warehouses", day)
        ]

    before = strip(days[1])
    snapshot_day(location, lake, days[1], "run-2")  # a rerun of the same day, nothing changed in between
    assert lake.list_files("raw") == files
    assert (
        strip(days[1])
        == before
        == [
            {"warehouse_id": 1, "name": "North", "city": "Santos", "_op": "U"},
            {"warehouse_id": 2, "name": "South", "city": "Itajai", "_op": "D"},
        ]
    )
    # Days later, with missed days in between: the comparison is with the latest snapshot before, and a key deleted
    # then is not deleted again.
    assert snapshot_day(location, lake, days[2])["operations"] == {"I": 0, "U": 1, "D": 0}


# --- connection failures -----------------------------------------------------------------------------------------

SECRET = "Sup3r-s3cret/pw"


def failure(location: DatabaseLocation, tmp_path) -> SourceConnectionError:
    with pytest.raises(SourceConnectionError) as raised:
        extract_changes(location, ENTITY, Lake(str(tmp_path / "lake")), START, END, context())
    shown = "".join(traceback.format_exception(raised.value))
    assert SECRET not in shown
    assert "Sup3r" not in shown
    assert not (tmp_path / "lake" / "raw").exists()
    return raised.value


@pytest.mark.parametrize(
    ("uri", "fix"),
    [
        ("postgresql://postgres:Sup3r-s3cret%2Fpw@127.0.0.1:1/postgres", "is the database up, and are host and port"),
        ("mysql://root:Sup3r-s3cret%2Fpw@127.0.0.1:1/mysql", "is the database up, and are host and port"),
        ("mysql://root:Sup3r-s3cret%2Fpw@127.0.0.1:3306/mysql", "check the login and password"),
        ("postgresql://postgres:Sup3r-s3cret%2Fpw@127.0.0.1:5432/no_such_db_x", "schema field (the database name)"),
    ],
    ids=["postgres-wrong-port", "mariadb-wrong-port", "mariadb-wrong-password", "postgres-bad-database"],
)
def test_a_connection_failure_names_source_entity_connection_and_fix_without_the_password(uri, fix, tmp_path):
    location = DatabaseLocation(uri.split(":", 1)[0], uri, "medalflow_erp")
    message = str(failure(location, tmp_path))
    assert message.startswith("source 'erp', entity 'orders': cannot connect to ")
    assert "Airflow connection 'medalflow_erp'" in message
    assert fix in message
    assert "127.0.0.1" in message


def test_a_location_from_an_airflow_connection_picks_the_engine_and_hides_the_password():
    from airflow.models.connection import Connection

    mariadb = Connection(
        conn_id="erp_mariadb", conn_type="mysql", host="db", port=3307, login="etl", password=SECRET, schema="erp"
    )
    location = DatabaseLocation.from_airflow_connection(mariadb)
    assert (location.dialect, location.conn_id, location.safe_address) == (
        "mysql",
        "erp_mariadb",
        "mysql://db:3307/erp",
    )
    assert SECRET not in repr(location)
    postgres = Connection(conn_id="erp", conn_type="postgres", host="db", login="etl", password=SECRET, schema="erp")
    assert DatabaseLocation.from_airflow_connection(postgres).safe_address == "postgresql://db:5432/erp"
    with pytest.raises(ValueError, match=r"conn_type 'oracle' is not supported.*use postgres, mysql or sqlite"):
        DatabaseLocation.from_airflow_connection(Connection(conn_id="x", conn_type="oracle"))


# --- declaring entities in YAML ----------------------------------------------------------------------------------

COLUMNS = {"id": "bigint", "updated_at": "timestamp", "created_at": "timestamp", "deleted_at": "timestamp"}


def test_the_defaults_are_incremental_on_updated_at_with_created_and_deleted_at():
    entity = parse_sql_entity("erp", "orders", {"key": "id", "columns": COLUMNS})
    assert (entity.mode, entity.table, entity.cursor, entity.created_at, entity.deleted_at) == (
        "incremental",
        "orders",
        "updated_at",
        "created_at",
        "deleted_at",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mode": "snap"}, "mode: 'snap' is not one of incremental, snapshot"),
        ({"updated_at": "updated_at"}, "updated_at: unknown setting; a sql entity takes columns, created_at"),
        ({"cursor": "modified"}, "cursor: 'modified' is not a declared column"),
        ({"cursor": None}, "cursor: required with mode: incremental; use mode: snapshot"),
        ({"columns": {"id": "bigint", "updated_at": "timestamp"}}, "created_at: 'created_at' is not a declared column"),
        ({"mode": "snapshot", "cursor": "updated_at"}, "cursor: only with mode: incremental"),
        ({"key": "nope"}, "key: 'nope' is not a declared column"),
        ({"table": "orders; drop table x"}, "table: 'orders; drop table x' is not a plain identifier"),
        ({"where": "1=1; drop table x"}, "where: expected one SQL condition"),
        ({"columns": {"id": "money"}}, "columns: unknown column type 'money'"),
    ],
)
def test_declaration_mistakes_name_the_key_first(spec, message):
    with pytest.raises(SchemaError) as raised:
        parse_sql_entity("erp", "orders", {"key": "id", "columns": COLUMNS, **spec})
    assert str(raised.value).startswith(message)


def test_rows_stream_in_bounded_batches_in_order(database, tmp_path, monkeypatch):
    from medalflow.extract import sql

    url, location, timestamp = database
    load(url, timestamp)
    monkeypatch.setattr(sql, "MYSQL_BATCH_ROWS", 1)  # MariaDB: one fetchmany() a row
    monkeypatch.setattr(sql, "PREFETCHED_BATCHES", 1)
    wide = SqlEntity("orders", "orders", "order_id", ENTITY.schema, deleted_at=None)
    lake = Lake(str(tmp_path / "lake"))
    result = extract_changes(location, wide, lake, START - timedelta(days=5), END + timedelta(days=5), context())
    assert result["rows"] == 5
    assert [row["order_id"] for row in raw(tmp_path, "orders", (START - timedelta(days=5)).date())] == [4, 1, 2, 3, 5]


def test_a_value_that_does_not_fit_fails_the_run_and_lands_nothing(database, tmp_path):
    url, location, timestamp = database
    execute(url, f"create table items (item_id bigint, label varchar(20), modified {timestamp})")
    execute(url, "insert into items values (1, 'not-a-number', '2026-01-05 10:00:00')")
    entity = parse_sql_entity(
        "erp",
        "items",
        {
            "key": "item_id",
            "cursor": "modified",
            "created_at": None,
            "deleted_at": None,
            "columns": {"item_id": "bigint", "label": "int", "modified": "timestamp"},
        },
    )
    with pytest.raises(SchemaError, match=r"source 'erp', entity 'items', column 'label': cannot read"):
        extract_changes(location, entity, Lake(str(tmp_path / "lake")), START, END, context())
    assert not (tmp_path / "lake" / "raw").exists()
