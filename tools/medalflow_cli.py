"""Command line for the project's own tooling on a laptop: ``python -m medalflow_cli <command>`` (dbt, sqlfluff,
demo, ui, extract, pii-scan, lineage, catalog).

The Makefile calls it; it runs dbt and sqlfluff from dbt's own virtualenv with the project's settings, the demo, and
extractions by hand through Airflow. It never ships to MWAA (only dags/ and plugins/ do).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from medalflow.dbt_commands import dbt_process_environment, run_dbt
from medalflow.settings import PROJECT_ROOT, Settings, get_settings


def run_sqlfluff(settings: Settings | None = None) -> int:
    """Lint the dbt models with sqlfluff's dbt templater (from dbt's virtualenv)."""
    settings = settings or get_settings()
    sqlfluff = str(Path(settings.dbt_executable).with_name("sqlfluff"))
    environment = dbt_process_environment(settings)
    command = [sqlfluff, "lint", "models", "tests"]
    return subprocess.run(command, env=environment, cwd=settings.dbt_project_dir, check=False).returncode


# --- extract: one source, a day or a range, through Airflow -------------------------------------------------------

EXTRACT_HELP = """Extract one source by hand, through Airflow: its generated DAG runs once per interval of its schedule
(dag.test, real task runs, Assets and all) with the interval in the run's conf and no logical date, as a manual
trigger does. START and END are days (YYYY-MM-DD) and END is inclusive: the runs are the source's intervals that start
on a day from START to END, i.e. the ingestion_date partitions START..END. A daily source runs once per day
([D, D+1)); a weekly one once per week that starts in the range (forecast: the Sundays, [Sunday 02:00, next Sunday
02:00)). Each run replaces exactly its interval's partitions; the first failure stops the command."""


EXTRACT_LOG = PROJECT_ROOT / ".local" / "extract.log"


class ExtractError(RuntimeError):
    """A by-hand extraction cannot start or a run failed; the message says what to do."""


@dataclass(frozen=True)
class Landed:
    entity: str
    rows: int | None
    quarantined: int | None


def find_source(name: str) -> Any:
    """A source group by its name (``erp``) or its DAG id (``extract_erp``)."""
    from medalflow.extract.config import load_sources

    catalogue = load_sources()
    for group in catalogue.groups.values():
        if name in (group.name, group.dag_id):
            return group
    for path, error in catalogue.errors.items():
        if name in (path.stem, f"extract_{path.stem}"):
            raise ExtractError(f"source {name!r} has a broken config:\n{error}")
    known = ", ".join(f"{group.name} ({group.dag_id})" for group in catalogue.groups.values())
    raise ExtractError(f"no source {name!r} in {catalogue.directory}; the sources are: {known}")


def manual_intervals(timetable: Any, first: date, last: date) -> list[Any]:
    """The timetable's data intervals that start on a day from ``first`` to ``last`` (inclusive), in order."""
    from airflow.timetables.base import TimeRestriction

    if last < first:
        raise ExtractError(f"END {last} is before START {first}")
    earliest = datetime.combine(first, datetime.min.time(), UTC)
    latest = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC) - timedelta(microseconds=1)
    restriction = TimeRestriction(earliest=earliest, latest=latest, catchup=True)
    intervals, previous = [], None
    while info := timetable.next_dagrun_info(last_automated_data_interval=previous, restriction=restriction):
        intervals.append(info.data_interval)
        previous = info.data_interval
    return intervals


def ensure_airflow_database() -> None:
    """Airflow's metadata database must be migrated before dag.test() (a no-op when it is)."""
    airflow = Path(sys.executable).with_name("airflow")
    check = [str(airflow), "db", "check-migrations", "--migration-wait-timeout", "0"]
    if subprocess.run(check, capture_output=True, check=False).returncode != 0:
        subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=subprocess.DEVNULL)


def landed(dag_id: str, run_id: str) -> list[Landed]:
    """What a run announced on its raw Assets: rows and quarantined records per entity."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
        ).all()
        found = [
            Landed(event.asset.name.rsplit(".", 1)[-1], event.extra.get("rows"), event.extra.get("quarantined"))
            for event in events
        ]
    return sorted(found, key=lambda item: item.entity)


def failed_tasks(run: Any) -> list[str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
        ).all()
        return sorted(ti.task_id for ti in instances if str(ti.state).lower().endswith(("failed", "upstream_failed")))


def task_errors(log_text: str) -> list[str]:
    """The extraction errors a run's log holds (message and what to do), each once, in order."""
    lines, found = log_text.splitlines(), {}
    for number, line in enumerate(lines):
        if "ExtractionError: " not in line or line.lstrip().startswith(("raise ", "File ")):
            continue
        message = "ExtractionError: " + line.split("ExtractionError: ", 1)[1]
        # The traceback comes first; the failure notifier repeats it with its own suffix on the last line.
        if message not in found and number + 1 < len(lines) and lines[number + 1].startswith("What to do:"):
            found[message] = f"{message}\n{lines[number + 1]}"
        found.setdefault(message, message)
    return list(found.values())


