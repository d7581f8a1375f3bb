"""The embedded demo: the whole pipeline through Airflow on DuckDB and a local lake, with no cloud account.

``make demo`` calls :func:`run_demo`: it prepares the source systems and an Airflow metadata database (PostgreSQL at
127.0.0.1:5432 when reachable, SQLite otherwise), then for each day of the window applies the ERP's changes, runs the
extraction DAG for that day and the medallion DAG for its interval (``dag.test``: real Airflow task runs, one after
another), and prints what it built.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from medalflow.settings import PROJECT_ROOT, get_settings
from medalflow_console import output_to_log, progress
from medalflow_demo.ui import remember_environment

log = logging.getLogger(__name__)

POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DEMO_DIR = PROJECT_ROOT / ".local"


@dataclass(frozen=True)
class DemoDatabases:
    """Where the demo keeps the Airflow metadata and the ERP: PostgreSQL when reachable, SQLite otherwise."""

    airflow_url: str
    erp_url: str
    erp_connection: str  # AIRFLOW_CONN_ value (JSON)

    @property
    def backend(self) -> str:
        return "PostgreSQL" if self.erp_url.startswith("postgresql") else "SQLite"


def postgres_reachable(admin_url: str = POSTGRES_ADMIN_URL) -> bool:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def recreate_postgres_database(name: str, admin_url: str = POSTGRES_ADMIN_URL) -> str:
    """Drop and create a database (the demo starts from scratch each time); returns its SQLAlchemy URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'drop database if exists "{name}" with (force)'))
        connection.execute(text(f'create database "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def prepare_databases(work_dir: Path, prefix: str = "medalflow_demo") -> DemoDatabases:
    import json

    if postgres_reachable():
        erp_url = recreate_postgres_database(f"{prefix}_erp")
        airflow_url = recreate_postgres_database(f"{prefix}_airflow")
        erp_connection = {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": 5432,
            "login": "postgres",
            "schema": f"{prefix}_erp",
        }
    else:
        erp_path, airflow_path = work_dir / "erp.sqlite", work_dir / "airflow.db"
        for path in (erp_path, airflow_path):
            path.unlink(missing_ok=True)
        erp_url, airflow_url = f"sqlite:///{erp_path}", f"sqlite:///{airflow_path}"
        erp_connection = {"conn_type": "sqlite", "host": str(erp_path)}
    return DemoDatabases(airflow_url, erp_url, json.dumps(erp_connection))


def configure_environment(databases: DemoDatabases, lake_dir: Path, warehouse: Path) -> dict[str, str]:
    """Point Airflow and medalflow at the demo's databases, lake and warehouse (before Airflow is imported); returns
    what it set."""
    environment = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": databases.airflow_url,
        "AIRFLOW_CONN_MEDALFLOW_ERP": databases.erp_connection,
        "MEDALFLOW_LAKE_URI": str(lake_dir),
        "MEDALFLOW_DUCKDB_PATH": str(warehouse),
        "MEDALFLOW_DBT_TARGET": "duckdb",
        "MEDALFLOW_TASK_RETRIES": "0",
    }
    os.environ.update(environment)
    return environment


def migrate_airflow_database() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=subprocess.DEVNULL)


def load_dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags")))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags


def run_dag(dag: Any, **kwargs: Any) -> None:
    """dag.test() and fail loudly: it returns the run instead of raising when a task fails."""
    from medalflow.watcher import sensors_follow_producer

    sensors_follow_producer(dag.tasks)  # dag.test() runs one task at a time: the producer must come first
    run = dag.test(**kwargs)
    state = str(getattr(run, "state", "")).lower()
    if not state.endswith("success"):
        raise RuntimeError(f"DAG {dag.dag_id} run {getattr(run, 'run_id', '?')} ended in state {state or 'unknown'}")


def extraction_logical_date(day: date) -> datetime:
    """The logical date of a manual run whose data interval is [day, day + 1).

    The daily data-interval timetable infers a manual run's interval as the day that ended at its logical date.
    """
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


EXTRACTION_DAGS = ("extract_erp", "extract_partner_api", "extract_file_drops")


def extract_window(days: list[date], dags: dict[str, Any], sources_change: Any) -> None:
    """Each day the sources change and the extraction DAGs land that day in the raw zone."""
    for number, day in enumerate(days, start=1):
        progress(f"day {number}/{len(days)}: {day} — sources change, then {', '.join(EXTRACTION_DAGS)}")
        sources_change(day)
        for dag_id in EXTRACTION_DAGS:
            run_dag(dags[dag_id], logical_date=extraction_logical_date(day))


def latest_weekly_run(day: date) -> datetime:
    """The latest Sunday 02:00 UTC on or before ``day``: when the weekly forecast extraction last ran."""
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)
    return datetime.combine(sunday, datetime.min.time(), UTC).replace(hour=2)


