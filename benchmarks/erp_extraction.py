"""Benchmark: ERP orders extraction (``medalflow.extract.sql.extract_changes``) against PostgreSQL's own ``COPY``.

For 1M and 5M changed orders in one data interval, measures in one run, side by side on the same rows:

* **extraction**: the real CDC extraction of the orders entity from ``dags/config/sources/erp.yml`` (PostgreSQL ->
  Arrow -> Parquet in a local lake, metadata columns and all), the way the ``extract_erp`` task runs it;
* **COPY**: ``COPY (<the extraction's own change query>) TO STDOUT (FORMAT binary)`` through psycopg into a local
  file (``--copy-format csv`` for CSV): PostgreSQL's own export, the floor for getting those rows out into a file.

Each measurement runs in a fresh child process, so its peak RSS (``ru_maxrss`` of that process) is that of one
task doing one extraction, interpreter and libraries included, not of this script; the RSS after the imports is
recorded too, to show what the extraction itself adds. Each is repeated and the median is kept; the two alternate
so neither gets a warmer cache. The 1-minute load average is recorded before the run and at each measurement: on a
shared machine the figures are only comparable between runs with a similar load. Targets (issue 10, point 9): peak
RSS under 300 MB at 5M rows, and at least 0.75x COPY's throughput.

The table is the ERP's ``orders`` (created by ``medalflow_demo.erp.create_schema``, its foreign keys dropped so
rows can be generated alone) filled by ``generate_series`` in SQL: one day holds 100k changed rows, the next 1M,
the next 5M, so each scale is one data interval of the same table.

    .venv/airflow/bin/python benchmarks/erp_extraction.py   # -> benchmarks/results/erp_extraction.{json,md}
    .venv/airflow/bin/python benchmarks/erp_extraction.py --scales 1000000 --repeat 1   # a quick look

It is not a test and does not run in ``make test``: run it on an idle machine to quote its figures.

PostgreSQL is ``MEDALFLOW_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``); a
database ``medalflow_bench_erp`` is (re)created there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dags"))

ADMIN_URL = os.getenv("MEDALFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "medalflow_bench_erp"
SCALES = (1_000_000, 5_000_000)
FIRST_DAY = date(2026, 3, 1)
RESULTS = ROOT / "benchmarks" / "results"
RSS_TARGET_MB = 300
THROUGHPUT_TARGET = 0.75


def database_url(name: str = DATABASE) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def scale_day(index: int) -> date:
    return FIRST_DAY + timedelta(days=index)


def prepare(scales: list[int]) -> None:
    """(Re)create the database and fill ``orders``: scale i's rows all changed on day i."""
    import psycopg
    from sqlalchemy import create_engine

    from medalflow_demo import erp

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{DATABASE}" with (force)')
        admin.execute(f'create database "{DATABASE}"')
    engine = create_engine(database_url().replace("postgresql://", "postgresql+psycopg://"))
    erp.create_schema(engine)
    engine.dispose()
    with psycopg.connect(database_url(), autocommit=True) as connection:
        # The benchmark needs orders alone; the ERP's foreign keys would need millions of customers first.
        for (constraint,) in connection.execute(
            "select conname from pg_constraint where conrelid = 'orders'::regclass and contype = 'f'"
        ).fetchall():
            connection.execute(f'alter table orders drop constraint "{constraint}"')
        first_id = 1
        for index, rows in enumerate(scales):
            began = time.perf_counter()
            connection.execute(_fill_sql(first_id, first_id + rows - 1, scale_day(index)))
            print(f"filled {rows:,} orders changed on {scale_day(index)} in {time.perf_counter() - began:.1f} s")
            first_id += rows
        connection.execute("vacuum analyze orders")


