"""The medalflow stack in a running Airflow, shared by the live (tests/live) and browser (tests/e2e) tests.

One instance per test session: the demo ERP on PostgreSQL, a lake folder and a DuckDB warehouse, and the four Airflow
services pointed at them (see airflow_services.py). The first test module that asks starts it, the last one to
finish stops it; both directories' conftest.py files import this same module (``live_medalflow``), so they share it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from airflow_services import AirflowClient, AirflowServices

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIRST_DAY = date(2026, 1, 5)
DUCKDB_POOL = "duckdb_writer"
LOGS_KEPT_IN = PROJECT_ROOT / ".local" / "live-airflow-logs"


@dataclass(frozen=True)
class DayBuild:
    extraction_run_id: str
    medallion_run_id: str


@dataclass
class LiveMedalflow:
    services: AirflowServices
    client: AirflowClient
    work_dir: Path
    erp_url: str
    users: int = 0
    _world: object | None = field(default=None, repr=False)
    _listening: bool = False
    _days_built: dict[date, DayBuild] = field(default_factory=dict)

    @property
    def warehouse(self) -> Path:
        return self.work_dir / "warehouse.duckdb"

    @property
    def lake(self) -> Path:
        return self.work_dir / "lake"

    @property
    def docs_dir(self) -> Path:
        return self.lake / "_docs" / "dbt"

    def world(self):
        from medalflow_demo.world import DemoConfig, generate

        if self._world is None:
            self._world = generate(
                DemoConfig(seed=11, scale=0.2, start_date=FIRST_DAY, end_date=FIRST_DAY + timedelta(days=14))
            )
        return self._world

    def apply_erp_day(self, day: date) -> None:
        from medalflow_demo import erp

        engine = erp.make_engine(self.erp_url)
        try:
            erp.apply_day(engine, self.world(), day)
        finally:
            engine.dispose()

    def describe_task(self, dag_id: str) -> Callable[[str, str], str]:
        return lambda run_id, task_id: f"--- log of {task_id}\n" + self.services.task_logs(dag_id, run_id, task_id)

    def run_extraction(self, day: date, timeout: float = 240) -> str:
        """Trigger extract_erp for one day from the Trigger form, and wait for it.

        The day goes in the run's conf and the logical date stays empty (docs/operations.md): a manual run with a
        logical date X covers the day before X, and would take the logical date a backfill gives the day of X itself,
        so a later backfill over X would rerun this run (and its interval) instead of extracting X.
        """
        start = datetime.combine(day, datetime.min.time(), UTC)
        conf = {"data_interval_start": start.isoformat(), "data_interval_end": (start + timedelta(days=1)).isoformat()}
        run_id = self.client.trigger("extract_erp", conf=conf)
        self.client.wait_for_run("extract_erp", run_id, timeout=timeout, describe=self.describe_task("extract_erp"))
        return run_id

    def listen_to_assets(self) -> None:
        """extract_erp and medallion unpaused, as in production; once per session.

        Unpausing extract_erp starts its own scheduled run at once (yesterday, an interval with no ERP changes): it
        runs to the end while medallion is still paused, so it starts no medallion run of its own.
        """
        if self._listening:
            return
        self.client.set_paused("medallion", True)
        self.client.set_paused("extract_erp", False)
        scheduled = self.client.wait_for_new_run("extract_erp", "scheduled", known=[])
        self.client.wait_for_run("extract_erp", scheduled["dag_run_id"], describe=self.describe_task("extract_erp"))
        self.client.set_paused("medallion", False)
        self._listening = True

    def build_day_through_assets(self, day: date) -> DayBuild:
        """The ERP's changes of a day, extracted; the medallion run they start by themselves, finished. Once per day
        per session, whichever test asks first (the live and browser tests look at the same build)."""
        if day not in self._days_built:
            self.listen_to_assets()
            known = [run["dag_run_id"] for run in self.client.runs("medallion")]
            self.apply_erp_day(day)
            extraction = self.run_extraction(day)
            run = self.client.wait_for_new_run("medallion", "asset_triggered", known=known)
            self.client.wait_for_run(
                "medallion", run["dag_run_id"], timeout=420, describe=self.describe_task("medallion")
            )
            self._days_built[day] = DayBuild(extraction, run["dag_run_id"])
        return self._days_built[day]

    def gold_monthly_orders(self) -> list[tuple]:
        import duckdb

        with duckdb.connect(str(self.warehouse), read_only=True) as warehouse:
            return warehouse.execute(
                "select order_month, order_count, units_ordered, sales_brl from gold.agg_monthly_orders order by 1"
            ).fetchall()

    def expected_monthly_orders(self) -> list[tuple]:
        """The gold aggregate computed independently, straight from the ERP's current state."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.erp_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "select cast(date_trunc('month', order_date) as date), count(*), sum(quantity), "
                    "sum(sale_amount_brl) from orders where deleted_at is null and status <> 'cancelled' "
                    "group by 1 order by 1"
                )
            ).fetchall()
        engine.dispose()
        return [(month, count, int(units), Decimal(sales)) for month, count, units, sales in rows]