def run_extraction(
    source: str, start: date, end: date, out: TextIO | None = None, log_path: Path | None = EXTRACT_LOG
) -> int:
    """Run ``source``'s extraction DAG for every interval of its schedule that starts from ``start`` to ``end``.

    Airflow's output goes to ``log_path`` (None: left where it is) and the command prints, per interval, what
    landed or why it failed."""
    group = find_source(source)
    from medalflow.extract.dags import build_extraction_dag
    from medalflow_console import output_to_log

    dag = build_extraction_dag(group)
    intervals = manual_intervals(dag.timetable, start, end)
    if not intervals:
        raise ExtractError(
            f"{group.dag_id} runs {group.dag.schedule}: none of its intervals starts between {start} and {end}; "
            "widen the range to a day an interval starts on (a weekly source: a Sunday)"
        )
    for task in dag.tasks:
        task.retries = 0  # by hand: report at once; rerunning the command is the retry
    with contextlib.ExitStack() as stack:
        console = stack.enter_context(output_to_log(log_path, show_tail_on_failure=False)) if log_path else sys.stdout
        where = f" (Airflow's output: {log_path})" if log_path else ""
        out = out or console
        print(f"{group.dag_id}: {len(intervals)} interval(s) of its {group.dag.schedule} schedule{where}", file=out)
        ensure_airflow_database()
        for interval in intervals:
            if not _run_interval(dag, group, interval, end, out, log_path):
                return 1
    return 0


def _run_interval(dag: Any, group: Any, interval: Any, end: date, out: TextIO, log_path: Path | None) -> bool:
    from medalflow.intervals import DataInterval
    from medalflow.lake import RAW_ZONE

    day = interval.start.date()
    header = f"{day}  [{interval.start.isoformat()}, {interval.end.isoformat()})"
    log_offset = log_path.stat().st_size if log_path and log_path.exists() else 0
    run = dag.test(logical_date=None, run_conf=DataInterval(interval.start, interval.end).as_extra())
    if not str(getattr(run, "state", "")).lower().endswith("success"):
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"{header}  FAILED ({', '.join(failed_tasks(run)) or '?'}); nothing landed for this interval", file=out)
        if log_path:
            with open(log_path, errors="replace") as log:
                log.seek(log_offset)
                for error in task_errors(log.read()):
                    print(textwrap.indent(error, "  "), file=out)
        print(f"  once fixed, resume with START={day} END={end} (run {run.run_id})", file=out, flush=True)
        return False
    print(f"{header}  landed:", file=out)
    for item in landed(dag.dag_id, run.run_id):
        quarantined = f", {item.quarantined} quarantined" if item.quarantined else ""
        rows = item.rows if item.rows is not None else "?"
        partition = f"{RAW_ZONE}/{group.name}/{item.entity}/ingestion_date={day}/"
        print(f"  {item.entity:<20} {rows:>10} rows{quarantined}  {partition}", file=out, flush=True)
    return True


def run_pii_scan(threshold: float, partitions: int, out: TextIO | None = None) -> int:
    """Scan the lake's raw zone for personal data; 1 when a column looks personal but is not classified."""
    from medalflow.governance.pii_scan import UnclassifiedPiiError, raise_for_unclassified, scan_lake
    from medalflow.lake import Lake

    out = out or sys.stdout  # looked up when called: a default bound at import would miss a later redirection
    settings = get_settings()
    report = scan_lake(Lake(settings.lake_uri), settings.dbt_project_dir, partitions=partitions, threshold=threshold)
    if not report.findings:
        print(f"medalflow pii-scan: no raw text data under {settings.lake_uri}/raw (MEDALFLOW_LAKE_URI)", file=out)
    for line in report.lines():
        print(line, file=out)
    try:
        raise_for_unclassified(report)
    except UnclassifiedPiiError as error:
        print(f"medalflow pii-scan: {error}", file=sys.stderr)
        return 1
    return 0


LINEAGE_DIR = PROJECT_ROOT / ".local" / "lineage"