def _fill_sql(first: int, last: int, day: date) -> str:
    """Orders shaped like the demo ERP's: every column filled, ~2% soft-deleted, a third created that day.

    ``updated_at`` grows with the row's position, as in a table whose rows are mostly written in change order, so
    reading the interval is a cheap index range scan: the comparison is then about the client side (what the
    extraction adds over COPY), not about a slow query both sides would wait for alike.
    """
    step = 86_400_000_000 // (last - first + 1)  # spreads the rows over the day, in id order
    return f"""
        insert into orders
        select g,
               g % 50000 + 1,
               g % 3000 + 1,
               g % 400 + 1,
               g % 20 + 1,
               round((g % 100000) / 7.0, 4),
               (array['USD', 'EUR', 'CNY'])[g % 3 + 1],
               round((g % 1000000) / 3.0, 2),
               date '{day}' - (g % 30)::int,
               (array['placed', 'confirmed', 'shipped', 'delivered', 'cancelled'])[g % 5 + 1],
               changed - (g % 3) * interval '1 day',
               changed,
               case when g % 50 = 0 then changed end
        from generate_series({first}::bigint, {last}::bigint) as g,
             lateral (select timestamp '{day}' + (g - {first}) * interval '{step} microseconds' as changed) as t
    """


def _interval(index: int) -> tuple[datetime, datetime]:
    start = datetime.combine(scale_day(index), datetime.min.time(), UTC)
    return start, start + timedelta(days=1)


def _rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_extract(index: int) -> dict:
    """One extraction, as the extract_erp task does it, into a throwaway local lake.

    ``MEDALFLOW_BENCH_BATCH_MB`` and ``MEDALFLOW_BENCH_PREFETCH`` override the extraction's batch size and queue
    depth for this measurement (to try settings before changing them in medalflow.extract.sql).
    """
    # Imported before the clock starts, as psycopg is for COPY: a task pays this once per process, not per table.
    for module in ("adbc_driver_postgresql.dbapi", "pyarrow.parquet", "pyarrow.compute"):
        importlib.import_module(module)

    from medalflow.extract import sql
    from medalflow.extract.config import load_source_group
    from medalflow.extract.metadata import IngestionContext
    from medalflow.extract.sql import DatabaseLocation, extract_changes
    from medalflow.lake import Lake

    _apply_overrides(sql)

    entity = load_source_group("erp").entity("orders")
    location = DatabaseLocation("postgresql", database_url())
    start, end = _interval(index)
    lake_dir = tempfile.mkdtemp(prefix="medalflow-bench-lake-")
    rss_before = _rss_mb()
    try:
        began = time.perf_counter()
        result = extract_changes(
            location, entity, Lake(lake_dir), start, end, IngestionContext("erp", "bench", datetime.now(UTC))
        )
        seconds = time.perf_counter() - began
        parquet_bytes = sum(path.stat().st_size for path in Path(lake_dir).rglob("*.parquet"))
    finally:
        shutil.rmtree(lake_dir, ignore_errors=True)
    return {"rows": result["rows"], "seconds": seconds, "output_bytes": parquet_bytes, "rss_before_mb": rss_before}


def child_copy(index: int, copy_format: str) -> dict:
    """``COPY (the same change query) TO STDOUT (FORMAT <copy_format>)`` through psycopg into a local file."""
    import psycopg

    from medalflow.extract.config import load_source_group
    from medalflow.extract.sql import DatabaseLocation, change_query

    entity = load_source_group("erp").entity("orders")
    start, end = _interval(index)
    query = change_query(entity, DatabaseLocation("postgresql", database_url()), start, end)
    copied = 0
    rss_before = _rss_mb()
    with (
        psycopg.connect(database_url()) as connection,
        tempfile.NamedTemporaryFile(prefix="medalflow-bench-copy-", suffix=f".{copy_format}") as sink,
    ):
        began = time.perf_counter()
        with connection.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT {copy_format})") as copy:
            for chunk in copy:
                sink.write(chunk)
                copied += len(chunk)
            sink.flush()
        seconds = time.perf_counter() - began
        rows = connection.execute(f"select count(*) from ({query}) as changes").fetchone()[0]
    return {"rows": rows, "seconds": seconds, "output_bytes": copied, "rss_before_mb": rss_before}


