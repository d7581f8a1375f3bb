"""The importer's ERP database: schema and loader of the demo world's daily changes (SQLAlchemy 2 Core).

Works on SQLite (``sqlite:///path``) and PostgreSQL (``postgresql+psycopg2://...``). Tables: ``suppliers``,
``customers``, ``products`` and ``orders``, each with ``created_at``, ``updated_at`` and ``deleted_at`` (soft delete).
Timestamps are ``TIMESTAMP WITHOUT TIME ZONE`` holding UTC (naive ``datetime`` in Python); on SQLite SQLAlchemy stores
them as ``YYYY-MM-DD HH:MM:SS.ffffff`` text, which sorts and compares correctly. ``updated_at`` is indexed on every
table: change data capture extracts by it.

Loading is idempotent: rows are upserted (``INSERT ... ON CONFLICT DO UPDATE``) and an upsert only overwrites a row
whose stored ``updated_at`` is not newer, so re-applying any day, even after later days, changes nothing.

Command line::

    python -m medalflow_demo.erp --url sqlite:///erp.sqlite --seed 42 --scale 1 --start 2026-01-01 --end 2026-01-08
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    event,
)

from medalflow_demo.world import DEFAULT_START_DATE, ERP_KEYS, Change, DemoConfig, World, generate

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000

metadata = MetaData()


def _audit_columns() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=False), nullable=False),
        Column("updated_at", DateTime(timezone=False), nullable=False),
        Column("deleted_at", DateTime(timezone=False), nullable=True),
    ]


suppliers = Table(
    "suppliers",
    metadata,
    Column("supplier_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),  # ISO 3166-1 alpha-2
    Column("currency", String(3), nullable=False),  # USD, EUR or CNY
    Column("contact_email", String(200), nullable=False),
    *_audit_columns(),
    Index("ix_suppliers_updated_at", "updated_at"),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("email", String(200), nullable=False),
    Column("tax_id", String(20), nullable=False),  # CPF (people) or CNPJ (companies), formatted
    Column("phone", String(40), nullable=False),
    Column("city", String(100), nullable=False),
    Column("state", String(2), nullable=False),
    Column("segment", String(20), nullable=False),  # retail, wholesale or corporate
    *_audit_columns(),
    Index("ix_customers_updated_at", "updated_at"),
)

products = Table(
    "products",
    metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("category", String(50), nullable=False),
    Column("supplier_id", Integer, ForeignKey("suppliers.supplier_id"), nullable=False),
    Column("unit_cost", Numeric(18, 4), nullable=False),  # in the supplier's currency
    Column("list_price_brl", Numeric(18, 2), nullable=False),
    *_audit_columns(),
    Index("ix_products_updated_at", "updated_at"),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.customer_id"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.product_id"), nullable=False),
    Column("supplier_id", Integer, ForeignKey("suppliers.supplier_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_cost", Numeric(18, 4), nullable=False),  # in `currency`, the supplier's
    Column("currency", String(3), nullable=False),
    Column("sale_amount_brl", Numeric(18, 2), nullable=False),
    Column("order_date", Date, nullable=False),
    Column("status", String(16), nullable=False),  # placed, confirmed, shipped, delivered or cancelled
    *_audit_columns(),
    Index("ix_orders_updated_at", "updated_at"),
)

TABLES: dict[str, Table] = {table.name: table for table in (suppliers, customers, products, orders)}  # FK order


@dataclass
class ApplyStats:
    """How many changes were applied, per (table, op). Rows changed several times in a day count once per change."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    days: int = 0

    def add(self, other: ApplyStats) -> None:
        self.counts.update(other.counts)
        self.days += other.days

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_op(self) -> Counter[str]:
        ops: Counter[str] = Counter()
        for (_table, op), count in self.counts.items():
            ops[op] += count
        return ops

    def __str__(self) -> str:
        parts = ", ".join(f"{table}.{op}={count}" for (table, op), count in sorted(self.counts.items()))
        return f"{self.total} changes over {self.days} day(s): {parts}"


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for the ERP; on SQLite, with foreign keys enforced (off by default there)."""
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _enforce_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def create_schema(engine: Engine) -> None:
    """Create the ERP tables and indexes that do not exist yet (idempotent)."""
    metadata.create_all(engine, checkfirst=True)


def _upsert(table: Table, dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` that never lets an older row image overwrite a newer one."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"the demo ERP supports PostgreSQL and SQLite, not {dialect}")
    statement = insert(table)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[column.name for column in table.primary_key],
        set_={column.name: excluded[column.name] for column in table.columns if not column.primary_key},
        where=table.c.updated_at <= excluded.updated_at,
    )
    if dialect == "postgresql":
        # SQLAlchemy batches an executemany into multi-row statements ("insertmanyvalues") for ON CONFLICT only when
        # there is a RETURNING clause; without one psycopg2 runs a statement per row, several times slower.
        statement = statement.returning(*table.primary_key.columns)
    return statement


def _write_batch(connection: Connection, table_name: str, batch: dict[int, dict[str, Any]]) -> None:
    if batch:
        table = TABLES[table_name]
        connection.execute(_upsert(table, connection.dialect.name), list(batch.values()))


def _apply_changes(connection: Connection, changes: Iterable[Change], batch_size: int) -> ApplyStats:
    """Upsert changes in executemany batches, one table at a time (changes arrive in foreign-key order).

    A batch keeps only the latest image of each row: PostgreSQL refuses to upsert one row twice in a statement, and
    the images are full rows, so the latest one alone gives the same end state.
    """
    stats = ApplyStats()
    table_name: str | None = None
    batch: dict[int, dict[str, Any]] = {}
    for change in changes:
        if change.table != table_name or len(batch) >= batch_size:
            _write_batch(connection, table_name or change.table, batch)
            table_name, batch = change.table, {}
        key = change.row[ERP_KEYS[change.table]]
        batch.pop(key, None)
        batch[key] = change.row
        stats.counts[change.table, change.op] += 1
    if table_name is not None:
        _write_batch(connection, table_name, batch)
    return stats


def apply_day(engine: Engine, world: World, day: date, *, batch_size: int = DEFAULT_BATCH_SIZE) -> ApplyStats:
    """Apply the world's changes of ``day`` in one transaction. Idempotent; the schema must exist."""
    began = time.monotonic()
    with engine.begin() as connection:
        stats = _apply_changes(connection, world.erp_changes(day), batch_size)
    stats.days = 1
    log.info("ERP %s: applied %s in %.1f s", day, stats, time.monotonic() - began)
    return stats


