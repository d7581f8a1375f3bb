"""The demo ERP on SQLite and PostgreSQL: schema, idempotent daily loads, and the state the world describes."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text

from medalflow_demo import erp
from medalflow_demo.world import ERP_KEYS, ERP_TABLES, DemoConfig, World, generate

pytestmark = pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal objects")

START = date(2026, 1, 1)
DAYS = 8
POSTGRES_HOST = os.getenv("MEDALFLOW_TEST_POSTGRES_HOST", "127.0.0.1")


@pytest.fixture(scope="module")
def world() -> World:
    return generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=START + timedelta(days=60)))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A uniquely named PostgreSQL database for this test session, dropped at the end."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(host=POSTGRES_HOST, port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as problem:
        pytest.skip(f"no PostgreSQL at {POSTGRES_HOST}:5432: {problem}")
    admin.autocommit = True
    name = f"medalflow_test_demo_erp_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@{POSTGRES_HOST}:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An empty ERP database with the schema, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = erp.make_engine(url)
    erp.metadata.drop_all(engine)
    erp.create_schema(engine)
    yield engine
    erp.metadata.drop_all(engine)
    engine.dispose()


def _normalise(value: Any) -> Any:
    # SQLite hands NUMERIC back through floats: compare money at its declared scale.
    return value.normalize() if isinstance(value, Decimal) else value


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as connection:
        return {
            name: [
                tuple(_normalise(value) for value in row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for name, table in erp.TABLES.items()
        }


def expected_state(world: World, days: list[date]) -> dict[str, list[tuple]]:
    """The ERP as the world describes it: the latest image of every row changed in those days."""
    latest: dict[str, dict[int, dict]] = {table: {} for table in ERP_TABLES}
    for day in days:
        for change in world.erp_changes(day):
            latest[change.table][change.key] = change.row
    return {
        name: [tuple(_normalise(rows[key][column.name]) for column in erp.TABLES[name].columns) for key in sorted(rows)]
        for name, rows in latest.items()
    }


def test_schema_has_the_columns_and_indexes_extraction_relies_on(engine: Engine) -> None:
    erp.create_schema(engine)  # a second time: idempotent
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) >= set(ERP_TABLES)
    for name in ERP_TABLES:
        columns = {column["name"] for column in inspector.get_columns(name)}
        assert {ERP_KEYS[name], "created_at", "updated_at", "deleted_at"} <= columns
        indexed = {tuple(index["column_names"]) for index in inspector.get_indexes(name)}
        assert ("updated_at",) in indexed, name
    order_columns = [column["name"] for column in inspector.get_columns("orders")]
    assert order_columns == [
        "order_id", "customer_id", "product_id", "supplier_id", "quantity", "unit_cost", "currency",
        "sale_amount_brl", "order_date", "status", "created_at", "updated_at", "deleted_at",
    ]  # fmt: skip


def test_applied_days_give_the_state_the_world_describes(engine: Engine, world: World) -> None:
    days = list(world.days(START, START + timedelta(days=DAYS)))
    stats = erp.apply_range(engine, world, days[0], days[-1] + timedelta(days=1))
    assert stats.days == DAYS
    ops = stats.by_op()
    assert min(ops["insert"], ops["update"], ops["delete"]) > 0
    assert snapshot(engine) == expected_state(world, days)


def test_applying_a_day_again_changes_nothing(engine: Engine, world: World) -> None:
    days = list(world.days(START, START + timedelta(days=5)))
    for day in days:
        erp.apply_day(engine, world, day)
    before = snapshot(engine)
    erp.apply_day(engine, world, days[-1])  # the same day twice in a row
    assert snapshot(engine) == before
    erp.apply_day(engine, world, days[2])  # an older day after newer ones: older images must not win
    erp.apply_day(engine, world, days[0])
    assert snapshot(engine) == before


def test_apply_day_reports_what_the_world_changed(engine: Engine, world: World) -> None:
    for day in world.days(START, START + timedelta(days=3)):
        stats = erp.apply_day(engine, world, day)
        assert stats.counts == Counter((change.table, change.op) for change in world.erp_changes(day))


def test_tiny_batches_give_the_same_state(engine: Engine, world: World) -> None:
    """Batches split a row's several changes of a day; each batch keeps its latest image."""
    days = list(world.days(START, START + timedelta(days=4)))
    for day in days:
        erp.apply_day(engine, world, day, batch_size=7)
    assert snapshot(engine) == expected_state(world, days)


def test_orders_reference_rows_that_existed_when_placed(engine: Engine, world: World) -> None:
    erp.apply_range(engine, world, START, START + timedelta(days=DAYS))
    checks = {
        "customer created after the order": "select count(*) from orders o join customers c using (customer_id) "
        "where c.created_at > o.created_at",
        "customer deleted before the order": "select count(*) from orders o join customers c using (customer_id) "
        "where c.deleted_at is not null and c.deleted_at < o.created_at",
        "product created after the order": "select count(*) from orders o join products p using (product_id) "
        "where p.created_at > o.created_at",
        "supplier is not the product's": "select count(*) from orders o join products p using (product_id) "
        "where p.supplier_id <> o.supplier_id",
        "currency is not the supplier's": "select count(*) from orders o join suppliers s using (supplier_id) "
        "where s.currency <> o.currency",
        "dangling customer": "select count(*) from orders o left join customers c using (customer_id) "
        "where c.customer_id is null",
    }
    with engine.connect() as connection:
        violations = {name: connection.execute(text(sql)).scalar_one() for name, sql in checks.items()}
        orders = connection.execute(text("select count(*) from orders")).scalar_one()
    assert violations == dict.fromkeys(checks, 0)
    assert orders > 1000


def test_each_day_is_extractable_by_updated_at(engine: Engine, world: World) -> None:
    """What CDC reads for a day, [day, day + 1) on updated_at right after applying it, is that day's changed rows."""
    for day in world.days(START, START + timedelta(days=3)):
        erp.apply_day(engine, world, day)
        changed = {(change.table, change.key) for change in world.erp_changes(day)}
        start = datetime.combine(day, datetime.min.time())
        found = set()
        with engine.connect() as connection:
            for name, table in erp.TABLES.items():
                window = (table.c.updated_at >= start) & (table.c.updated_at < start + timedelta(days=1))
                key = table.c[ERP_KEYS[name]]
                found |= {(name, row[0]) for row in connection.execute(select(key).where(window))}
        assert found == changed


def test_command_line_creates_and_loads(tmp_path) -> None:
    database = tmp_path / "cli.sqlite"
    arguments = ["--url", f"sqlite:///{database}", "--scale", "0.1", "--start", "2026-01-01", "--end", "2026-01-04"]
    assert erp.main(arguments) == 0
    assert erp.main([*arguments[:4], "--world-start", "2026-01-01", "--start", "2026-01-03"]) == 0  # re-apply a day
    engine = erp.make_engine(f"sqlite:///{database}")
    world = generate(DemoConfig(scale=0.1, start_date=START, end_date=START + timedelta(days=3)))
    assert snapshot(engine) == expected_state(world, list(world.days()))
    engine.dispose()
