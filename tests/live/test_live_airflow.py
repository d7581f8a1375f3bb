"""Tier 3 in a running Airflow: api-server, scheduler, dag-processor and triggerer on PostgreSQL (LocalExecutor).

Everything goes through the REST API v2 as the UI does. Extraction of a day lands raw Parquet and announces it on the
raw Assets; the medallion DAG then starts by itself and builds the interval carried in the asset events (Cosmos watcher
mode, the default: one dbt build, one task per model). Gold is checked against the same aggregate computed straight
from the ERP. Then a backfill over two more days (extraction backfilled, one medallion run from the Trigger form with
the interval in its conf) must give the same gold tables as daily runs.
"""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from live_medalflow import FIRST_DAY, PROJECT_ROOT

pytestmark = pytest.mark.integration

DAY_1 = FIRST_DAY


def interval_of(day) -> dict[str, str]:
    return {
        "data_interval_start": f"{day}T00:00:00+00:00",
        "data_interval_end": f"{day + timedelta(days=1)}T00:00:00+00:00",
    }


def resolved_interval(client, run_id: str) -> dict[str, str]:
    """The interval dbt was given: the producer's environment as rendered for the run (the UI's Rendered tab)."""
    producer = client.get(f"dags/medallion/dagRuns/{run_id}/taskInstances/dbt.dbt_producer_watcher")
    environment = producer["rendered_fields"]["env"]
    return {key: environment[f"MEDALFLOW_{key.upper()}"] for key in ("data_interval_start", "data_interval_end")}


def test_extraction_starts_the_medallion_through_assets(live):
    client = live.client
    build = live.build_day_through_assets(DAY_1)
    extraction, run = build.extraction_run_id, client.get(f"dags/medallion/dagRuns/{build.medallion_run_id}")
    assert run["run_type"] == "asset_triggered"

    # The run processed the interval its triggering asset events carry: the union of their extras, which includes
    # this extraction's day (the first asset-triggered run also consumes extract_erp's own scheduled run's events).
    triggering = client.get(f"dags/medallion/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")["asset_events"]
    assert {(event["source_dag_id"], event["source_run_id"]) for event in triggering} >= {("extract_erp", extraction)}
    carried = [event["extra"] for event in triggering]
    assert interval_of(DAY_1) in [{key: extra[key] for key in interval_of(DAY_1)} for extra in carried]
    assert resolved_interval(client, run["dag_run_id"]) == {
        "data_interval_start": min(extra["data_interval_start"] for extra in carried),
        "data_interval_end": max(extra["data_interval_end"] for extra in carried),
    }
    model_tasks = [ti for ti in client.task_instances("medallion", run["dag_run_id"]) if ti["task_id"].endswith(".run")]
    assert len(model_tasks) >= 3
    assert {ti["state"] for ti in model_tasks} == {"success"}
    with duckdb.connect(str(live.warehouse), read_only=True) as warehouse:
        bronze_days = warehouse.execute("select distinct ingestion_date from bronze.brz_erp__orders").fetchall()
    assert bronze_days == [(DAY_1,)]
    expected = live.expected_monthly_orders()
    assert expected, "the demo ERP produced no live orders"
    assert live.gold_monthly_orders() == expected


# Backfill (docs/operations.md): after the daily path above, in the same running Airflow. The ERP's days 2 and 3 are
# re-extracted by an Airflow backfill of extract_erp (REST API, one run per day) while medallion is paused, then one
# medallion run covering both days is triggered from the Trigger form (the interval in its conf). Its gold tables must
# equal, row for row, those of dbt run once per day (days 1, 2, 3) over the same raw zone into a warehouse of its own.

BACKFILLED = [FIRST_DAY + timedelta(days=1), FIRST_DAY + timedelta(days=2)]


def interval(start, end) -> dict[str, str]:
    return {"data_interval_start": f"{start}T00:00:00+00:00", "data_interval_end": f"{end}T00:00:00+00:00"}


def dbt_build_per_day(live, warehouse, days) -> None:
    """dbt alone, one build per day, as the daily medallion runs do (same project, profile, lake)."""
    environment = {
        **os.environ,
        "MEDALFLOW_LAKE_URI": str(live.lake),
        "MEDALFLOW_DUCKDB_PATH": str(warehouse),
        "MEDALFLOW_DBT_TARGET": "duckdb",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        # As the medallion's dbt gets it on a laptop (DuckDB over a local lake): silver's PII hashed with the demo key.
        "MEDALFLOW_PII_ALLOW_DEMO_KEY": "true",
    }
    for day in days:
        command = [
            os.getenv("MEDALFLOW_DBT_EXECUTABLE", str(PROJECT_ROOT / ".venv/dbt/bin/dbt")),
            "build",
            "--project-dir",
            str(PROJECT_ROOT / "dbt_project"),
            "--profiles-dir",
            str(PROJECT_ROOT / "profiles"),
            "--target-path",
            str(warehouse.parent / "dbt-target"),
            # The models only: what is compared is the tables they build, whatever the data tests say of one day.
            "--exclude",
            "resource_type:test",
            "resource_type:unit_test",
        ]
        # The interval as the medallion passes it: environment variables (see dags/medalflow/medallion.py).
        bounds = {f"MEDALFLOW_{key.upper()}": value for key, value in interval(day, day + timedelta(days=1)).items()}
        completed = subprocess.run(command, env={**environment, **bounds}, capture_output=True, text=True, check=False)
        assert completed.returncode == 0, f"dbt build for {day}:\n{completed.stdout[-4000:]}"


