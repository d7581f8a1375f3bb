"""Published observability tables made up for tests and the page's benchmark, with exactly the contract's columns.

``generate`` makes ``days`` days of a daily medallion build (one dbt build of the project's models and tests, then
source freshness) and the four extraction DAGs' daily runs, deterministic for a seed; ``write_published`` writes them
as the builds publish them, ``<lake>/_published/<model>/part-0.parquet``. What the page must show is there on purpose:
on the last day a model errors (and its DAG run fails), a test fails and another warns, a source is stale, and the
partner's payments quarantine records. ``target_type="athena"`` fills bytes_scanned and cost_usd, as dbt-athena does;
the other targets leave them null.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TIMESTAMP = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 2)
SCHEMAS = {
    "obs_dbt_invocations": pa.schema(
        [("invocation_id", pa.string()), ("dag_id", pa.string()), ("run_id", pa.string()), ("task_id", pa.string()),
         ("try_number", pa.int32()), ("command", pa.string()), ("target_type", pa.string()),
         ("started_at", TIMESTAMP), ("completed_at", TIMESTAMP), ("elapsed_seconds", pa.float64()),
         ("nodes_total", pa.int32()), ("nodes_failed", pa.int32()), ("status", pa.string()),
         ("bytes_scanned", pa.int64()), ("cost_usd", pa.float64())]
    ),
    "obs_model_runs": pa.schema(
        [("model_run_id", pa.string()), ("invocation_id", pa.string()), ("dag_id", pa.string()),
         ("run_id", pa.string()), ("run_started_at", TIMESTAMP), ("unique_id", pa.string()),
         ("model_name", pa.string()), ("layer", pa.string()), ("materialization", pa.string()),
         ("status", pa.string()), ("started_at", TIMESTAMP), ("completed_at", TIMESTAMP),
         ("duration_seconds", pa.float64()), ("rows_affected", pa.int64()), ("bytes_scanned", pa.int64()),
         ("cost_usd", pa.float64())]
    ),
    "obs_test_results": pa.schema(
        [("test_result_id", pa.string()), ("invocation_id", pa.string()), ("dag_id", pa.string()),
         ("run_id", pa.string()), ("run_started_at", TIMESTAMP), ("unique_id", pa.string()),
         ("test_name", pa.string()), ("model_name", pa.string()), ("column_name", pa.string()),
         ("status", pa.string()), ("failures", pa.int64()), ("message", pa.string())]
    ),
    "obs_extraction_runs": pa.schema(
        [("extraction_run_id", pa.string()), ("dag_id", pa.string()), ("run_id", pa.string()),
         ("try_number", pa.int32()), ("source", pa.string()), ("entity", pa.string()),
         ("interval_start", TIMESTAMP), ("interval_end", TIMESTAMP), ("started_at", TIMESTAMP),
         ("completed_at", TIMESTAMP), ("duration_seconds", pa.float64()), ("rows_landed", pa.int64()),
         ("rows_quarantined", pa.int64()), ("status", pa.string())]
    ),
    "obs_source_freshness": pa.schema(
        [("freshness_check_id", pa.string()), ("invocation_id", pa.string()), ("checked_at", TIMESTAMP),
         ("source_name", pa.string()), ("table_name", pa.string()), ("max_loaded_at", TIMESTAMP),
         ("age_hours", pa.float64()), ("status", pa.string())]
    ),
    "agg_monthly_cash_flow": pa.schema(
        [("month_start", pa.date32()), ("cash_year", pa.int32()), ("cash_month", pa.int32()),
         ("inflow_brl", MONEY), ("outflow_brl", MONEY), ("net_cash_flow_brl", MONEY),
         ("inbound_payment_count", pa.int64()), ("outbound_payment_count", pa.int64())]
    ),
    "agg_monthly_orders": pa.schema(
        [("order_month", pa.date32()), ("order_count", pa.int64()), ("units_ordered", pa.int64()),
         ("sales_brl", MONEY)]
    ),
    "agg_monthly_forecast_vs_actual": pa.schema(
        [("forecast_month", pa.date32()), ("project_count", pa.int64()), ("baseline_brl", MONEY),
         ("optimistic_brl", MONEY), ("base_brl", MONEY), ("pessimistic_brl", MONEY),
         ("actual_sales_brl", MONEY), ("snapshot_date", pa.date32())]
    ),
}  # fmt: skip

LAYERS = {"bronze": 12, "silver": 10, "gold": 6, "observability": 2}  # 30 models, as the demo project has about
EXTRACTIONS = {
    "extract_erp": ("erp", ["customers", "suppliers", "products", "orders", "order_items"]),
    "extract_files": ("files", ["shipments"]),
    "extract_forecast": ("forecast", ["projects", "baselines", "scenarios"]),
    "extract_partner": ("partner", ["payments", "fx_rates", "shipments"]),
}
SOURCES = [(source, entity) for source, entities in EXTRACTIONS.values() for entity in entities]
FAILING_MODEL = "slv_orders"
FAILING_TEST = "not_null_slv_payments_payment_id"
WARNING_TEST = "accepted_values_slv_shipments_status"
STALE_SOURCE = ("partner", "fx_rates")
QUARANTINING = ("partner", "payments")
ATHENA_PRICE_PER_TB = 5.0


@dataclass(frozen=True)
class Project:
    models: list[tuple[str, str, str]]  # (name, layer, materialization)
    tests: list[tuple[str, str, str | None]]  # (name, model, column)


def project(model_count: int = 30, test_count: int = 80) -> Project:
    names = {"bronze": "brz", "silver": "slv", "gold": "agg", "observability": "obs"}
    models: list[tuple[str, str, str]] = []
    for layer, count in LAYERS.items():
        count = max(1, round(count * model_count / 30))
        materialization = "view" if layer == "bronze" else "incremental" if layer != "gold" else "table"
        models += [(f"{names[layer]}_model_{index:02d}", layer, materialization) for index in range(count)]
    # The names the page's tests look for, in their layers.
    models[LAYERS["bronze"]] = (FAILING_MODEL, "silver", "incremental")
    models[LAYERS["bronze"] + 1] = ("slv_payments", "silver", "incremental")
    models[LAYERS["bronze"] + 2] = ("slv_shipments", "silver", "incremental")
    tests = [
        (f"{kind}_{model}_{column}", model, column)
        for model, _, _ in models
        for kind, column in (("not_null", "id"), ("unique", "id"), ("relationships", "ref_id"))
    ][: max(test_count - 2, 0)]
    tests += [(FAILING_TEST, "slv_payments", "payment_id"), (WARNING_TEST, "slv_shipments", "status")]
    return Project(models, tests)


def _cost(bytes_scanned: int) -> float:
    return max(bytes_scanned, 10 * 1024 * 1024) / 1e12 * ATHENA_PRICE_PER_TB


def generate(
    days: int = 90,
    end: date | None = None,
    *,
    target_type: str = "duckdb",
    model_count: int = 30,
    test_count: int = 80,
    runs_per_day: int = 1,
    seed: int = 7,
) -> dict[str, list[dict[str, Any]]]:
    """Rows per published table (lists of dicts, contract columns), the last day being ``end`` (default today).

    ``runs_per_day`` > 1 spreads that many extraction + medallion rounds over each day (a busier schedule).
    """
    rng = random.Random(seed)
    end = end or datetime.now(UTC).date()
    shape = project(model_count, test_count)
    base_seconds = {name: rng.uniform(0.5, 40.0) for name, _, _ in shape.models}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SCHEMAS}
    for offset in range(days):
        day = end - timedelta(days=days - 1 - offset)
        for slot in range(runs_per_day):
            at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=24 * slot / runs_per_day)
            last = offset == days - 1 and slot == runs_per_day - 1
            _extractions(rows["obs_extraction_runs"], rng, at, last)
            growth = (offset + slot / runs_per_day) / days
            _medallion_run(rows, rng, shape, base_seconds, at, growth, target_type, last)
    _gold(rows, rng, end)
    return rows


def _medallion_run(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    shape: Project,
    base_seconds: dict[str, float],
    at: datetime,
    growth: float,
    target_type: str,
    last: bool,
) -> None:
    """One medallion DAG run two hours after ``at``: a dbt build of every model and test, then source freshness."""
    athena = target_type == "athena"
    run_id = f"asset_triggered__{at + timedelta(hours=2):%Y-%m-%dT%H:%M:%S}+00:00"
    started = at + timedelta(hours=2, seconds=rng.uniform(0, 60))
    invocation_id = f"inv-{at:%Y%m%dT%H%M}-build"
    clock, failed_nodes, scanned_total = started, 0, 0
    for name, layer, materialization in shape.models:
        # Slowly growing tables: a model takes longer as the window goes by, some faster than others.
        seconds = base_seconds[name] * (1 + growth * rng.uniform(0.0, 0.8)) * rng.uniform(0.9, 1.1)
        status = "error" if last and name == FAILING_MODEL else "success"
        failed_nodes += status == "error"
        scanned = int(seconds * rng.uniform(2e6, 4e7)) if athena else None
        scanned_total += scanned or 0
        rows["obs_model_runs"].append(
            {"model_run_id": f"{invocation_id}.model.medalflow.{name}", "invocation_id": invocation_id,
             "dag_id": "medallion", "run_id": run_id, "run_started_at": started,
             "unique_id": f"model.medalflow.{name}", "model_name": name, "layer": layer,
             "materialization": materialization, "status": status, "started_at": clock,
             "completed_at": clock + timedelta(seconds=seconds), "duration_seconds": round(seconds, 3),
             "rows_affected": None if materialization == "view" else rng.randint(0, 50_000),
             "bytes_scanned": scanned, "cost_usd": _cost(scanned) if athena else None}
        )  # fmt: skip
        clock += timedelta(seconds=seconds)
    for name, model, column in shape.tests:
        status = "pass"
        if last and name == FAILING_TEST:
            status = "fail"
        elif last and name == WARNING_TEST:
            status = "warn"
        failures = {"fail": 3, "warn": 1}.get(status, 0)
        failed_nodes += status == "fail"
        rows["obs_test_results"].append(
            {"test_result_id": f"{invocation_id}.test.medalflow.{name}", "invocation_id": invocation_id,
             "dag_id": "medallion", "run_id": run_id, "run_started_at": started,
             "unique_id": f"test.medalflow.{name}", "test_name": name, "model_name": model,
             "column_name": column, "status": status, "failures": failures,
             "message": f"Got {failures} results, configured to fail if != 0" if failures else None}
        )  # fmt: skip
        clock += timedelta(seconds=rng.uniform(0.2, 1.5))
    rows["obs_dbt_invocations"].append(
        {"invocation_id": invocation_id, "dag_id": "medallion", "run_id": run_id,
         "task_id": "dbt.dbt_producer_watcher", "try_number": 1, "command": "build", "target_type": target_type,
         "started_at": started, "completed_at": clock, "elapsed_seconds": (clock - started).total_seconds(),
         "nodes_total": len(shape.models) + len(shape.tests), "nodes_failed": failed_nodes,
         "status": "error" if failed_nodes else "success",
         "bytes_scanned": scanned_total if athena else None, "cost_usd": _cost(scanned_total) if athena else None}
    )  # fmt: skip
    _freshness(rows, rng, at, clock, target_type, last)


def _extractions(out: list[dict[str, Any]], rng: random.Random, at: datetime, last: bool) -> None:
    for dag_id, (source, entities) in EXTRACTIONS.items():
        run_id = f"scheduled__{at:%Y-%m-%dT%H:%M:%S}+00:00"
        clock = at + timedelta(minutes=5, seconds=rng.uniform(0, 30))
        for entity in entities:
            seconds = rng.uniform(1, 30)
            quarantined = rng.randint(1, 40) if (source, entity) == QUARANTINING and rng.random() < 0.3 else 0
            out.append(
                {"extraction_run_id": f"{dag_id}.{run_id}.{entity}.1", "dag_id": dag_id, "run_id": run_id,
                 "try_number": 1, "source": source, "entity": entity, "interval_start": at - timedelta(days=1),
                 "interval_end": at, "started_at": clock, "completed_at": clock + timedelta(seconds=seconds),
                 "duration_seconds": round(seconds, 3), "rows_landed": rng.randint(100, 20_000),
                 "rows_quarantined": quarantined + (17 if last and (source, entity) == QUARANTINING else 0),
                 "status": "success"}
            )  # fmt: skip
            clock += timedelta(seconds=seconds)


def _freshness(
    rows: dict[str, list[dict[str, Any]]], rng: random.Random, run_at: datetime, at: datetime, target: str, last: bool
) -> None:
    invocation_id = f"inv-{run_at:%Y%m%dT%H%M}-freshness"
    completed = at + timedelta(seconds=len(SOURCES) * 0.5)
    rows["obs_dbt_invocations"].append(
        {"invocation_id": invocation_id, "dag_id": "medallion", "run_id": rows["obs_dbt_invocations"][-1]["run_id"],
         "task_id": "source_freshness", "try_number": 1, "command": "source freshness", "target_type": target,
         "started_at": at, "completed_at": completed, "elapsed_seconds": (completed - at).total_seconds(),
         "nodes_total": len(SOURCES), "nodes_failed": 0, "status": "success",
         "bytes_scanned": 10_485_760 if target == "athena" else None,
         "cost_usd": _cost(10_485_760) if target == "athena" else None}
    )  # fmt: skip
    for source, entity in SOURCES:
        age = rng.uniform(1, 20) + (60 if last and (source, entity) == STALE_SOURCE else 0)
        rows["obs_source_freshness"].append(
            {"freshness_check_id": f"{invocation_id}.{source}.{entity}", "invocation_id": invocation_id,
             "checked_at": at, "source_name": source, "table_name": entity,
             "max_loaded_at": at - timedelta(hours=age), "age_hours": round(age, 2),
             "status": "error" if age > 48 else "warn" if age > 24 else "pass"}
        )  # fmt: skip


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _gold(rows: dict[str, list[dict[str, Any]]], rng: random.Random, end: date) -> None:
    first = date(end.year - 2, end.month, 1)
    months = [date(first.year + (first.month - 1 + k) // 12, (first.month - 1 + k) % 12 + 1, 1) for k in range(25)]
    for index, month in enumerate(months):
        sales = 800_000 + 15_000 * index + rng.uniform(-90_000, 90_000)
        inflow, outflow = sales * rng.uniform(0.85, 1.0), sales * rng.uniform(0.6, 0.95)
        rows["agg_monthly_cash_flow"].append(
            {"month_start": month, "cash_year": month.year, "cash_month": month.month, "inflow_brl": _money(inflow),
             "outflow_brl": _money(outflow), "net_cash_flow_brl": _money(inflow) - _money(outflow),
             "inbound_payment_count": rng.randint(200, 900), "outbound_payment_count": rng.randint(50, 300)}
        )  # fmt: skip
        rows["agg_monthly_orders"].append(
            {"order_month": month, "order_count": rng.randint(900, 1600), "units_ordered": rng.randint(3000, 9000),
             "sales_brl": _money(sales)}
        )  # fmt: skip
    # The forecast runs six months past the last month with orders; its actual is null there.
    for index, month in enumerate(months[-12:] + [date(end.year + (end.month + k) // 12, (end.month + k) % 12 + 1, 1)
                                                  for k in range(6)]):  # fmt: skip
        base = 950_000 + 12_000 * index
        actual = next((r["sales_brl"] for r in rows["agg_monthly_orders"] if r["order_month"] == month), None)
        rows["agg_monthly_forecast_vs_actual"].append(
            {"forecast_month": month, "project_count": 12, "baseline_brl": _money(base * 0.97),
             "optimistic_brl": _money(base * 1.12), "base_brl": _money(base), "pessimistic_brl": _money(base * 0.85),
             "actual_sales_brl": actual, "snapshot_date": end}
        )  # fmt: skip


def tables(rows: dict[str, list[dict[str, Any]]]) -> dict[str, pa.Table]:
    return {name: pa.Table.from_pylist(rows[name], schema=SCHEMAS[name]) for name in rows}


def write_published(
    rows: dict[str, list[dict[str, Any]]], lake: str | Path, only: tuple[str, ...] | None = None
) -> Path:
    """The tables as published Parquet under ``<lake>/_published/<model>/part-0.parquet``; returns the folder."""
    published = Path(lake) / "_published"
    for name, table in tables(rows).items():
        if only is not None and name not in only:
            continue
        folder = published / name
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet")
    return published
