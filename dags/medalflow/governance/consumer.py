"""The gold-only consumer on the embedded default (DuckDB).

DuckDB has no roles or grants: whoever opens the warehouse file reads bronze's personal data in clear. So consumers
(BI tools, notebooks, ML jobs) get a file of their own, ``<warehouse dir>/consumer/medalflow_gold.duckdb``,
holding the gold schema and nothing else, opened read-only. It is rewritten after each dbt invocation that built a
gold model (a callback of the medallion's dbt tasks, so the demo's run too) into a temporary file and swapped in, so
a reader never sees half a copy.

On Athena and Snowflake the same boundary is a role: the consumer role of infra/governance.yaml (Lake Formation
grants on gold) and dbt's ``grants`` on gold (Snowflake), see README "Find, trace and protect data".
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

GOLD_SCHEMA = "gold"

log = logging.getLogger(__name__)


def consumer_database_path(warehouse: str | Path) -> Path:
    """Where the consumer's copy of the warehouse ``warehouse`` lives: ``<its folder>/consumer/medalflow_gold.duckdb``
    (not gold.duckdb: DuckDB names the catalog after the file, and ``gold.<table>`` would be ambiguous)."""
    return Path(warehouse).resolve().parent / "consumer" / f"medalflow_{GOLD_SCHEMA}.duckdb"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def publish_gold_for_consumers(warehouse: str | Path, target: str | Path | None = None) -> dict[str, int]:
    """Copy the warehouse's gold tables (rows, and the table and column comments dbt persisted) into the consumer
    file; returns each table's row count. Fails, naming the file, when the warehouse has no gold schema."""
    warehouse = Path(warehouse)
    destination = Path(target) if target else consumer_database_path(warehouse)
    if not warehouse.is_file():
        raise FileNotFoundError(f"The DuckDB warehouse {warehouse} does not exist: build it first (make demo)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    building = destination.with_name(f".{destination.name}.building")
    building.unlink(missing_ok=True)
    import duckdb

    counts: dict[str, int] = {}
    with duckdb.connect(str(building)) as connection:
        connection.execute(f"attach {_literal(str(warehouse))} as warehouse (read_only)")
        tables = connection.execute(
            "select table_name, comment from duckdb_tables() where database_name = 'warehouse' and schema_name = ? "
            "order by table_name",
            [GOLD_SCHEMA],
        ).fetchall()
        if not tables:
            raise ValueError(f"The DuckDB warehouse {warehouse} has no {GOLD_SCHEMA} table: run the medallion first")
        # Fully qualified: the consumer file's own catalog may be called gold too.
        (catalog,) = connection.execute("select current_database()").fetchone()  # type: ignore[misc]
        connection.execute(f"create schema {_quoted(catalog)}.{GOLD_SCHEMA}")
        for table, comment in tables:
            name = f"{_quoted(catalog)}.{GOLD_SCHEMA}.{_quoted(table)}"
            connection.execute(f"create table {name} as select * from warehouse.{GOLD_SCHEMA}.{_quoted(table)}")
            if comment:
                connection.execute(f"comment on table {name} is {_literal(comment)}")
            columns = connection.execute(
                "select column_name, comment from duckdb_columns() where database_name = 'warehouse' "
                "and schema_name = ? and table_name = ? and comment is not null",
                [GOLD_SCHEMA, table],
            ).fetchall()
            for column, column_comment in columns:
                connection.execute(f"comment on column {name}.{_quoted(column)} is {_literal(column_comment)}")
            (counts[table],) = connection.execute(f"select count(*) from {name}").fetchone()  # type: ignore[misc]
        connection.execute("detach warehouse")
    os.replace(building, destination)
    return counts


def open_consumer_database(path: str | Path) -> duckdb.DuckDBPyConnection:
    """The consumer's connection: read-only, to the gold-only file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"No consumer database at {path}: the medallion writes it after each build")
    import duckdb

    return duckdb.connect(str(path), read_only=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def built_gold(target_dir: Path) -> bool:
    """Whether the dbt invocation whose artifacts are in ``target_dir`` built a gold model successfully."""
    try:
        results = json.loads((target_dir / "run_results.json").read_text())["results"]
        nodes = json.loads((target_dir / "manifest.json").read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        return False
    return any(
        result.get("status") == "success" and nodes.get(result["unique_id"], {}).get("schema") == GOLD_SCHEMA
        for result in results
    )


def publish_after_dbt(project_dir: str | Path, context: Any = None, **_: Any) -> dict[str, int] | None:
    """Cosmos ``callback`` of the medallion's dbt tasks (after every dbt invocation, with its temporary project
    folder): on DuckDB, once gold was built, rewrite the consumers' file. A failure fails the task: consumers must not
    read a stale gold without anyone knowing.

    The copy runs in dbt's virtualenv, next to ``MEDALFLOW_DBT_EXECUTABLE``: DuckDB is the embedded target's library
    and lives there, not in Airflow's environment (MWAA's requirements and the compose image do not install it)."""
    from medalflow.settings import get_settings

    settings = get_settings()
    if settings.dbt_target != "duckdb" or not built_gold(Path(project_dir) / "target"):
        return None
    python = Path(settings.dbt_executable).with_name("python")
    completed = subprocess.run(
        [str(python), __file__, settings.duckdb_path], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"Copying gold to the consumers' file {consumer_database_path(settings.duckdb_path)} failed "
            f"(with {python}): {completed.stderr.strip()[-2000:]}"
        )
    counts = json.loads(completed.stdout)
    log.info("gold for consumers: %s (%d tables)", consumer_database_path(settings.duckdb_path), len(counts))
    return counts


if __name__ == "__main__":
    # python consumer.py <warehouse.duckdb>: the copy, in an interpreter that has DuckDB; prints each table's rows.
    print(json.dumps(publish_gold_for_consumers(sys.argv[1])))