def gold_tables(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as warehouse:
        names = warehouse.execute(
            "select table_name from information_schema.tables where table_schema = 'gold' order by 1"
        ).fetchall()
        return {
            name: sorted(warehouse.execute(f'select * from gold."{name}"').fetchall(), key=repr) for (name,) in names
        }


def test_backfill_over_a_range_equals_the_daily_runs(live, tmp_path):
    client = live.client
    live.build_day_through_assets(FIRST_DAY)
    client.set_paused("medallion", True)  # the backfill's asset events must not start runs of their own
    for day in BACKFILLED:
        live.apply_erp_day(day)

    backfill = client.request(
        "POST",
        "backfills",
        json={
            "dag_id": "extract_erp",
            "from_date": datetime.combine(BACKFILLED[0], datetime.min.time(), UTC).isoformat(),
            "to_date": datetime.combine(BACKFILLED[-1], datetime.min.time(), UTC).isoformat(),
            "reprocess_behavior": "completed",
            "max_active_runs": 2,
        },
    )
    runs = [run for run in client.runs("extract_erp") if run["run_type"] == "backfill"]
    assert len(runs) == len(BACKFILLED), backfill
    for run in runs:
        client.wait_for_run("extract_erp", run["dag_run_id"], describe=live.describe_task("extract_erp"))

    client.set_paused("medallion", False)
    run_id = client.trigger("medallion", conf=interval(BACKFILLED[0], BACKFILLED[-1] + timedelta(days=1)))
    client.wait_for_run("medallion", run_id, timeout=420, describe=live.describe_task("medallion"))

    daily = tmp_path / "daily.duckdb"
    dbt_build_per_day(live, daily, [FIRST_DAY, *BACKFILLED])
    backfilled, day_by_day = gold_tables(live.warehouse), gold_tables(daily)
    assert set(backfilled) == set(day_by_day)
    assert "agg_monthly_orders" in backfilled
    for table, rows in day_by_day.items():
        assert backfilled[table] == rows, f"gold.{table} differs between the backfill and the daily runs"
    assert live.gold_monthly_orders() == live.expected_monthly_orders()


def test_a_cleared_model_task_reruns_its_model_alone(live):
    """docs/operations.md, "Rerunning one model": cleared after the build, a model's task runs that model itself.

    Its second try starts in the triggerer like the first, where the producer's results are still those of the
    build: it must not report them again but go to a worker and run ``dbt run --select <model>`` (Cosmos's fallback).
    """
    client = live.client
    run_id = live.build_day_through_assets(FIRST_DAY).medallion_run_id
    task_id = "dbt.models.gold.agg_monthly_orders.run"
    before = client.get(f"dags/medallion/dagRuns/{run_id}/taskInstances/{task_id}")
    assert before["state"] == "success"

    cleared = client.request(
        "POST",
        "dags/medallion/clearTaskInstances",
        json={"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "only_failed": False},
    )
    assert [ti["task_id"] for ti in cleared["task_instances"]] == [task_id]
    client.wait_for_run("medallion", run_id, timeout=300, describe=live.describe_task("medallion"))

    after = client.get(f"dags/medallion/dagRuns/{run_id}/taskInstances/{task_id}")
    assert after["state"] == "success"
    assert after["try_number"] == before["try_number"] + 1
    assert after["pool"] == "duckdb_writer", "its own dbt run waits for the warehouse's writer slot"
    second_try = live.services.task_logs("medallion", run_id, task_id).split("Retry attempt #", 1)
    assert len(second_try) == 2, "the second try did not fall back to running the model"
    assert "agg_monthly_orders" in second_try[1]
    # That one model, and nothing else: the summary counts the project's on-run-start hook too.
    assert re.search(r"OK created sql \w+ model gold\.agg_monthly_orders", second_try[1])
    assert len(re.findall(r"OK created sql \w+ model", second_try[1])) == 1
    assert re.search(r"Done\. PASS=\d+ WARN=0 ERROR=0", second_try[1])
    assert live.gold_monthly_orders() == live.expected_monthly_orders()
