"""The figures of the medalflow page in the Airflow UI (plugins/medalflow_observability.py), from the published tables.

The observability models and three gold aggregates are published as Parquet under ``<lake>/_published/<model>/``
(docs/operations.md); this module reads them through fsspec (a local folder or s3://) with pyarrow, in memory, never
the warehouse, and computes what the page shows: run history and success rate, the slowest models and their trend,
failing tests, freshness per source, quarantined records, cost per run and per model (Athena only: null elsewhere),
and the gold at a glance. pyarrow is imported when a page is computed, not when the api-server loads the plugin.

Runs are DAG runs: a dbt run is the invocations of one (dag_id, run_id), judged by each task's last attempt (a retry
that succeeded makes the run succeed); an extraction run is the entities of one extraction DAG run, likewise.
The window ends at the latest run published (a lake that stopped receiving runs still shows its last days).
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any

from medalflow.observability.publication import PUBLISHED_ZONE
from medalflow.settings import get_settings

log = logging.getLogger(__name__)

# The DAG that builds and publishes the tables (dags/observability.py); named on the page when nothing is published.
PUBLISHING_DAG = "observability"
# A table's folder holds its Parquet files: DuckDB's <model>.parquet, Snowflake's data_*.snappy.parquet, Athena
# UNLOAD's files named by the query, without extension. Skipped: markers and hidden files ('_SUCCESS', '.crc'), and
# a writer's temporary file (DuckDB writes <file>.tmp, then renames it over the old one).
NOT_DATA_PREFIXES, NOT_DATA_SUFFIXES = ("_", "."), (".tmp", ".crc", ".json", ".csv", ".txt", ".metadata", ".manifest")

# The contract's columns (docs: the observability models' YAML); a published table lacking one is refused by name.
CONTRACT: dict[str, tuple[str, ...]] = {
    "obs_dbt_invocations": (
        "invocation_id", "dag_id", "run_id", "task_id", "try_number", "command", "target_type", "started_at",
        "completed_at", "elapsed_seconds", "nodes_total", "nodes_failed", "status", "bytes_scanned", "cost_usd",
    ),
    "obs_model_runs": (
        "model_run_id", "invocation_id", "dag_id", "run_id", "run_started_at", "unique_id", "model_name", "layer",
        "materialization", "status", "started_at", "completed_at", "duration_seconds", "rows_affected",
        "bytes_scanned", "cost_usd",
    ),
    "obs_test_results": (
        "test_result_id", "invocation_id", "dag_id", "run_id", "run_started_at", "unique_id", "test_name",
        "model_name", "column_name", "status", "failures", "message",
    ),
    "obs_extraction_runs": (
        "extraction_run_id", "dag_id", "run_id", "try_number", "source", "entity", "interval_start", "interval_end",
        "started_at", "completed_at", "duration_seconds", "rows_landed", "rows_quarantined", "status",
    ),
    "obs_source_freshness": (
        "freshness_check_id", "invocation_id", "checked_at", "source_name", "table_name", "max_loaded_at",
        "age_hours", "status",
    ),
    "agg_monthly_cash_flow": ("month_start", "inflow_brl", "outflow_brl", "net_cash_flow_brl"),
    "agg_monthly_orders": ("order_month", "order_count", "units_ordered", "sales_brl"),
    "agg_monthly_forecast_vs_actual": (
        "forecast_month", "baseline_brl", "optimistic_brl", "base_brl", "pessimistic_brl", "actual_sales_brl",
    ),
}  # fmt: skip
REQUIRED = "obs_dbt_invocations"
# Filtered to the window before leaving Arrow (these grow by the run); the others are small or needed whole.
WINDOW_COLUMN = {
    "obs_dbt_invocations": "started_at",
    "obs_model_runs": "run_started_at",
    "obs_test_results": "run_started_at",
    "obs_extraction_runs": "started_at",
}
DEFAULT_DAYS, MAX_DAYS = 30, 366
RECENT_RUNS, SLOWEST_MODELS, TREND_MODELS, COSTLIEST_MODELS = 25, 10, 5, 10
FAILING_TEST_STATUSES = ("error", "fail", "warn")
SEVERITY = {"error": 0, "runtime error": 0, "fail": 0, "failed": 0, "warn": 1}


class NotPublishedError(FileNotFoundError):
    """Nothing is published at the location yet (no build has published since the lake was created)."""


class PublicationError(ValueError):
    """A published table does not match the page's contract; the message names the table, file and column."""


