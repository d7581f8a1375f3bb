"""Every SQL panel of the Grafana dashboards (tools/medalflow_dashboards) runs against a demo DuckDB warehouse.

The panels are written in Athena's dialect (Trino) with the Athena data source's macros and the dashboards' schema
variables. Here each one is made concrete as Grafana and the plugin would (variables interpolated, ``$__timeFilter`` and
``$__dateFilter`` expanded over a fixed range), parsed as Trino, transpiled to DuckDB with sqlglot and run on a copy of
the full build's warehouse: a misspelt column, a missing table or a function neither dialect knows fails here, not on a
dashboard.

The observability tables are dbt's (dbt_project/models/observability) when the build made them; otherwise they are
created with the observability contract's columns (docs in dbt_project and the contract). Either way a few rows,
Athena runs included (bytes and cost filled), are inserted by column name, so every panel has data to return.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime

import duckdb
import pytest
import sqlglot

from medalflow_dashboards.dashboards import athena_queries, build_all

pytestmark = pytest.mark.integration

RANGE_FROM, RANGE_TO = datetime(2025, 1, 1), datetime(2027, 1, 1)
SCHEMAS = {"${gold_schema}": "gold", "${observability_schema}": "observability"}

# The observability contract (issue 14): table -> column -> DuckDB type.
CONTRACT = {
    "obs_dbt_invocations": {
        "invocation_id": "varchar", "dag_id": "varchar", "run_id": "varchar", "task_id": "varchar",
        "try_number": "integer", "command": "varchar", "target_type": "varchar", "started_at": "timestamp",
        "completed_at": "timestamp", "elapsed_seconds": "double", "nodes_total": "integer", "nodes_failed": "integer",
        "status": "varchar", "bytes_scanned": "bigint", "cost_usd": "double",
    },
    "obs_model_runs": {
        "model_run_id": "varchar", "invocation_id": "varchar", "dag_id": "varchar", "run_id": "varchar",
        "run_started_at": "timestamp", "unique_id": "varchar", "model_name": "varchar", "layer": "varchar",
        "materialization": "varchar", "status": "varchar", "started_at": "timestamp", "completed_at": "timestamp",
        "duration_seconds": "double", "rows_affected": "bigint", "bytes_scanned": "bigint", "cost_usd": "double",
    },
    "obs_test_results": {
        "test_result_id": "varchar", "invocation_id": "varchar", "dag_id": "varchar", "run_id": "varchar",
        "run_started_at": "timestamp", "unique_id": "varchar", "test_name": "varchar", "model_name": "varchar",
        "column_name": "varchar", "status": "varchar", "failures": "bigint", "message": "varchar",
    },
    "obs_extraction_runs": {
        "extraction_run_id": "varchar", "dag_id": "varchar", "run_id": "varchar", "try_number": "integer",
        "source": "varchar", "entity": "varchar", "interval_start": "timestamp", "interval_end": "timestamp",
        "started_at": "timestamp", "completed_at": "timestamp", "duration_seconds": "double",
        "rows_landed": "bigint", "rows_quarantined": "bigint", "status": "varchar",
    },
    "obs_source_freshness": {
        "freshness_check_id": "varchar", "invocation_id": "varchar", "checked_at": "timestamp",
        "source_name": "varchar", "table_name": "varchar", "max_loaded_at": "timestamp", "age_hours": "double",
        "status": "varchar",
    },
}  # fmt: skip

# Two dbt invocations (one on Athena, with bytes and cost; one failed on DuckDB) and what they recorded.
SAMPLE_ROWS = {
    "obs_dbt_invocations": [
        "SELECT 'inv-1' AS invocation_id, 'medallion' AS dag_id, 'run-1' AS run_id, 'dbt_build' AS task_id, "
        "1 AS try_number, 'build' AS command, 'athena' AS target_type, TIMESTAMP '2026-01-08 06:00:00' AS started_at, "
        "TIMESTAMP '2026-01-08 06:04:00' AS completed_at, 240.0 AS elapsed_seconds, 40 AS nodes_total, "
        "0 AS nodes_failed, 'success' AS status, 52428800 AS bytes_scanned, 0.00025 AS cost_usd",
        "SELECT 'inv-2' AS invocation_id, 'medallion' AS dag_id, 'run-2' AS run_id, 'dbt_build' AS task_id, "
        "1 AS try_number, 'build' AS command, 'duckdb' AS target_type, TIMESTAMP '2026-01-09 06:00:00' AS started_at, "
        "TIMESTAMP '2026-01-09 06:02:00' AS completed_at, 120.0 AS elapsed_seconds, 40 AS nodes_total, "
        "1 AS nodes_failed, 'error' AS status, NULL AS bytes_scanned, NULL AS cost_usd",
    ],
    "obs_model_runs": [
        "SELECT 'inv-1.model.medalflow.agg_monthly_orders' AS model_run_id, 'inv-1' AS invocation_id, "
        "'medallion' AS dag_id, 'run-1' AS run_id, TIMESTAMP '2026-01-08 06:00:00' AS run_started_at, "
        "'model.medalflow.agg_monthly_orders' AS unique_id, 'agg_monthly_orders' AS model_name, 'gold' AS layer, "
        "'table' AS materialization, 'success' AS status, TIMESTAMP '2026-01-08 06:03:00' AS started_at, "
        "TIMESTAMP '2026-01-08 06:03:20' AS completed_at, 20.0 AS duration_seconds, 12 AS rows_affected, "
        "10485760 AS bytes_scanned, 0.00005 AS cost_usd",
        "SELECT 'inv-2.model.medalflow.slv_orders' AS model_run_id, 'inv-2' AS invocation_id, "
        "'medallion' AS dag_id, 'run-2' AS run_id, TIMESTAMP '2026-01-09 06:00:00' AS run_started_at, "
        "'model.medalflow.slv_orders' AS unique_id, 'slv_orders' AS model_name, 'silver' AS layer, "
        "'incremental' AS materialization, 'error' AS status, TIMESTAMP '2026-01-09 06:01:00' AS started_at, "
        "TIMESTAMP '2026-01-09 06:01:05' AS completed_at, 5.0 AS duration_seconds, NULL AS rows_affected, "
        "NULL AS bytes_scanned, NULL AS cost_usd",
    ],
    "obs_test_results": [
        "SELECT 'inv-2.test.medalflow.not_null_slv_orders_order_id' AS test_result_id, 'inv-2' AS invocation_id, "
        "'medallion' AS dag_id, 'run-2' AS run_id, TIMESTAMP '2026-01-09 06:00:00' AS run_started_at, "
        "'test.medalflow.not_null_slv_orders_order_id' AS unique_id, 'not_null_slv_orders_order_id' AS test_name, "
        "'slv_orders' AS model_name, 'order_id' AS column_name, 'fail' AS status, 3 AS failures, "
        "'Got 3 results, configured to fail if != 0' AS message",
    ],
    "obs_extraction_runs": [
        "SELECT 'extract_erp.run-1.1.orders' AS extraction_run_id, 'extract_erp' AS dag_id, 'run-1' AS run_id, "
        "1 AS try_number, 'erp' AS source, 'orders' AS entity, TIMESTAMP '2026-01-08 00:00:00' AS interval_start, "
        "TIMESTAMP '2026-01-09 00:00:00' AS interval_end, TIMESTAMP '2026-01-09 00:05:00' AS started_at, "
        "TIMESTAMP '2026-01-09 00:05:30' AS completed_at, 30.0 AS duration_seconds, 120 AS rows_landed, "
        "2 AS rows_quarantined, 'success' AS status",
    ],
    "obs_source_freshness": [
        "SELECT 'inv-1.source.medalflow.erp.orders' AS freshness_check_id, 'inv-1' AS invocation_id, "
        "TIMESTAMP '2026-01-08 06:00:00' AS checked_at, 'erp' AS source_name, 'orders' AS table_name, "
        "TIMESTAMP '2026-01-08 00:05:00' AS max_loaded_at, 5.9 AS age_hours, 'pass' AS status",
    ],
}

# Panels of gold data: the demo build must give them rows (the observability panels get the sample rows).
GOLD_TABLES = {"agg_monthly_cash_flow", "agg_monthly_orders", "agg_monthly_forecast_vs_actual"}


def concrete(sql: str) -> str:
    """The query as Athena receives it: variables interpolated, the Athena data source's macros expanded as its
    backend does (grafana/athena-datasource, pkg/athena/macros.go: ``col BETWEEN TIMESTAMP '...' AND TIMESTAMP '...'``,
    ``col BETWEEN date '...' AND date '...'``)."""
    for variable, schema in SCHEMAS.items():
        sql = sql.replace(variable, schema)
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: (
            f"{m.group(1)} BETWEEN TIMESTAMP '{RANGE_FROM:%Y-%m-%d %H:%M:%S}' "
            f"AND TIMESTAMP '{RANGE_TO:%Y-%m-%d %H:%M:%S}'"
        ),
        sql,
    )
    sql = re.sub(
        r"\$__dateFilter\(([^)]+)\)",
        lambda m: f"{m.group(1)} BETWEEN date '{RANGE_FROM:%Y-%m-%d}' AND date '{RANGE_TO:%Y-%m-%d}'",
        sql,
    )
    assert "$" not in sql, f"an unexpanded variable or macro in {sql}"
    return sql


@pytest.fixture(scope="module")
def demo_warehouse(full_refresh, tmp_path_factory):
    """A copy of the full build's warehouse, with the observability tables and their sample rows."""
    dbt, _ = full_refresh
    path = tmp_path_factory.mktemp("dashboards") / "warehouse.duckdb"
    shutil.copy(dbt.warehouse, path)
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS observability")
        existing = {
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'observability'"
            ).fetchall()
        }
        for table, columns in CONTRACT.items():
            if table not in existing:
                listed = ", ".join(f"{name} {kind}" for name, kind in columns.items())
                connection.execute(f"CREATE TABLE observability.{table} ({listed})")
            for row in SAMPLE_ROWS[table]:
                connection.execute(f"INSERT INTO observability.{table} BY NAME ({row})")
    return path