_shared: LiveMedalflow | None = None


def _create_erp_schema(erp_url: str) -> None:
    """The ERP's (empty) tables exist before Airflow starts: extract_erp's own scheduled run reads them at once."""
    from medalflow_demo import erp

    engine = erp.make_engine(erp_url)
    erp.create_schema(engine)
    engine.dispose()


def acquire(postgres_database: Callable[[str], str]) -> LiveMedalflow:
    """The session's running stack, started on first use."""
    global _shared
    if _shared is None:
        _shared = _start(postgres_database)
    _shared.users += 1
    return _shared


def release() -> None:
    global _shared
    if _shared is None:
        return
    _shared.users -= 1
    if _shared.users == 0:
        services = _shared.services
        services.stop()
        leftovers = services.orphans()
        # The services' and tasks' logs outlive the session for inspection; the rest (lake, warehouse) goes.
        shutil.rmtree(LOGS_KEPT_IN, ignore_errors=True)
        shutil.copytree(_shared.services.log_dir, LOGS_KEPT_IN)
        shutil.rmtree(_shared.work_dir, ignore_errors=True)
        _shared = None
        # Teardown fails the session when a process outlived stop(): an orphan would hold ports and DuckDB locks.
        for process in leftovers:
            process.kill()
        if leftovers:
            raise RuntimeError(f"processes outlived the Airflow services: {[p.pid for p in leftovers]}")


def _start(postgres_database: Callable[[str], str]) -> LiveMedalflow:
    work_dir = Path(tempfile.mkdtemp(prefix="medalflow-live-"))
    erp_url = postgres_database("live_erp")
    _create_erp_schema(erp_url)
    erp_database = erp_url.rsplit("/", 1)[1]
    erp_connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres"}
    services = AirflowServices(
        home=work_dir / "airflow",
        database_url=postgres_database("live_airflow"),
        extra_env={
            "AIRFLOW_CONN_MEDALFLOW_ERP": json.dumps({**erp_connection, "schema": erp_database}),
            "MEDALFLOW_LAKE_URI": str(work_dir / "lake"),
            "MEDALFLOW_DUCKDB_PATH": str(work_dir / "warehouse.duckdb"),
            "MEDALFLOW_DBT_TARGET": "duckdb",
            "MEDALFLOW_DBT_EXECUTABLE": os.getenv("MEDALFLOW_DBT_EXECUTABLE", str(PROJECT_ROOT / ".venv/dbt/bin/dbt")),
            "MEDALFLOW_DUCKDB_POOL": DUCKDB_POOL,
            "MEDALFLOW_COSMOS_EXECUTION_MODE": os.getenv("MEDALFLOW_COSMOS_EXECUTION_MODE", "watcher"),
            # Only the ERP is extracted here (the other sources need their demo servers): the medallion starts on its
            # Assets alone, and freshness checks it alone.
            "MEDALFLOW_MEDALLION_SOURCES": "erp",
            "MEDALFLOW_FRESHNESS_SELECT": "source:erp",
        },
    )
    began = time.monotonic()
    services.start()
    try:
        client = AirflowClient(services.base_url, "medalflow", services.password)
        client.ensure_pool(DUCKDB_POOL, 1, "DuckDB allows one writer: every dbt process takes this slot")
        client.wait_for_dags(["extract_erp", "medallion", "maintenance"])
    except BaseException:
        services.stop()
        raise
    print(f"live Airflow up at {services.base_url} in {time.monotonic() - began:.0f} s (home {services.home})")
    return LiveMedalflow(services, client, work_dir, erp_url)
