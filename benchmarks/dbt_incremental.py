"""Benchmark: what a one-day incremental dbt run costs as history grows, beside a full refresh.

For histories of 1, 30 and 90 days (one raw lake landed from the demo world, as in tests/dbt), measured side by side
in one run on DuckDB:

* **full refresh**: every model and the snapshot rebuilt from the raw zone over the whole history plus the new day;
* **incremental**: a warehouse holding the history (built by a full refresh of it), then the new day's interval run
  incrementally, as Airflow runs it every day (the median of ``--repeat`` runs, each on a fresh copy).

Both are `dbt build` of the models and the snapshot (data tests excluded: they are the same work either way), timed
as wall clock around the dbt process, dbt's start-up and parsing included, as a scheduler sees it; dbt's own
execution time (run_results.json) is recorded beside it. Target: the incremental run after 90 days costs at most
1.5x the one after 1 day. Results: benchmarks/results/dbt_incremental.{json,md}.

    PYTHONPATH=dags .venv/airflow/bin/python benchmarks/dbt_incremental.py [--scale 1.0] [--repeat 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from medalflow.dbt_commands import dbt_command, dbt_process_environment
from medalflow.intervals import DataInterval, day_interval, parse_moment
from medalflow.settings import get_settings
from medalflow_demo.world import DemoConfig, generate

ROOT = Path(__file__).resolve().parents[1]
# The raw lake is landed by the dbt tests' module (ERP through real CDC extraction, other sources as specified).
RAW_LAKE_MODULE_DIR = ROOT / "tests" / "dbt"

HISTORIES = (1, 30, 90)
FIRST_DAY = date(2026, 1, 5)
SELECTION = ["--exclude", "resource_type:test", "resource_type:unit_test"]
RESULTS = ROOT / "benchmarks" / "results"


def timed_build(lake: str, warehouse: Path, work: Path, interval: DataInterval, full_refresh: bool) -> dict:
    settings = dataclasses.replace(get_settings(), lake_uri=lake, duckdb_path=str(warehouse), dbt_target="duckdb")
    arguments = ["build", *SELECTION, "--vars", json.dumps(interval.as_extra())]
    arguments += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    arguments += ["--full-refresh"] if full_refresh else []
    began = time.perf_counter()
    completed = subprocess.run(
        dbt_command(settings, arguments), env=dbt_process_environment(settings), capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if completed.returncode:
        raise SystemExit(f"dbt failed:\n{completed.stdout[-4000:]}")
    run_results = json.loads((work / "target" / "run_results.json").read_text())
    return {"wall_s": round(wall, 2), "dbt_elapsed_s": round(run_results["elapsed_time"], 2)}


def rows(warehouse: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(f"select count(*) from {table}").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2, help="incremental runs per history size (median kept)")
    options = parser.parse_args()
    sys.path.insert(0, str(RAW_LAKE_MODULE_DIR))
    from raw_lake import RawLakeBuilder, day_range

    days = day_range(FIRST_DAY, max(HISTORIES) + 1)
    world = generate(DemoConfig(seed=42, scale=options.scale, start_date=days[0], end_date=days[-1] + timedelta(1)))
    work = Path(tempfile.mkdtemp(prefix="medalflow-bench-"))
    try:
        began = time.perf_counter()
        builder = RawLakeBuilder(world, str(work / "lake"), work / "erp.sqlite")
        builder.land(days)
        builder.close()
        print(f"landed {len(days)} days of raw data in {time.perf_counter() - began:.0f} s", flush=True)
        measurements = []
        for history in HISTORIES:
            start = parse_moment(days[0])
            new_day = days[history]
            # The warehouse after `history` days (a full refresh of them), then the new day incrementally.
            base = work / f"history_{history}"
            base.mkdir()
            timed_build(
                str(work / "lake"), base / "warehouse.duckdb", base, DataInterval(start, parse_moment(new_day)), True
            )
            incremental = []
            for attempt in range(options.repeat):
                run = work / f"incremental_{history}_{attempt}"
                run.mkdir()
                shutil.copy(base / "warehouse.duckdb", run / "warehouse.duckdb")
                incremental.append(
                    timed_build(str(work / "lake"), run / "warehouse.duckdb", run, day_interval(new_day), False)
                )
            # The full refresh of the same end state: the history plus the new day.
            full_dir = work / f"full_{history}"
            full_dir.mkdir()
            end = day_interval(new_day).end
            full = timed_build(
                str(work / "lake"), full_dir / "warehouse.duckdb", full_dir, DataInterval(start, end), True
            )
            measurement = {
                "history_days": history,
                "incremental_wall_s": round(statistics.median(run["wall_s"] for run in incremental), 2),
                "incremental_dbt_elapsed_s": round(statistics.median(run["dbt_elapsed_s"] for run in incremental), 2),
                "incremental_runs": incremental,
                "full_refresh_wall_s": full["wall_s"],
                "full_refresh_dbt_elapsed_s": full["dbt_elapsed_s"],
                "bronze_order_rows": rows(full_dir / "warehouse.duckdb", "bronze.brz_erp__orders"),
                "silver_orders": rows(full_dir / "warehouse.duckdb", "silver.slv_orders"),
            }
            measurements.append(measurement)
            print(json.dumps(measurement), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by_history = {m["history_days"]: m for m in measurements}
    ratio = by_history[90]["incremental_wall_s"] / by_history[1]["incremental_wall_s"]
    result = {
        "benchmark": "dbt one-day incremental run vs full refresh, by history size (DuckDB)",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "scale": options.scale,
        "repeat": options.repeat,
        "selection": "dbt build " + " ".join(SELECTION),
        "measurements": measurements,
        "incremental_90_over_1": round(ratio, 2),
        "target": "incremental_90_over_1 <= 1.5",
        "target_met": ratio <= 1.5,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dbt_incremental.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# dbt incremental run vs full refresh, by history size (DuckDB)",
        "",
        f"Measured {result['measured_at']} on {os.cpu_count()} CPUs, demo scale {options.scale}, by "
        "`benchmarks/dbt_incremental.py`. Wall clock of `dbt build` of the models and the snapshot (dbt start-up "
        "and parsing included); dbt's own execution time in brackets. Incremental: median of "
        f"{options.repeat} runs.",
        "",
        "| history | bronze order rows | one-day incremental | full refresh |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for m in measurements:
        lines.append(
            f"| {m['history_days']} days | {m['bronze_order_rows']:,} | {m['incremental_wall_s']:.1f} s "
            f"({m['incremental_dbt_elapsed_s']:.1f} s) | {m['full_refresh_wall_s']:.1f} s "
            f"({m['full_refresh_dbt_elapsed_s']:.1f} s) |"
        )
    verdict = "met" if result["target_met"] else "NOT met"
    lines += ["", f"Incremental after 90 days / after 1 day: **{ratio:.2f}x** (target ≤ 1.5x: {verdict}).", ""]
    (RESULTS / "dbt_incremental.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