PANELS = [
    pytest.param(dashboard, title, sql, id=f"{dashboard}: {title}")
    for dashboard, model in build_all().items()
    for title, sql in athena_queries(model)
]


def test_every_dashboard_has_sql_panels_to_check() -> None:
    assert {dashboard for dashboard, *_ in (p.values for p in PANELS)} == {"analytic", "operational", "cost"}
    assert len(PANELS) >= 14


@pytest.mark.parametrize(("dashboard", "title", "sql"), PANELS)
def test_the_panel_query_runs_on_the_demo_warehouse(demo_warehouse, dashboard: str, title: str, sql: str) -> None:
    athena_sql = concrete(sql)
    parsed = sqlglot.parse_one(athena_sql, read="trino")  # Athena engine 3 is Trino: it must parse as Trino
    tables = {table.name for table in parsed.find_all(sqlglot.exp.Table)}
    duckdb_sql = sqlglot.transpile(athena_sql, read="trino", write="duckdb")[0]
    with duckdb.connect(str(demo_warehouse), read_only=True) as connection:
        cursor = connection.execute(duckdb_sql)
        columns = [description[0] for description in cursor.description]
        rows = cursor.fetchall()
    assert rows, f"{dashboard} / {title}: no rows from {duckdb_sql}"
    assert len(columns) == len(set(columns)), columns
    if "time" in columns:
        # Grafana's time series format: a time column, ascending, and numeric values.
        assert columns[0] == "time"
        times = [row[0] for row in rows]
        assert times == sorted(times)
        assert all(isinstance(t, datetime) for t in times), f"{title}: time is {type(times[0])}"
    if tables & GOLD_TABLES:
        assert dashboard == "analytic"
