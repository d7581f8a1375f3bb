"""The compose stack's speed: image builds, start-up, and the demo pipeline through compose against `make demo`.

Measured, in order, in one run, with a real Docker engine (tests/compose/compose_stack.py sets it and the images up,
as the compose test does):

* **build, cold**: the project's two images from the Dockerfile with no layer cache (`build --no-cache`), on the
  stand-in or real base image already present;
* **build, cached**: the same again, every layer from the cache (what `docker compose up --build` costs after an
  edit that touches no lock file);
* **up to healthy**: `docker compose up --wait` on fresh volumes until every service is healthy and the one-shot
  services (bucket, init, seeding) have finished. Target: under 90 s once built;
* **pipeline through compose**: docs/compose.md's flow, from unpausing the three daily extractions (the medallion
  unpaused just before; REST API, as the UI's toggles) to the asset-triggered medallion's success, for the one demo
  day;
* **make demo**: the same pipeline for the same day run by `make demo` (`dag.test`, one task after another, no
  containers), for comparison, after the stack is down.

The machine's load average is recorded beside each figure: on a shared 2-core machine, other work slows every step.

Results: benchmarks/results/compose_stack.json and .md.

    .venv/airflow/bin/python benchmarks/compose_stack.py [--skip-cold-build] [--skip-make-demo]
        [--builder classic|buildkit]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "benchmarks" / "results"
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "compose"))

from compose_stack import (  # ruff: ignore[module-import-not-at-top-of-file]  (the helper lives with the compose test)
    DEMO_END,
    DEMO_START,
    IMAGE_SERVICES,
    Engine,
    Stack,
    StackError,
    StackSettings,
    build_environment,
    build_images,
    install_host_ca,
    run,
)

HEALTHY_TARGET_SECONDS = 90


def timed_build(*, no_cache: bool, classic: bool) -> float:
    env = build_environment()
    if classic:
        env["DOCKER_BUILDKIT"] = "0"
    settings = StackSettings.generate()
    install_host_ca()
    began = time.monotonic()
    for number, service in enumerate(IMAGE_SERVICES):
        command = ["docker", "compose", "--env-file", str(settings.write()), "build", service]
        # Cold: the first image without cache; the demo image then builds on its fresh layers, as a first build does.
        run([*command, "--no-cache"] if no_cache and number == 0 else command, env=env, timeout=3600)
    return time.monotonic() - began


def timed_make_demo() -> float:
    # dbt's manifest first, untimed: `make demo` rebuilds it when a dbt file changed, which is not the pipeline.
    subprocess.run(["make", "manifest"], cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL)
    began = time.monotonic()
    subprocess.run(
        ["make", "demo", f"DEMO_ARGS=--days {(DEMO_END - DEMO_START).days} --start {DEMO_START.isoformat()}"],
        cwd=PROJECT_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ},
    )
    return time.monotonic() - began


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compose_stack.json").write_text(json.dumps(results, indent=2) + "\n")
    seconds, load = results["seconds"], results["load_average"]

    def cell(name: str) -> str:
        if name in results.get("failures", {}):
            return f"failed: {results['failures'][name]}"
        return f"{seconds[name]:.0f} s" if seconds.get(name) is not None else "not measured"

    def load_cell(name: str) -> str:
        return f"{load[name]:.1f}" if load.get(name) is not None else ""

    healthy = seconds["up_to_healthy"]
    rows = [
        ("build_cold", "build both images, cold (no layer cache)"),
        ("build_cached", "build both images, cached"),
        ("up_to_healthy", "`docker compose up --wait`: all healthy, one-shots done"),
        ("pipeline_compose", "demo pipeline through compose (unpause -> gold)"),
        ("pipeline_make_demo", "the same pipeline by `make demo` (one day)"),
    ]
    lines = [
        "# The compose stack's speed",
        "",
        f"Measured {results['measured_at']} on {results['machine']} ({results['cpus']} cores), "
        f"{results['builder']} builder, Docker {results['docker']}, in one run of `benchmarks/compose_stack.py`, "
        "which wrote this.",
        "",
        "| step | time | load average (1 min) after it |",
        "| --- | --- | --- |",
        *(f"| {label} | {cell(name)} | {load_cell(name)} |" for name, label in rows),
        "",
        f"Target: healthy in under {HEALTHY_TARGET_SECONDS} s once built: "
        f"{'met' if healthy < HEALTHY_TARGET_SECONDS else 'missed'} ({healthy:.0f} s).",
        "",
        "`make demo` runs every task in one process one after another (`dag.test`); through compose, the scheduler, "
        "Celery and the worker add their polling intervals, the medallion waits for all three extractions' Assets, "
        "and the extractions run side by side. A load average above the 2 cores means other work shared them.",
        "",
    ]
    (RESULTS / "compose_stack.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-cold-build", action="store_true", help="do not rebuild without cache (slow)")
    parser.add_argument("--skip-make-demo", action="store_true")
    parser.add_argument("--builder", choices=("classic", "buildkit"), default="classic")
    options = parser.parse_args()
    classic = options.builder == "classic"

    engine = Engine()
    engine.ensure()
    seconds: dict[str, float | None] = {}
    load: dict[str, float | None] = {}
    failures: dict[str, str] = {}

    def measure(name: str, step) -> None:
        seconds[name] = step()
        load[name] = os.getloadavg()[0]

    stack = Stack(project="medalflow-compose-benchmark")
    try:
        build_images(classic_builder=classic)  # stand-ins and a first build, so that both timings below are real
        if options.skip_cold_build:
            seconds["build_cold"] = None
        else:
            measure("build_cold", lambda: timed_build(no_cache=True, classic=classic))
        measure("build_cached", lambda: timed_build(no_cache=False, classic=classic))
        measure("up_to_healthy", stack.up)
        stack.sign_in()

        def pipeline() -> float:
            began = stack.start_demo()
            stack.wait_for_demo()
            return time.monotonic() - began

        try:
            measure("pipeline_compose", pipeline)
        except StackError as error:  # recorded, not hidden: the other figures still stand
            print(f"the pipeline through compose failed: {error}", file=sys.stderr)
            seconds["pipeline_compose"] = None
            failures["pipeline_compose"] = str(error).splitlines()[0][:300]
    finally:
        stack.down()
        engine.stop()
    if options.skip_make_demo:
        seconds["pipeline_make_demo"] = None
    else:
        measure("pipeline_make_demo", timed_make_demo)
    docker = run(["docker", "version", "--format", "{{.Server.Version}}"], check=False).strip() or "stopped"
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.node() or platform.machine(),
        "cpus": os.cpu_count(),
        "builder": options.builder,
        "docker": docker,
        "seconds": {name: None if value is None else round(value, 1) for name, value in seconds.items()},
        "load_average": {name: round(value, 2) for name, value in load.items()},
        "failures": failures,
        "healthy_target_seconds": HEALTHY_TARGET_SECONDS,
    }
    write_results(results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