@contextmanager
def partner_api(world: Any) -> Generator[None]:
    """The demo partner API on a free local port, with its Airflow connection pointing at it."""
    import json

    from medalflow_demo.partner_api import DEFAULT_PASSWORD, DEFAULT_USERNAME, serve_in_background

    base_url, stop = serve_in_background(world=world)
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    connection = {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
    variable = "AIRFLOW_CONN_MEDALFLOW_PARTNER_API"
    previous = os.environ.get(variable)
    os.environ[variable] = json.dumps({**connection, "login": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD})
    try:
        yield
    finally:
        stop()
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous


def run_pipeline(dags: dict[str, Any], world: Any, window: list[date], erp_engine: Any, lake_dir: Path) -> None:
    """The whole pipeline over a window of days: the week's forecast first, then every day's sources and medallion."""
    from medalflow_demo import erp
    from medalflow_demo.files import write_file_drops

    def sources_change(day: date) -> None:
        erp.apply_day(erp_engine, world, day)
        write_file_drops(world, day, str(lake_dir / "inbox"))

    from medalflow.intervals import DataInterval, day_interval

    forecast_run = latest_weekly_run(window[0])
    with partner_api(world):
        progress("weekly forecast extraction (extract_forecast)")
        run_dag(dags["extract_forecast"], logical_date=forecast_run)
        extract_window(window, dags, sources_change)
    # One medallion run over everything that landed, as an asset-triggered run covers the union of its triggering
    # events' intervals: the forecast's week and every extracted day.
    forecast_week = dags["extract_forecast"].timetable.infer_manual_data_interval(run_after=forecast_run)
    build = DataInterval(min(forecast_week.start, day_interval(window[0]).start), day_interval(window[-1]).end)
    progress(f"medallion: bronze -> silver -> gold for [{build.start.date()}, {build.end.date()})")
    run_dag(dags["medallion"], run_conf=build.as_extra())


def summarise(warehouse: Path, lake_dir: Path, docs_dir: Path) -> str:
    import duckdb

    from medalflow.governance.consumer import consumer_database_path

    lines = ["", "medalflow demo: what it built", ""]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('bronze', 'silver', 'gold', 'observability') order by table_schema, table_name"
        ).fetchall()
        for schema, table in tables:
            (rows,) = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
            lines.append(f"  {schema:<13} {table:<32} {rows:>10,} rows")
        gold = [table for schema, table in tables if schema == "gold"]
        if gold:
            lines += ["", f"gold.{gold[0]} (first rows):", ""]
            preview = connection.execute(f'select * from gold."{gold[0]}" order by 1 limit 10')
            header = [column[0] for column in preview.description]
            rows = preview.fetchall()
            widths = [
                max(len(str(value)) for value in [name, *[row[i] for row in rows]]) for i, name in enumerate(header)
            ]
            lines.append("  " + "  ".join(name.ljust(width) for name, width in zip(header, widths, strict=True)))
            lines += ["  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    raw_files = sum(1 for _ in lake_dir.glob("raw/**/*.parquet"))
    published = sum(1 for _ in lake_dir.glob("_published/*/*.parquet"))
    lines += [
        "",
        f"  warehouse (DuckDB): {warehouse}",
        f"  consumers (gold):   {consumer_database_path(warehouse)}  (read-only, the gold schema only)",
        f"  lake (raw Parquet): {lake_dir} ({raw_files} files)",
        f"  dbt docs:           {docs_dir / 'index.html'}  (serve with `make docs-serve`)",
        f"  published (UI):     {lake_dir / '_published'} ({published} tables: observability and gold monthly); "
        "see them with `make ui`",
        "",
    ]
    return "\n".join(lines)


def run_demo(days: int = 3, start: str = "2026-01-05", scale: float = 1.0, seed: int = 42) -> int:
    from medalflow.dbt_commands import run_dbt
    from medalflow_demo import erp
    from medalflow_demo.world import DemoConfig, generate

    began = time.monotonic()
    first_day = date.fromisoformat(start)
    window = [first_day + timedelta(days=offset) for offset in range(days)]
    demo_dir = DEMO_DIR / "demo"
    lake_dir, warehouse = demo_dir / "lake", demo_dir / "warehouse.duckdb"

    progress("preparing the demo: lake, warehouse and databases start empty")
    shutil.rmtree(demo_dir, ignore_errors=True)
    lake_dir.mkdir(parents=True)
    log_path = demo_dir / "demo.log"
    progress(f"Airflow's and dbt's output goes to {log_path}")
    with output_to_log(log_path):
        databases = prepare_databases(demo_dir)
        remember_environment(demo_dir, configure_environment(databases, lake_dir, warehouse))  # for `make ui`
        progress(f"Airflow metadata and ERP on {databases.backend}; migrating Airflow's database")
        migrate_airflow_database()

        world = generate(
            DemoConfig(seed=seed, scale=scale, start_date=first_day, end_date=window[-1] + timedelta(days=1))
        )
        from sqlalchemy import create_engine

        erp_engine = create_engine(databases.erp_url)
        erp.create_schema(erp_engine)

        progress("loading the DAGs")
        dags = load_dags()
        run_pipeline(dags, world, window, erp_engine, lake_dir)
        progress("observability: the runs' records landed, modelled and published to the lake's _published/")
        run_dag(dags["observability"])
        erp_engine.dispose()

        progress("generating dbt docs")
        settings = get_settings()
        run_dbt(["docs", "generate"], settings)
    print(summarise(warehouse, lake_dir, settings.dbt_project_dir / "target"))
    progress(f"demo finished in {time.monotonic() - began:.0f} s")
    return 0