def apply_range(
    engine: Engine, world: World, start: date, end: date, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> ApplyStats:
    """Apply the days in ``[start, end)`` (clipped to the world's range), one transaction per day, in order."""
    total = ApplyStats()
    for day in world.days(start, end):
        total.add(apply_day(engine, world, day, batch_size=batch_size))
    return total


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m medalflow_demo.erp",
        description="Create the demo ERP schema and apply the demo world's changes for the days [start, end).",
    )
    parser.add_argument(
        "--url",
        required=True,
        help="SQLAlchemy URL, e.g. sqlite:///erp.sqlite or postgresql+psycopg2://postgres@127.0.0.1:5432/erp",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = ~200 customers, ~150 orders a day")
    parser.add_argument(
        "--start", type=date.fromisoformat, default=None, help="first day to apply (default: --world-start)"
    )
    parser.add_argument(
        "--end", type=date.fromisoformat, default=None, help="day after the last one to apply (default: --start + 1)"
    )
    parser.add_argument(
        "--world-start",
        type=date.fromisoformat,
        default=None,
        help="the world's first day, where its history begins (default: --start, else 2026-01-01); keep it fixed "
        "across runs that apply successive days to the same database",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse_args(argv)
    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    world_start = options.world_start or options.start or DEFAULT_START_DATE
    start = options.start or world_start
    end = options.end or start + timedelta(days=1)
    if start < world_start:
        raise SystemExit(f"--start {start} is before --world-start {world_start}")
    world = generate(
        DemoConfig(
            seed=options.seed, scale=options.scale, start_date=world_start, end_date=max(end, start + timedelta(days=1))
        )
    )
    engine = make_engine(options.url)
    try:
        create_schema(engine)
        stats = apply_range(engine, world, start, end, batch_size=options.batch_size)
    finally:
        engine.dispose()
    log.info("done: %s", stats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