def measure(kind: str, index: int, copy_format: str) -> dict:
    """Run one measurement in a fresh interpreter; adds its peak RSS."""
    completed = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--index", str(index), "--copy-format", copy_format],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_child(kind: str, index: int, copy_format: str) -> None:
    import logging

    logging.disable(logging.CRITICAL)
    result = child_extract(index) if kind == "extraction" else child_copy(index, copy_format)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["process_cpu_seconds"] = usage.ru_utime + usage.ru_stime  # the whole child, imports included
    result["load_average"] = os.getloadavg()[0]
    print(json.dumps(result))


def benchmark(scales: list[int], repeat: int, copy_format: str) -> dict:
    load_before = os.getloadavg()
    results = []
    for index, rows in enumerate(scales):
        measure("copy", index, copy_format)  # warm PostgreSQL's cache for this interval, so neither side pays for it
        runs: dict[str, list[dict]] = {"extraction": [], "copy": []}
        for _ in range(repeat):
            for kind in ("extraction", "copy"):
                runs[kind].append(measure(kind, index, copy_format))
        summary = {"rows": rows}
        for kind, measured in runs.items():
            assert all(run["rows"] == rows for run in measured), f"{kind} saw {measured[0]['rows']} rows, not {rows}"
            seconds = statistics.median(run["seconds"] for run in measured)
            summary[kind] = {
                "seconds_median": round(seconds, 3),
                "seconds_all": [round(run["seconds"], 3) for run in measured],
                "rows_per_second": round(rows / seconds),
                "peak_rss_mb": round(max(run["peak_rss_mb"] for run in measured), 1),
                "rss_after_imports_mb": round(max(run["rss_before_mb"] for run in measured), 1),
                "process_cpu_seconds_median": round(statistics.median(r["process_cpu_seconds"] for r in measured), 2),
                "load_average": [round(run["load_average"], 1) for run in measured],
                "output_mb": round(measured[0]["output_bytes"] / 2**20, 1),
            }
        summary["throughput_ratio"] = round(
            summary["copy"]["seconds_median"] / summary["extraction"]["seconds_median"], 3
        )
        results.append(summary)
        print(
            f"{rows:>9,} rows: extraction {summary['extraction']['seconds_median']:.2f} s "
            f"({summary['extraction']['peak_rss_mb']:.0f} MB), COPY {summary['copy']['seconds_median']:.2f} s "
            f"-> {summary['throughput_ratio']:.2f}x COPY's throughput",
            flush=True,
        )
    largest = results[-1]
    return {
        "benchmark": "erp_extraction",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "postgres": _server_version(),
        "repeat": repeat,
        "copy_format": copy_format,
        "load_average_before": [round(load, 2) for load in load_before],
        "settings": _extraction_settings(),
        "targets": {"peak_rss_mb_below": RSS_TARGET_MB, "throughput_ratio_at_least": THROUGHPUT_TARGET},
        "results": results,
        "targets_met_at_largest_scale": {
            "peak_rss": largest["extraction"]["peak_rss_mb"] < RSS_TARGET_MB,
            "throughput": largest["throughput_ratio"] >= THROUGHPUT_TARGET,
        },
    }


def _apply_overrides(sql) -> None:
    if batch_mb := os.getenv("MEDALFLOW_BENCH_BATCH_MB"):
        sql.POSTGRES_BATCH_BYTES = int(float(batch_mb) * 2**20)
    if prefetch := os.getenv("MEDALFLOW_BENCH_PREFETCH"):
        sql.PREFETCHED_BATCHES = int(prefetch)


