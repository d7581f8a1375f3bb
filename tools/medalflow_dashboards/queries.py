"""The SQL of every Athena panel, in Athena's (Trino's) dialect.

Schemas are the dashboards' variables (``${gold_schema}``, ``${observability_schema}``: Grafana interpolates them
before the query reaches Athena) and time ranges the Athena data source's macros (``$__timeFilter(column)``,
``$__dateFilter(column)``). tests/dbt/test_dashboard_queries.py runs each of them, transpiled to DuckDB, against a demo
warehouse, so a panel never ships with a broken query.

Gold tables are those of dbt_project/models/gold; observability tables follow the observability contract
(dbt_project/models/observability): obs_dbt_invocations, obs_model_runs, obs_test_results, obs_extraction_runs,
obs_source_freshness.
"""

from __future__ import annotations

GOLD = "${gold_schema}"
OBS = "${observability_schema}"

# --- analytic: gold ---------------------------------------------------------------------------------------------------

MONTHLY_CASH_FLOW = f"""
SELECT CAST(month_start AS timestamp) AS time, inflow_brl, outflow_brl, net_cash_flow_brl
FROM {GOLD}.agg_monthly_cash_flow
WHERE $__dateFilter(month_start)
ORDER BY month_start
"""

MONTHLY_ORDERS = f"""
SELECT CAST(order_month AS timestamp) AS time, order_count, units_ordered, sales_brl
FROM {GOLD}.agg_monthly_orders
WHERE $__dateFilter(order_month)
ORDER BY order_month
"""

# Each forecast snapshot restates the months ahead: the latest snapshot is the plan to compare with.
FORECAST_VS_ACTUAL = f"""
SELECT CAST(forecast_month AS timestamp) AS time, base_brl, optimistic_brl, pessimistic_brl, actual_sales_brl
FROM {GOLD}.agg_monthly_forecast_vs_actual
WHERE snapshot_date = (SELECT max(snapshot_date) FROM {GOLD}.agg_monthly_forecast_vs_actual)
  AND $__dateFilter(forecast_month)
ORDER BY forecast_month
"""

# --- operational: the observability tables ----------------------------------------------------------------------------

RUNS_PER_DAY = f"""
SELECT date_trunc('day', started_at) AS time,
       sum(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS succeeded,
       sum(CASE WHEN status = 'success' THEN 0 ELSE 1 END) AS failed
FROM {OBS}.obs_dbt_invocations
WHERE $__timeFilter(started_at)
GROUP BY 1
ORDER BY 1
"""

SUCCESS_RATE = f"""
SELECT 100.0 * sum(CASE WHEN status = 'success' THEN 1 ELSE 0 END) / nullif(count(*), 0) AS success_rate_percent
FROM {OBS}.obs_dbt_invocations
WHERE $__timeFilter(started_at)
"""

RECENT_RUNS = f"""
SELECT started_at, dag_id, run_id, command, target_type, status, elapsed_seconds, nodes_total, nodes_failed
FROM {OBS}.obs_dbt_invocations
WHERE $__timeFilter(started_at)
ORDER BY started_at DESC
LIMIT 50
"""

SLOWEST_MODELS = f"""
SELECT model_name, layer, count(*) AS runs, avg(duration_seconds) AS avg_seconds, max(duration_seconds) AS max_seconds
FROM {OBS}.obs_model_runs
WHERE status = 'success' AND $__timeFilter(run_started_at)
GROUP BY model_name, layer
ORDER BY avg_seconds DESC
LIMIT 15
"""

MODEL_DURATION_TREND = f"""
SELECT date_trunc('day', run_started_at) AS time, layer, sum(duration_seconds) AS seconds
FROM {OBS}.obs_model_runs
WHERE $__timeFilter(run_started_at)
GROUP BY 1, 2
ORDER BY 1
"""

FAILING_TESTS = f"""
SELECT run_started_at, test_name, model_name, column_name, status, failures, message
FROM {OBS}.obs_test_results
WHERE status IN ('fail', 'error', 'warn') AND $__timeFilter(run_started_at)
ORDER BY run_started_at DESC
LIMIT 50
"""

SOURCE_FRESHNESS = f"""
SELECT source_name, table_name, max(checked_at) AS checked_at,
       max_by(age_hours, checked_at) AS age_hours, max_by(status, checked_at) AS status
FROM {OBS}.obs_source_freshness
WHERE $__timeFilter(checked_at)
GROUP BY source_name, table_name
ORDER BY age_hours DESC
"""

EXTRACTION_ROWS = f"""
SELECT date_trunc('day', started_at) AS time, source,
       sum(rows_landed) AS rows_landed, sum(rows_quarantined) AS rows_quarantined
FROM {OBS}.obs_extraction_runs
WHERE $__timeFilter(started_at)
GROUP BY 1, 2
ORDER BY 1
"""

# --- cost: Athena bytes scanned and their price (null off Athena, so DuckDB and Snowflake runs add nothing) -----------

COST_PER_DAY = f"""
SELECT date_trunc('day', started_at) AS time,
       sum(cost_usd) AS cost_usd, sum(bytes_scanned) / 1e9 AS gigabytes_scanned
FROM {OBS}.obs_dbt_invocations
WHERE bytes_scanned IS NOT NULL AND $__timeFilter(started_at)
GROUP BY 1
ORDER BY 1
"""

COST_PER_RUN = f"""
SELECT started_at, dag_id, run_id, command, bytes_scanned, cost_usd
FROM {OBS}.obs_dbt_invocations
WHERE bytes_scanned IS NOT NULL AND $__timeFilter(started_at)
ORDER BY cost_usd DESC
LIMIT 50
"""

COST_PER_MODEL = f"""
SELECT model_name, layer, count(*) AS runs, sum(bytes_scanned) AS bytes_scanned, sum(cost_usd) AS cost_usd,
       avg(cost_usd) AS avg_cost_usd_per_run
FROM {OBS}.obs_model_runs
WHERE bytes_scanned IS NOT NULL AND $__timeFilter(run_started_at)
GROUP BY model_name, layer
ORDER BY cost_usd DESC
LIMIT 20
"""
