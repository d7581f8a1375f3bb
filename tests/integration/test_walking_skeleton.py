"""Tier 3: the walking skeleton through the real stack.

The demo sources change day by day (the ERP on PostgreSQL, the partner API over HTTP, file drops in the lake's inbox);
Airflow runs the extraction DAGs for each day (raw Parquet in a lake folder) and the Cosmos-rendered medallion DAG
for its interval (dbt from its own virtualenv, one task per model, on DuckDB). Gold must equal the same aggregate
computed independently, straight from the ERP's final state.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest
from sqlalchemy import create_engine, text

from medalflow_demo import erp
from medalflow_demo.pipeline import load_dags, run_dag, run_pipeline
from medalflow_demo.world import DemoConfig, generate

pytestmark = pytest.mark.integration

FIRST_DAY = date(2026, 1, 5)
DAYS = [FIRST_DAY + timedelta(days=offset) for offset in range(3)]


def expected_monthly_orders(erp_url: str) -> list[tuple]:
    engine = create_engine(erp_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "select cast(date_trunc('month', order_date) as date), count(*), sum(quantity), sum(sale_amount_brl) "
                "from orders where deleted_at is null and status <> 'cancelled' group by 1 order by 1"
            )
        ).fetchall()
    engine.dispose()
    return [(month, count, int(units), Decimal(sales)) for month, count, units, sales in rows]


@pytest.fixture
def skeleton_environment(fresh_asset_registry, postgres_database, tmp_path, monkeypatch):
    erp_url = postgres_database("skeleton_erp")
    database = erp_url.rsplit("/", 1)[1]
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": database}
    monkeypatch.setenv("AIRFLOW_CONN_MEDALFLOW_ERP", json.dumps(connection))
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("MEDALFLOW_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("MEDALFLOW_DBT_TARGET", "duckdb")
    return erp_url, tmp_path


def test_erp_to_gold_through_airflow_and_cosmos(skeleton_environment):
    erp_url, work = skeleton_environment
    world = generate(DemoConfig(seed=7, scale=0.2, start_date=DAYS[0], end_date=DAYS[-1] + timedelta(days=1)))
    engine = create_engine(erp_url)
    erp.create_schema(engine)

    dags = load_dags()
    assert {"extract_erp", "medallion"} <= set(dags)
    model_tasks = [task.task_id for task in dags["medallion"].tasks if task.task_id.endswith(".run")]
    assert len(model_tasks) >= 3, "Cosmos renders one task per dbt model"

    run_pipeline(dags, world, DAYS, engine, work / "lake")
    engine.dispose()

    raw_days = sorted(path.name for path in (work / "lake/raw/erp/orders").iterdir())
    assert raw_days == [f"ingestion_date={day}" for day in DAYS]
    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as warehouse:
        gold = warehouse.execute(
            "select order_month, order_count, units_ordered, sales_brl from gold.agg_monthly_orders order by 1"
        ).fetchall()
        deleted_rows = warehouse.execute("select order_id from silver.slv_orders where is_deleted").fetchall()
        silver_deleted = {order_id for (order_id,) in deleted_rows}
        (silver_orders,) = warehouse.execute("select count(*) from silver.slv_orders").fetchone()
        # The weekly forecast landed before the window; the medallion run covering both must have built it.
        (forecast_projects,) = warehouse.execute("select count(*) from silver.slv_forecast_projects").fetchone()
    expected = expected_monthly_orders(erp_url)
    assert expected, "the demo ERP produced no live orders"
    assert gold == expected
    engine = create_engine(erp_url)
    with engine.connect() as connection:
        deleted_rows = connection.execute(text("select order_id from orders where deleted_at is not null")).fetchall()
        erp_deleted = {order_id for (order_id,) in deleted_rows}
        (erp_orders,) = connection.execute(text("select count(*) from orders")).fetchone()
    engine.dispose()
    assert silver_orders == erp_orders
    assert forecast_projects == len(world.forecast_projects()) > 0
    assert silver_deleted == erp_deleted

    # What `make demo` does next: the observability DAG lands the runs' records, models them and publishes them;
    # the medalflow page (plugins/medalflow_observability.py) then shows these runs and the gold charts.
    from medalflow.observability_page import page_data

    run_dag(dags["observability"])
    page = page_data(str(work / "lake" / "_published"))
    dbt_runs = [run for run in page["runs"] if run["dag_id"] == "medallion"]
    extraction_runs = {run["dag_id"] for run in page["runs"] if run["dag_id"].startswith("extract_")}
    assert [run["status"] for run in dbt_runs] == ["success"], page["runs"]
    assert {"extract_erp", "extract_partner_api", "extract_file_drops"} <= extraction_runs
    assert page["summary"]["failed_runs"] == 0
    assert page["summary"]["success_rate"] == 1
    assert page["target_types"] == ["duckdb"]
    assert not page["cost_available"]
    assert page["summary"]["cost_usd"] is None, "cost is Athena's: empty on DuckDB"
    assert page["slowest_models"]
    assert all(row["avg_seconds"] > 0 for row in page["slowest_models"])
    orders_chart = page["gold"]["orders"]
    assert orders_chart
    assert sum(orders_chart["order_count"]) == sum(count for _month, count, _units, _sales in gold)