def _extraction_settings() -> dict:
    from medalflow.extract import sql

    _apply_overrides(sql)
    return {
        "postgres_batch_size_hint_bytes": sql.POSTGRES_BATCH_BYTES,
        "prefetched_batches": sql.PREFETCHED_BATCHES,
    }


def _server_version() -> str:
    import psycopg

    with psycopg.connect(database_url()) as connection:
        return connection.execute("show server_version").fetchone()[0]


def markdown(report: dict) -> str:
    lines = [
        "# ERP orders extraction vs PostgreSQL COPY",
        "",
        f"Measured {report['measured_at']} on {report['machine']['platform']} ({report['machine']['cpus']} CPUs), "
        f"PostgreSQL {report['postgres']}, by `benchmarks/erp_extraction.py` (median of {report['repeat']} runs "
        "each, every run in a fresh process, extraction and COPY alternating; the same rows, the same change query). "
        f"Load average (1, 5, 15 min) before the run: {', '.join(map(str, report['load_average_before']))} on "
        f"{report['machine']['cpus']} CPUs; the 1-minute load at each measurement is in the JSON and the table.",
        "",
        "| changed orders | extraction s | extraction rows/s | extraction peak RSS MB (after imports) | COPY s "
        "| COPY rows/s | extraction / COPY throughput | load (1 min) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in report["results"]:
        extraction, copy = result["extraction"], result["copy"]
        lines.append(
            f"| {result['rows']:,} | {extraction['seconds_median']:.2f} | {extraction['rows_per_second']:,} "
            f"| {extraction['peak_rss_mb']:.0f} ({extraction['rss_after_imports_mb']:.0f}) "
            f"| {copy['seconds_median']:.2f} | {copy['rows_per_second']:,} | {result['throughput_ratio']:.2f}x "
            f"| {max(extraction['load_average'] + copy['load_average']):.1f} |"
        )
    met = report["targets_met_at_largest_scale"]
    loads = [
        load for result in report["results"] for kind in ("extraction", "copy") for load in result[kind]["load_average"]
    ]
    if max(loads + report["load_average_before"][:1]) > report["machine"]["cpus"] / 2:
        lines += [
            "",
            f"**The machine was busy** (1-minute load up to {max(loads):.1f} on {report['machine']['cpus']} CPUs): "
            "both sides ran slower than they would alone and their ratio is noisy. Rerun on an idle machine "
            "before quoting these figures.",
        ]
    lines += [
        "",
        f"Targets at the largest scale: peak RSS under {RSS_TARGET_MB} MB: "
        f"**{'met' if met['peak_rss'] else 'missed'}**; at least {THROUGHPUT_TARGET}x COPY's throughput: "
        f"**{'met' if met['throughput'] else 'missed'}**.",
        "",
        "Extraction = `medalflow.extract.sql.extract_changes` on the `orders` entity of `dags/config/sources/erp.yml`: "
        "PostgreSQL -> Arrow (a reader thread, batches of "
        f"{report['settings']['postgres_batch_size_hint_bytes'] // 2**20} MiB, "
        f"{report['settings']['prefetched_batches']} queued) -> typed, with metadata columns -> zstd Parquet in a "
        "local lake, staged and published. "
        f"COPY = `COPY (<same query>) TO STDOUT (FORMAT {report['copy_format']})` through psycopg into a local file "
        "(no parsing).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=list(SCALES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-prepare", action="store_true", help="reuse the filled database of a previous run")
    parser.add_argument("--copy-format", choices=["binary", "csv"], default="binary", help="the COPY baseline's format")
    parser.add_argument("--child", choices=["extraction", "copy"], help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        run_child(options.child, options.index, options.copy_format)
        return 0
    if not options.skip_prepare:
        prepare(options.scales)
    report = benchmark(options.scales, options.repeat, options.copy_format)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "erp_extraction.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "erp_extraction.md").write_text(markdown(report))
    print(f"wrote {RESULTS / 'erp_extraction.json'} and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
