"""Response time of the medalflow page (plugins/medalflow_observability.py) over 90 days of runs. Goal: under 1 s.

The published tables are made up by tests/observability_fixtures.py (the tests' generator) and written as the builds
publish them, Parquet under ``<lake>/_published/``, in a local lake:

* **daily**: the production schedule, 90 days of a daily medallion build (30 models, 80 tests, then source freshness)
  and four extraction DAGs (12 entities), on Athena (cost columns filled);
* **4 a day**: the same, four rounds a day (a busier schedule: four times the rows).

The plugin's own FastAPI app is served by uvicorn (the api-server's server) in this process, the sign-in dependency
replaced by a no-op (the JWT check is the api-server's, the same for every page); each URL is fetched over HTTP with
``requests``: first **cold** (the process's table cache emptied: every Parquet file read), then ``--repeat`` times
**warm** (files unchanged: listed, not read again; figures and HTML computed anew each time, as every request does).
Figures: median and p95 of the warm requests, and the cold one. Results: benchmarks/results/ops_page.json and .md.

    .venv/airflow/bin/python benchmarks/ops_page.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "tests"), str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "dags")]

import observability_fixtures  # ruff: ignore[module-import-not-at-top-of-file]  (the tests' generator, on the path above)

RESULTS = PROJECT_ROOT / "benchmarks" / "results"
GOAL_SECONDS = 1.0
DAYS = 90
SCENARIOS = {"daily": 1, "4 a day": 4}
URLS = {
    "JSON, 30 days": "/medalflow/api/page-data?days=30",
    "JSON, 90 days": "/medalflow/api/page-data?days=90",
    "HTML, 30 days": "/medalflow/?days=30",
    "HTML, 90 days": "/medalflow/?days=90",
}


def serve(lake: Path) -> tuple[str, object, threading.Thread]:
    """The plugin's app under /medalflow, as the api-server mounts it, on a free port."""
    import uvicorn
    from fastapi import FastAPI
    from local_servers import free_port

    os.environ["MEDALFLOW_LAKE_URI"] = str(lake)
    import medalflow_observability

    from medalflow.plugin_web import signed_in

    plugin_app = medalflow_observability.create_app()
    plugin_app.dependency_overrides[signed_in] = lambda: None
    root = FastAPI()
    root.mount(medalflow_observability.URL_PREFIX, plugin_app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start in 30 s")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def fetch(session, url: str) -> tuple[float, int]:
    began = time.perf_counter()
    response = session.get(url, timeout=60)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"{url} -> {response.status_code}: {response.text[:500]}")
    return elapsed, len(response.content)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def measure(scenario: str, runs_per_day: int, repeat: int, work: Path) -> list[dict]:
    import requests

    from medalflow import observability_page

    lake = work / scenario.replace(" ", "-")
    shutil.rmtree(lake, ignore_errors=True)
    rows = observability_fixtures.generate(DAYS, date.today(), target_type="athena", runs_per_day=runs_per_day)
    published = observability_fixtures.write_published(rows, lake)
    sizes = {name: len(table) for name, table in rows.items()}
    parquet_bytes = sum(file.stat().st_size for file in published.rglob("*.parquet"))
    base, server, thread = serve(lake)
    results = []
    try:
        with requests.Session() as session:
            for label, path in URLS.items():
                observability_page._cache.clear()  # cold: every Parquet file read again
                cold, size = fetch(session, base + path)
                warm = [fetch(session, base + path)[0] for _ in range(repeat)]
                results.append(
                    {
                        "scenario": scenario,
                        "runs_per_day": runs_per_day,
                        "request": label,
                        "path": path,
                        "cold_s": round(cold, 4),
                        "median_s": round(statistics.median(warm), 4),
                        "p95_s": round(p95(warm), 4),
                        "max_s": round(max(warm), 4),
                        "response_bytes": size,
                        "rows": sizes,
                        "parquet_bytes": parquet_bytes,
                    }
                )
                print(f"{scenario:8} {label:14} cold {cold:.3f} s  median {statistics.median(warm):.3f} s  "
                      f"p95 {p95(warm):.3f} s  ({size:,} bytes)")  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return results


def write_results(results: list[dict], repeat: int) -> None:
    measured = datetime.now(UTC).replace(microsecond=0).isoformat()
    load = os.getloadavg()[0]  # a shared machine: the figures are upper bounds when it is busy
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs (load average {load:.1f}), Python {platform.python_version()}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    worst = max(max(r["p95_s"], r["cold_s"]) for r in results if r["scenario"] == "daily")
    document = {
        "measured_at": measured,
        "machine": machine,
        "load_average_1min": round(load, 2),
        "days": DAYS,
        "repeat": repeat,
        "goal_s": GOAL_SECONDS,
        "goal_met": worst < GOAL_SECONDS,
        "results": results,
    }
    (RESULTS / "ops_page.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [
        "# Response time of the medalflow page",
        "",
        f"Measured {measured} on {machine}; produced by `benchmarks/ops_page.py` (method in its docstring). "
        f"{DAYS} days of published runs on Athena (cost columns filled), a local lake; the plugin's app served by "
        f"uvicorn, fetched over HTTP: one cold request (every Parquet file read) then {repeat} warm ones (files "
        f"listed, not re-read; figures and page computed anew). Goal: under {GOAL_SECONDS:g} s.",
        "",
        "| schedule | published rows (model runs / test results / extraction runs) | Parquet |",
        "| --- | ---: | ---: |",
    ]
    seen = set()
    for r in results:
        if r["scenario"] in seen:
            continue
        seen.add(r["scenario"])
        rows = r["rows"]
        lines.append(
            f"| {r['scenario']} | {rows['obs_model_runs']:,} / {rows['obs_test_results']:,} / "
            f"{rows['obs_extraction_runs']:,} | {r['parquet_bytes'] / 1e6:.1f} MB |"
        )
    lines += [
        "",
        "| schedule | request | cold s | warm median s | warm p95 s | response |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['request']} | {r['cold_s']:.3f} | {r['median_s']:.3f} | {r['p95_s']:.3f} | "
            f"{r['response_bytes'] / 1000:.0f} kB |"
        )
    verdict = "met" if document["goal_met"] else "NOT met"
    lines += ["", f"Goal (daily schedule, every request, cold included, under {GOAL_SECONDS:g} s): **{verdict}** "
              f"(slowest {worst:.3f} s).", ""]  # fmt: skip
    (RESULTS / "ops_page.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="warm requests per URL")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medalflow-ops-page-"))
    try:
        results = []
        for scenario, runs_per_day in SCENARIOS.items():
            results += measure(scenario, runs_per_day, arguments.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(results, arguments.repeat)
    print(f"results in {RESULTS / 'ops_page.md'}")


if __name__ == "__main__":
    main()
