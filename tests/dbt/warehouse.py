"""Reading DuckDB warehouses built by the dbt tests, and comparing two of them table by table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

LAYERS = ("bronze", "silver", "gold")


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def tables(warehouse: Path, schemas: tuple[str, ...] = LAYERS) -> list[str]:
    listed = ", ".join(f"'{schema}'" for schema in schemas)
    rows = query(
        warehouse,
        f"select table_schema || '.' || table_name from information_schema.tables where table_schema in ({listed}) "
        "order by 1",
    )
    return [name for (name,) in rows]


def differences(left: Path, right: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    """Per table that differs: (rows only in left, rows only in right), as multisets (duplicates count)."""
    found = {}
    with duckdb.connect() as connection:
        connection.execute(f"attach '{left}' as lhs (read_only)")
        connection.execute(f"attach '{right}' as rhs (read_only)")
        for name in names:
            only_left, only_right = connection.execute(
                f"select (select count(*) from (select * from lhs.{name} except all select * from rhs.{name})), "
                f"(select count(*) from (select * from rhs.{name} except all select * from lhs.{name}))"
            ).fetchone()
            if only_left or only_right:
                found[name] = (only_left, only_right)
    return found