def run_lineage(asset: str, out_dir: Path = LINEAGE_DIR, out: TextIO | None = None) -> int:
    """Print a dataset's upstream chain down to the raw lake and the extraction tasks, and draw it (mermaid, SVG)."""
    from medalflow.governance.lineage import project_lineage, render_tree, write_pictures

    out = out or sys.stdout

    try:
        graph = project_lineage()
        root = graph.resolve(asset)
    except (KeyError, FileNotFoundError) as error:
        print(f"medalflow lineage: {error.args[0]}", file=sys.stderr)
        return 2
    out.write(render_tree(graph, root))
    for path in write_pictures(graph, root, out_dir):
        out.write(f"wrote {path}\n")
    return 0


def run_catalog(query: str, out: TextIO | None = None) -> int:
    """Search the data catalog (models, columns, raw datasets, DAGs, tasks), or list every asset with its schema."""
    from medalflow.governance.catalog import project_catalog, render_listing, render_search

    out = out or sys.stdout
    try:
        catalog = project_catalog()
    except FileNotFoundError as error:
        print(f"medalflow catalog: {error.args[0]}", file=sys.stderr)
        return 2
    out.write(render_search(catalog.search(query), query) if query.strip() else render_listing(catalog))
    return 0


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: use YYYY-MM-DD") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medalflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dbt = commands.add_parser("dbt", help="run dbt with the project's settings, e.g. `dbt parse`")
    dbt.add_argument("arguments", nargs=argparse.REMAINDER)
    commands.add_parser("sqlfluff", help="lint the dbt project's SQL")
    demo = commands.add_parser("demo", help="run the whole pipeline on the embedded default and summarise it")
    demo.add_argument("--days", type=int, default=3, help="how many days of data to run (default 3)")
    demo.add_argument("--start", default="2026-01-05", help="first day of the demo window (default 2026-01-05)")
    demo.add_argument("--scale", type=float, default=1.0, help="size of the demo data (default 1.0)")
    demo.add_argument("--seed", type=int, default=42)
    extract = commands.add_parser(
        "extract",
        help="extract one source for a day or a range of days (END inclusive), through Airflow",
        description=EXTRACT_HELP,
    )
    extract.add_argument("source", help="the source's name (erp) or its DAG id (extract_erp)")
    extract.add_argument("start", type=parse_day, help="first day, YYYY-MM-DD")
    extract.add_argument("end", type=parse_day, nargs="?", help="last day, YYYY-MM-DD, inclusive (default: START)")
    extract.add_argument("--log", type=Path, default=EXTRACT_LOG, help=f"where Airflow's output goes ({EXTRACT_LOG})")
    extract.add_argument("--verbose", action="store_true", help="Airflow's output on the terminal instead")
    pii_scan = commands.add_parser(
        "pii-scan", help="sample the raw zone for personal data; fail on a column the dbt sources do not classify"
    )
    pii_scan.add_argument("--threshold", type=float, default=0.3, help="hit rate that makes a column personal")
    pii_scan.add_argument("--partitions", type=int, default=3, help="latest partitions sampled per entity")
    lineage = commands.add_parser(
        "lineage", help="print a dataset's upstream chain to the raw lake and draw it (.mmd and .svg)"
    )
    lineage.add_argument("asset", help="a dbt model's name or unique id, e.g. agg_monthly_cash_flow")
    lineage.add_argument("--out", type=Path, default=LINEAGE_DIR, help=f"where the pictures go ({LINEAGE_DIR})")
    catalog = commands.add_parser(
        "catalog", help="search models, columns, raw datasets, DAGs and tasks (any case, accents optional)"
    )
    catalog.add_argument("query", nargs="?", default="", help='e.g. "risco cambial"; without it, list every asset')
    ui = commands.add_parser("ui", help="after `make demo`: Airflow's UI over the demo's runs (Pipeline health page)")
    ui.add_argument("--port", type=int, default=8080)
    options = parser.parse_args(argv)

    if options.command == "dbt":
        return run_dbt(options.arguments, check=False)
    if options.command == "sqlfluff":
        return run_sqlfluff()
    if options.command == "lineage":
        return run_lineage(options.asset, options.out)
    if options.command == "catalog":
        return run_catalog(options.query)
    if options.command == "pii-scan":
        return run_pii_scan(options.threshold, options.partitions)
    if options.command == "ui":
        from medalflow_demo.pipeline import DEMO_DIR
        from medalflow_demo.ui import serve_ui

        return serve_ui(DEMO_DIR / "demo", options.port)
    if options.command == "extract":
        try:
            log_path = None if options.verbose else options.log
            return run_extraction(options.source, options.start, options.end or options.start, log_path=log_path)
        except ExtractError as error:
            print(f"medalflow extract: {error}", file=sys.stderr)
            return 2
    from medalflow_demo.pipeline import run_demo

    return run_demo(days=options.days, start=options.start, scale=options.scale, seed=options.seed)


if __name__ == "__main__":
    sys.exit(main())