def published_uri(lake_uri: str | None = None) -> str:
    """``<lake>/_published``: where the builds publish the tables the page reads."""
    return posixpath.join((lake_uri or get_settings().lake_uri).rstrip("/"), PUBLISHED_ZONE)


@dataclass(frozen=True)
class _Cached:
    signature: tuple
    table: Any


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def _filesystem(uri: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(uri)
    return fs, path.rstrip("/")


def _file_signature(entry: dict[str, Any]) -> tuple:
    # Local files change mtime, S3 objects their ETag: either tells a republished file from the one cached.
    return entry["name"], entry.get("size"), entry.get("mtime") or entry.get("ETag") or entry.get("LastModified")


def _is_data_file(path: str) -> bool:
    name = posixpath.basename(path)
    return bool(name) and not name.startswith(NOT_DATA_PREFIXES) and not name.endswith(NOT_DATA_SUFFIXES)


def read_published_table(fs: Any, root: str, name: str) -> Any | None:
    """One published table as a pyarrow Table (its folder's Parquet files), None when not published.

    Kept in memory while its files stay the same (a listing per request, the files read only when they change).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = posixpath.join(root, name)
    try:
        entries = [e for e in fs.ls(folder, detail=True) if e["type"] == "file" and _is_data_file(e["name"])]
    except FileNotFoundError:
        return None
    if not entries:
        return None
    signature = tuple(sorted(_file_signature(entry) for entry in entries))
    key = f"{fs.protocol}:{folder}"
    with _cache_lock:
        cached = _cache.get(key)
    if cached and cached.signature == signature:
        return cached.table
    paths = [entry["name"] for entry in sorted(entries, key=lambda e: e["name"])]
    contents = fs.cat(paths) if len(paths) > 1 else {paths[0]: fs.cat_file(paths[0])}
    parts = []
    for path in paths:
        try:
            part = pq.read_table(pa.BufferReader(contents[path]))
        except pa.ArrowInvalid as error:
            raise PublicationError(
                f"published table {name}: {path} is not a Parquet file ({error}); only the publication's files belong "
                f"in {folder}"
            ) from error
        missing = [column for column in CONTRACT[name] if column not in part.column_names]
        if missing:
            raise PublicationError(
                f"published table {name} ({path}) lacks the column(s) {missing} the medalflow page reads: "
                f"republish it with the current dbt project (the {PUBLISHING_DAG} DAG)"
            )
        parts.append(part.select(list(CONTRACT[name])))
    table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
    with _cache_lock:
        _cache[key] = _Cached(signature, table)
    return table


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _in_window(table: Any, column: str, since: datetime) -> Any:
    """The table's rows from ``since`` on, still in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    utc = pa.timestamp("us", tz="UTC")
    # A timestamp without a zone is UTC by the contract (casting one to a zone keeps its value as UTC).
    moments = pc.cast(table.column(column), utc, safe=False)
    return table.filter(pc.greater_equal(moments, pa.scalar(since, utc)))


def _latest(table: Any | None, column: str) -> datetime | None:
    import pyarrow.compute as pc

    if table is None or table.num_rows == 0:
        return None
    return _utc(pc.max(table.column(column)).as_py())


def _sum_or_none(values: list[Any]) -> Any:
    """Cost and bytes: None when no row has one (off Athena), so the page shows a dash and not a false zero."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _last_attempts(rows: list[dict[str, Any]], part: str) -> list[dict[str, Any]]:
    """Each part's (task's, entity's) rows of its highest try_number."""
    highest: dict[Any, int] = {}
    for row in rows:
        highest[row[part]] = max(highest.get(row[part], 0), row["try_number"] or 0)
    return [row for row in rows if (row["try_number"] or 0) == highest[row[part]]]


def _dbt_runs(invocations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in invocations:
        by_run[row["dag_id"], row["run_id"]].append(row)
    runs = []
    for (dag_id, run_id), rows in by_run.items():
        final = _last_attempts(rows, "task_id")
        started = min(_utc(r["started_at"]) for r in rows)
        completed = max((_utc(r["completed_at"]) for r in rows if r["completed_at"]), default=None)
        failed_nodes = sum(r["nodes_failed"] or 0 for r in final)
        runs.append(
            {
                "kind": "dbt",
                "dag_id": dag_id,
                "run_id": run_id,
                "started_at": started,
                "duration_seconds": _seconds(started, completed),
                "status": "failed" if any(r["status"] != "success" for r in final) else "success",
                "detail": f"{sum(r['nodes_total'] or 0 for r in final)} nodes, {failed_nodes} failed, "
                f"{len(rows)} dbt invocation{'s' if len(rows) != 1 else ''}",
                "target_type": final[0]["target_type"],
                "bytes_scanned": _sum_or_none([r["bytes_scanned"] for r in rows]),
                "cost_usd": _sum_or_none([r["cost_usd"] for r in rows]),
            }
        )
    return runs


def _extraction_runs(extractions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in extractions:
        by_run[row["dag_id"], row["run_id"]].append(row)
    runs = []
    for (dag_id, run_id), rows in by_run.items():
        final = _last_attempts(rows, "entity")
        started = min(_utc(r["started_at"]) for r in rows)
        completed = max((_utc(r["completed_at"]) for r in rows if r["completed_at"]), default=None)
        runs.append(
            {
                "kind": "extraction",
                "dag_id": dag_id,
                "run_id": run_id,
                "started_at": started,
                "duration_seconds": _seconds(started, completed),
                "status": "failed" if any(r["status"] != "success" for r in final) else "success",
                "detail": f"{len(final)} entities, {sum(r['rows_landed'] or 0 for r in final):,} rows landed, "
                f"{sum(r['rows_quarantined'] or 0 for r in final):,} quarantined",
                "target_type": None,
                "bytes_scanned": None,
                "cost_usd": None,
            }
        )
    return runs


def _daily(runs: list[dict[str, Any]], extractions: list[dict[str, Any]], days: list[str]) -> list[dict[str, Any]]:
    daily = {day: {"day": day, "succeeded": 0, "failed": 0, "cost_usd": None, "quarantined_rows": 0} for day in days}
    for run in runs:
        entry = daily.get(run["started_at"].date().isoformat())
        if entry is None:
            continue
        entry["succeeded" if run["status"] == "success" else "failed"] += 1
        if run["cost_usd"] is not None:
            entry["cost_usd"] = (entry["cost_usd"] or 0.0) + run["cost_usd"]
    for row in extractions:
        entry = daily.get(_utc(row["started_at"]).date().isoformat())
        if entry is not None:
            entry["quarantined_rows"] += row["rows_quarantined"] or 0
    for entry in daily.values():
        total = entry["succeeded"] + entry["failed"]
        entry["success_rate"] = entry["succeeded"] / total if total else None
    return list(daily.values())


def _slowest_models(model_runs: Any, days: list[str], midpoint: datetime) -> dict[str, Any]:
    """Per model over the window: runs, mean/max/latest duration, the trend, bytes and cost. Aggregated in Arrow: the
    window holds a row per model per run (tens of thousands at 90 days)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if model_runs is None or model_runs.num_rows == 0:
        return {"slowest": [], "trend": {"days": days, "series": []}, "costliest": []}
    timed = model_runs.filter(
        pc.and_(pc.is_valid(model_runs["duration_seconds"]), pc.not_equal(model_runs["status"], "skipped"))
    ).sort_by("run_started_at")
    if timed.num_rows == 0:
        return {"slowest": [], "trend": {"days": days, "series": []}, "costliest": []}
    stats = timed.group_by("model_name", use_threads=False).aggregate(
        [
            ("duration_seconds", "mean"),
            ("duration_seconds", "max"),
            ("duration_seconds", "count"),
            ("duration_seconds", "last"),
            ("layer", "last"),
            ("materialization", "last"),
            ("bytes_scanned", "sum"),  # null when every row's is (off Athena), as _sum_or_none
            ("cost_usd", "sum"),
        ]
    )
    after = pc.greater_equal(pc.cast(timed["run_started_at"], pa.timestamp("us", tz="UTC")), pa.scalar(midpoint))

    def half_means(rows: Any) -> dict[str, float]:
        means = rows.group_by("model_name").aggregate([("duration_seconds", "mean")]).to_pylist()
        return {row["model_name"]: row["duration_seconds_mean"] for row in means}

    earlier, later = half_means(timed.filter(pc.invert(after))), half_means(timed.filter(after))
    summaries = []
    for row in stats.to_pylist():
        model, before = row["model_name"], earlier.get(row["model_name"])
        # Trend: the window's second half against its first (None until both halves have runs).
        trend = later[model] / before - 1.0 if before and model in later else None
        summaries.append(
            {
                "model_name": model,
                "layer": row["layer_last"],
                "materialization": row["materialization_last"],
                "runs": row["duration_seconds_count"],
                "avg_seconds": row["duration_seconds_mean"],
                "max_seconds": row["duration_seconds_max"],
                "last_seconds": row["duration_seconds_last"],
                "trend_ratio": trend,
                "bytes_scanned": row["bytes_scanned_sum"],
                "cost_usd": row["cost_usd_sum"],
            }
        )
    summaries.sort(key=lambda s: (-s["avg_seconds"], s["model_name"]))
    slowest = summaries[:SLOWEST_MODELS]
    trended = [summary["model_name"] for summary in slowest[:TREND_MODELS]]
    per_day: dict[str, dict[str, list[float]]] = {model: defaultdict(list) for model in trended}
    for row in timed.filter(pc.is_in(timed["model_name"], pa.array(trended))).to_pylist():
        per_day[row["model_name"]][_utc(row["run_started_at"]).date().isoformat()].append(row["duration_seconds"])
    series = [
        {
            "model_name": model,
            "seconds": [round(fmean(per_day[model][day]), 3) if day in per_day[model] else None for day in days],
        }
        for model in trended
    ]
    costly = sorted(
        (s for s in summaries if s["cost_usd"] is not None), key=lambda s: (-s["cost_usd"], s["model_name"])
    )
    return {"slowest": slowest, "trend": {"days": days, "series": series}, "costliest": costly[:COSTLIEST_MODELS]}


def _failing_tests(test_results: Any) -> list[dict[str, Any]]:
    """Each test's latest result in the window, kept when it failed, errored or warned. Only those rows leave Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if test_results is None or test_results.num_rows == 0:
        return []
    newest = test_results.group_by("unique_id").aggregate([("run_started_at", "max")]).to_pylist()
    latest = {row["unique_id"]: row["run_started_at_max"] for row in newest}
    candidates = test_results.filter(pc.is_in(test_results["status"], pa.array(FAILING_TEST_STATUSES)))
    # One row per test: a retried invocation of the same run can repeat a result with the same run_started_at.
    failing_rows = {
        row["unique_id"]: row for row in candidates.to_pylist() if row["run_started_at"] == latest[row["unique_id"]]
    }
    failing = [
        {
            "test_name": row["test_name"],
            "model_name": row["model_name"],
            "column_name": row["column_name"],
            "status": row["status"],
            "failures": row["failures"],
            "message": row["message"],
            "dag_id": row["dag_id"],
            "run_id": row["run_id"],
            "run_started_at": _utc(row["run_started_at"]),
        }
        for row in failing_rows.values()
    ]
    failing.sort(key=lambda t: (SEVERITY.get(t["status"], 2), -(t["failures"] or 0), t["test_name"]))
    return failing


def _freshness(checks: Any) -> list[dict[str, Any]]:
    """Each source table's latest freshness check (only the latest checks leave Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if checks is None or checks.num_rows == 0:
        return []
    newest = checks.group_by(["source_name", "table_name"]).aggregate([("checked_at", "max")])
    oldest_latest = pc.min(newest["checked_at_max"])
    moments = pc.cast(checks["checked_at"], pa.timestamp("us", tz="UTC"))
    recent = checks.filter(pc.greater_equal(moments, pc.cast(oldest_latest, pa.timestamp("us", tz="UTC"))))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in recent.to_pylist():
        key = (row["source_name"], row["table_name"])
        if key not in latest or _utc(row["checked_at"]) >= _utc(latest[key]["checked_at"]):
            latest[key] = row
    rows = [
        {
            "source_name": row["source_name"],
            "table_name": row["table_name"],
            "status": row["status"],
            "age_hours": _number(row["age_hours"]),
            "max_loaded_at": _utc(row["max_loaded_at"]),
            "checked_at": _utc(row["checked_at"]),
        }
        for row in latest.values()
    ]
    rows.sort(key=lambda r: (SEVERITY.get(r["status"], 2), r["source_name"], r["table_name"]))
    return rows


def _quarantine(extractions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_entity: dict[tuple[str, str], dict[str, Any]] = {}
    for row in extractions:
        entry = by_entity.setdefault(
            (row["source"], row["entity"]),
            {"source": row["source"], "entity": row["entity"], "runs": 0, "rows_landed": 0, "rows_quarantined": 0,
             "last_quarantined_at": None},
        )  # fmt: skip
        entry["runs"] += 1
        entry["rows_landed"] += row["rows_landed"] or 0
        if row["rows_quarantined"]:
            entry["rows_quarantined"] += row["rows_quarantined"]
            moment = _utc(row["started_at"])
            if entry["last_quarantined_at"] is None or moment > entry["last_quarantined_at"]:
                entry["last_quarantined_at"] = moment
    rows = [entry for entry in by_entity.values() if entry["rows_quarantined"]]
    for entry in rows:
        handled = entry["rows_landed"] + entry["rows_quarantined"]
        entry["quarantined_ratio"] = entry["rows_quarantined"] / handled if handled else None
    rows.sort(key=lambda r: (-r["rows_quarantined"], r["source"], r["entity"]))
    return rows


def _month(value: Any) -> str:
    return value.isoformat()[:7]


def _gold(tables: dict[str, Any]) -> dict[str, Any]:
    """The gold charts' series, months in order; a table not published yet is None."""
    gold: dict[str, Any] = {"cash_flow": None, "orders": None, "forecast": None}
    if (cash := tables.get("agg_monthly_cash_flow")) is not None:
        rows = sorted(cash.to_pylist(), key=lambda r: r["month_start"])
        gold["cash_flow"] = {
            "months": [_month(r["month_start"]) for r in rows],
            "inflow_brl": [_number(r["inflow_brl"]) for r in rows],
            "outflow_brl": [_number(r["outflow_brl"]) for r in rows],
            "net_cash_flow_brl": [_number(r["net_cash_flow_brl"]) for r in rows],
        }
    if (orders := tables.get("agg_monthly_orders")) is not None:
        rows = sorted(orders.to_pylist(), key=lambda r: r["order_month"])
        gold["orders"] = {
            "months": [_month(r["order_month"]) for r in rows],
            "order_count": [r["order_count"] for r in rows],
            "units_ordered": [r["units_ordered"] for r in rows],
            "sales_brl": [_number(r["sales_brl"]) for r in rows],
        }
    if (forecast := tables.get("agg_monthly_forecast_vs_actual")) is not None:
        rows = sorted(forecast.to_pylist(), key=lambda r: r["forecast_month"])
        gold["forecast"] = {"months": [_month(r["forecast_month"]) for r in rows]} | {
            column: [_number(r[column]) for r in rows]
            for column in ("baseline_brl", "optimistic_brl", "base_brl", "pessimistic_brl", "actual_sales_brl")
        }
    return gold


def load_tables(location: str) -> dict[str, Any]:
    """Every published table the page reads (absent ones omitted); NotPublishedError without the invocations."""
    fs, root = _filesystem(location)
    fs.invalidate_cache(root)  # s3fs caches listings: a republished table must be seen on the next request
    tables = {name: table for name in CONTRACT if (table := read_published_table(fs, root, name)) is not None}
    if REQUIRED not in tables:
        raise NotPublishedError(f"nothing published at {location} yet ({REQUIRED} missing)")
    return tables


def page_data(location: str | None = None, days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """The page's figures over the ``days`` ending at the latest published run."""
    location = location or published_uri()
    days = max(1, min(int(days), MAX_DAYS))
    tables = load_tables(location)
    latest = max(
        (moment for name in WINDOW_COLUMN if (moment := _latest(tables.get(name), WINDOW_COLUMN[name]))),
        default=datetime.now(UTC),
    )
    end_day = latest.date()
    first_day = end_day - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), UTC)
    day_labels = [(first_day + timedelta(days=offset)).isoformat() for offset in range(days)]

    def window(name: str) -> Any | None:
        table = tables.get(name)
        return None if table is None else _in_window(table, WINDOW_COLUMN[name], since)

    invocations = window("obs_dbt_invocations").to_pylist()
    extraction_window = window("obs_extraction_runs")
    extractions = [] if extraction_window is None else extraction_window.to_pylist()
    runs = sorted(_dbt_runs(invocations) + _extraction_runs(extractions), key=lambda r: (r["started_at"], r["dag_id"]))
    models = _slowest_models(window("obs_model_runs"), day_labels, since + (latest - since) / 2)
    failing = _failing_tests(window("obs_test_results"))
    freshness = _freshness(tables.get("obs_source_freshness"))
    quarantine = _quarantine(extractions)
    failed_runs = sum(run["status"] != "success" for run in runs)
    cost_available = any(row["cost_usd"] is not None for row in invocations)
    return {
        "location": location,
        "window": {"days": days, "first_day": first_day.isoformat(), "last_day": end_day.isoformat()},
        "latest_run_at": latest,
        "published": sorted(tables),
        "cost_available": cost_available,
        "target_types": sorted({row["target_type"] for row in invocations if row["target_type"]}),
        "summary": {
            "runs": len(runs),
            "failed_runs": failed_runs,
            "success_rate": (len(runs) - failed_runs) / len(runs) if runs else None,
            "last_run": runs[-1] if runs else None,
            "failing_tests": sum(t["status"] in ("error", "fail") for t in failing),
            "warning_tests": sum(t["status"] == "warn" for t in failing),
            "stale_sources": sum(SEVERITY.get(r["status"], 2) < 2 for r in freshness),
            "quarantined_rows": sum(r["rows_quarantined"] for r in quarantine),
            "cost_usd": _sum_or_none([row["cost_usd"] for row in invocations]),
            "bytes_scanned": _sum_or_none([row["bytes_scanned"] for row in invocations]),
        },
        "daily": _daily(runs, extractions, day_labels),
        "runs": list(reversed(runs[-RECENT_RUNS:])),
        "slowest_models": models["slowest"],
        "model_trend": models["trend"],
        "costliest_models": models["costliest"],
        "failing_tests": failing,
        "freshness": freshness,
        "quarantine": quarantine,
        "gold": _gold(tables),
    }
