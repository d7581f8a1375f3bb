"""The runs' artifacts as raw datasets dbt reads on every warehouse: ``<lake>/raw/_ops/<dataset>/``.

What the runs keep in the lake (medalflow.artifacts, medalflow.observability.records)::

    _artifacts/dbt/<dag_id>/<run_id>/manifest.json
    _artifacts/dbt/<dag_id>/<run_id>/<task_id>/attempt=<n>/run_results.json    (and sources.json for freshness)
    _artifacts/extract/<dag_id>/<run_id>/<entity>/attempt=<n>.json

is flattened into four datasets, laid out like the rest of the raw zone (docs/raw-zone.md), so the DuckDB models read
them in place and Athena and Snowflake read the raw tables registered over them (``create_raw_tables``)::

    raw/_ops/dbt_invocations/ingestion_date=D/<kind>__<dag_id>__<run_id>.parquet    one row per dbt invocation
    raw/_ops/dbt_node_results/ingestion_date=D/...                                  one row per node per invocation
    raw/_ops/extraction_runs/ingestion_date=D/...                                   one row per extraction attempt
    raw/_ops/source_freshness/ingestion_date=D/...                                  one row per source table checked

One file per DAG run and dataset, ``D`` the day the run's first attempt started (UTC). Landing a run again (a retry
added an attempt) rewrites the same files and removes any it no longer writes: never a duplicate. Which runs are
landed is decided by a ledger (``raw/_ops/_landed.json``: each run's artifact files and sizes when last landed), so a
landing reads only the runs that changed since; delete the ledger to land everything again.
"""

from __future__ import annotations

import json
import logging
import posixpath
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from medalflow.artifacts import ARTIFACTS_ZONE, MANIFEST, RUN_RESULTS, safe_segment
from medalflow.observability.records import EXTRACT_ARTIFACTS_ZONE, read_record

log = logging.getLogger(__name__)

OPS_ZONE = "raw/_ops"
LEDGER = posixpath.join(OPS_ZONE, "_landed.json")
SOURCES_JSON = "sources.json"
STAGING = "_staging/ops"
# Layers a model's tags or folder name it by (dbt_project.yml).
LAYERS = ("bronze", "silver", "gold", "observability")
NODE_TYPES = {"model", "snapshot", "seed", "test", "unit_test"}
FAILED_STATUSES = {"error", "fail", "runtime error"}
COMMANDS = {"freshness": "source freshness", "source-freshness": "source freshness"}
MESSAGE_LIMIT = 4000


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    text, ts, i64, f64 = pa.string(), pa.timestamp("us"), pa.int64(), pa.float64()
    return {
        "dbt_invocations": pa.schema(
            [
                ("invocation_id", text), ("dag_id", text), ("run_id", text), ("task_id", text),
                ("try_number", pa.int32()), ("command", text), ("target_type", text), ("started_at", ts),
                ("completed_at", ts), ("elapsed_seconds", f64), ("nodes_total", pa.int32()),
                ("nodes_failed", pa.int32()), ("status", text),
            ]
        ),
        "dbt_node_results": pa.schema(
            [
                ("invocation_id", text), ("dag_id", text), ("run_id", text), ("run_started_at", ts),
                ("unique_id", text), ("resource_type", text), ("node_name", text), ("layer", text),
                ("materialization", text), ("tested_model", text), ("column_name", text), ("status", text),
                ("started_at", ts), ("completed_at", ts), ("duration_seconds", f64), ("rows_affected", i64),
                ("bytes_scanned", i64), ("failures", i64), ("message", text),
            ]
        ),
        "extraction_runs": pa.schema(
            [
                ("dag_id", text), ("run_id", text), ("try_number", pa.int32()), ("source", text), ("entity", text),
                ("interval_start", ts), ("interval_end", ts), ("started_at", ts), ("completed_at", ts),
                ("rows_landed", i64), ("rows_quarantined", i64), ("status", text), ("error", text),
            ]
        ),
        "source_freshness": pa.schema(
            [
                ("invocation_id", text), ("dag_id", text), ("run_id", text), ("checked_at", ts),
                ("unique_id", text), ("source_name", text), ("table_name", text), ("max_loaded_at", ts),
                ("age_hours", f64), ("status", text),
            ]
        ),
    }  # fmt: skip


DATASETS = ("dbt_invocations", "dbt_node_results", "extraction_runs", "source_freshness")


def timestamp(value: Any) -> datetime | None:
    """An ISO 8601 moment as a naive UTC datetime (how the raw zone stores time); None for nothing."""
    if value in (None, ""):
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _count(value: Any) -> int | None:
    """A non-negative count, or None when the artifact does not know it (dbt-duckdb reports -1)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


# --- one DAG run's artifacts ---------------------------------------------------------------------------------------


@dataclass
class RunArtifacts:
    """The artifact files of one DAG run, by kind (``dbt`` or ``extract``)."""

    kind: str
    dag_id: str
    run_id: str
    files: dict[str, int] = field(default_factory=dict)  # lake-relative path -> size

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.dag_id}/{self.run_id}"

    @property
    def file_stem(self) -> str:
        return safe_segment(f"{self.kind}__{self.dag_id}__{self.run_id}").replace(":", "_").replace("+", "_")

    def fingerprint(self) -> list[list[Any]]:
        return [[path, size] for path, size in sorted(self.files.items())]


def attempt_number(segment: str) -> int:
    """``attempt=3`` (or ``attempt=3.json``) -> 3."""
    return int(segment.removeprefix("attempt=").removesuffix(".json"))


def node_rows(
    results: Mapping[str, Any], manifest: Mapping[str, Any], invocation: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One row per model, snapshot, seed, test and unit test in a run_results.json, described from the manifest."""
    nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    rows = []
    for result in results.get("results", []):
        unique_id = result.get("unique_id", "")
        node = nodes.get(unique_id, {})
        resource_type = node.get("resource_type") or unique_id.split(".", 1)[0]
        if resource_type not in NODE_TYPES:
            continue
        config = node.get("config", {})
        tags = set(node.get("tags", [])) | set(config.get("tags", []) or [])
        fqn = node.get("fqn", [])
        layer = next((name for name in LAYERS if name in tags), None)
        if layer is None and len(fqn) > 2 and fqn[1] in LAYERS:
            layer = fqn[1]
        under_test = node.get("model")  # a unit test's model
        tested = node.get("attached_node") or (under_test and f"model.{node.get('package_name')}.{under_test}")
        tested_name = nodes.get(tested, {}).get("name") if tested else None
        if tested and not tested_name:
            tested_name = str(tested).rsplit(".", 1)[-1]
        timing = {entry.get("name"): entry for entry in result.get("timing", [])}
        bounds = [entry.get(key) for entry in timing.values() for key in ("started_at", "completed_at")]
        moments = sorted(m for m in (timestamp(value) for value in bounds) if m)
        execute = timing.get("execute", {})
        response = result.get("adapter_response") or {}
        rows.append(
            {
                "invocation_id": invocation["invocation_id"],
                "dag_id": invocation["dag_id"],
                "run_id": invocation["run_id"],
                "run_started_at": invocation["started_at"],
                "unique_id": unique_id,
                "resource_type": resource_type,
                "node_name": node.get("name") or unique_id.rsplit(".", 1)[-1],
                "layer": layer,
                "materialization": config.get("materialized") or (resource_type if resource_type != "model" else None),
                "tested_model": tested_name,
                "column_name": node.get("column_name")
                or (node.get("test_metadata") or {}).get("kwargs", {}).get("column_name"),
                "status": str(result.get("status")),
                "started_at": timestamp(execute.get("started_at")) or (moments[0] if moments else None),
                "completed_at": timestamp(execute.get("completed_at")) or (moments[-1] if moments else None),
                "duration_seconds": float(result.get("execution_time") or 0.0),
                "rows_affected": _count(response.get("rows_affected")),
                "bytes_scanned": _count(response.get("data_scanned_in_bytes")),
                "failures": _count(result.get("failures")),
                "message": None if result.get("message") is None else str(result["message"])[:MESSAGE_LIMIT],
            }
        )
    return rows


def invocation_row(
    results: Mapping[str, Any], manifest: Mapping[str, Any], dag_id: str, run_id: str, task_id: str, try_number: int
) -> dict[str, Any]:
    """The invocation a run_results.json records (its nodes counted by node_rows' rules)."""
    metadata = results.get("metadata", {})
    args = results.get("args", {})
    completed = timestamp(metadata.get("generated_at"))
    elapsed = float(results.get("elapsed_time") or 0.0)
    started = timestamp(metadata.get("invocation_started_at"))
    if started is None:
        starts = [timestamp(t.get("started_at")) for r in results.get("results", []) for t in r.get("timing", [])]
        started = min([s for s in starts if s], default=None)
    if started is None and completed is not None:
        from datetime import timedelta

        started = completed - timedelta(seconds=elapsed)
    # Models, snapshots, seeds and tests (node_rows' nodes); hooks are not counted.
    statuses = [
        str(result.get("status"))
        for result in results.get("results", [])
        if str(result.get("unique_id", "")).split(".", 1)[0] in NODE_TYPES
    ]
    failed = sum(status in FAILED_STATUSES for status in statuses)
    command = str(args.get("which") or "unknown")
    target = (manifest.get("metadata") or {}).get("adapter_type") or args.get("target")
    return {
        "invocation_id": metadata.get("invocation_id") or f"{dag_id}.{run_id}.{task_id}.{try_number}",
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "try_number": try_number,
        "command": COMMANDS.get(command, command),
        "target_type": target,
        "started_at": started,
        "completed_at": completed,
        "elapsed_seconds": elapsed,
        "nodes_total": len(statuses),
        "nodes_failed": failed,
        "status": "error" if failed else "success",
    }


def freshness_rows(sources: Mapping[str, Any], manifest: Mapping[str, Any], dag_id: str, run_id: str) -> list[dict]:
    """One row per source table a ``dbt source freshness`` checked (its sources.json)."""
    metadata = sources.get("metadata", {})
    known = manifest.get("sources", {})
    rows = []
    for result in sources.get("results", []):
        unique_id = result.get("unique_id", "")
        node = known.get(unique_id, {})
        parts = unique_id.split(".")
        age = result.get("max_loaded_at_time_ago_in_s")
        rows.append(
            {
                "invocation_id": metadata.get("invocation_id") or f"{dag_id}.{run_id}",
                "dag_id": dag_id,
                "run_id": run_id,
                "checked_at": timestamp(result.get("snapshotted_at")) or timestamp(metadata.get("generated_at")),
                "unique_id": unique_id,
                "source_name": node.get("source_name") or (parts[2] if len(parts) > 3 else None),
                "table_name": node.get("name") or parts[-1],
                "max_loaded_at": timestamp(result.get("max_loaded_at")),
                "age_hours": None if age is None else float(age) / 3600.0,
                "status": str(result.get("status")),
            }
        )
    return rows


def extraction_row(payload: bytes | str) -> dict[str, Any]:
    record = read_record(payload)
    return {
        "dag_id": record.dag_id,
        "run_id": record.run_id,
        "try_number": int(record.try_number),
        "source": record.source,
        "entity": record.entity,
        "interval_start": timestamp(record.interval_start),
        "interval_end": timestamp(record.interval_end),
        "started_at": timestamp(record.started_at),
        "completed_at": timestamp(record.completed_at),
        "rows_landed": _count(record.rows_landed),
        "rows_quarantined": _count(record.rows_quarantined),
        "status": record.status,
        "error": None if record.error is None else record.error[:MESSAGE_LIMIT],
    }


# --- the lake ------------------------------------------------------------------------------------------------------


class ArtifactLake:
    """The lake's artifacts read and the ops datasets written, through fsspec (a local folder or s3://)."""

    def __init__(self, lake_uri: str) -> None:
        from fsspec.core import url_to_fs

        self.uri = lake_uri.rstrip("/")
        self.fs, root = url_to_fs(self.uri, skip_instance_cache=True)
        self.root = root.rstrip("/")

    def path(self, relative: str) -> str:
        return posixpath.join(self.root, relative)

    def read(self, relative: str) -> bytes:
        with self.fs.open(self.path(relative), "rb") as handle:
            return handle.read()

    def read_json(self, relative: str) -> dict[str, Any]:
        try:
            return json.loads(self.read(relative))
        except json.JSONDecodeError as error:
            raise ValueError(f"{self.uri}/{relative} is not JSON ({error}): remove or fix the file") from error

    def exists(self, relative: str) -> bool:
        return self.fs.exists(self.path(relative))

    def runs(self) -> list[RunArtifacts]:
        """Every DAG run that left artifacts, with its files' sizes."""
        found: dict[tuple[str, str, str], RunArtifacts] = {}
        for kind, zone in (("dbt", ARTIFACTS_ZONE), ("extract", EXTRACT_ARTIFACTS_ZONE)):
            base = self.path(zone)
            self.fs.invalidate_cache(base)
            if not self.fs.exists(base):
                continue
            for path, info in self.fs.find(base, detail=True).items():
                relative = posixpath.relpath(path, self.root)
                parts = posixpath.relpath(relative, zone).split("/")
                if len(parts) < 3:
                    continue
                run = found.setdefault((kind, parts[0], parts[1]), RunArtifacts(kind, parts[0], parts[1]))
                run.files[relative] = int(info.get("size") or 0)
        return sorted(found.values(), key=lambda run: run.key)

    def write_table(self, relative: str, rows: list[dict[str, Any]], schema: Any) -> None:
        """One Parquet file, staged then moved into place: a reader sees the old file or the new one."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        staging = self.path(posixpath.join(STAGING, f"{uuid.uuid4().hex}.parquet"))
        self.fs.makedirs(posixpath.dirname(staging), exist_ok=True)
        with self.fs.open(staging, "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), handle, compression="zstd")
        destination = self.path(relative)
        self.fs.makedirs(posixpath.dirname(destination), exist_ok=True)
        self.fs.mv(staging, destination)

    def remove(self, relative: str) -> None:
        if self.fs.exists(self.path(relative)):
            self.fs.rm(self.path(relative))


def dbt_run_tables(lake: ArtifactLake, run: RunArtifacts) -> dict[str, list[dict[str, Any]]]:
    """The invocations, node results and freshness checks of one dbt DAG run."""
    run_folder = posixpath.join(ARTIFACTS_ZONE, run.dag_id, run.run_id)
    manifest_path = posixpath.join(run_folder, MANIFEST)
    manifest = lake.read_json(manifest_path) if manifest_path in run.files else {}
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for relative in sorted(run.files):
        parts = posixpath.relpath(relative, run_folder).split("/")
        # <task_id>/attempt=<n>/<file>
        if len(parts) != 3 or not parts[1].startswith("attempt="):
            continue
        task_id, try_number, name = parts[0], attempt_number(parts[1]), parts[2]
        if name == RUN_RESULTS:
            results = lake.read_json(relative)
            invocation = invocation_row(results, manifest, run.dag_id, run.run_id, task_id, try_number)
            tables["dbt_invocations"].append(invocation)
            tables["dbt_node_results"] += node_rows(results, manifest, invocation)
        elif name == SOURCES_JSON:
            tables["source_freshness"] += freshness_rows(lake.read_json(relative), manifest, run.dag_id, run.run_id)
    return tables


def extract_run_tables(lake: ArtifactLake, run: RunArtifacts) -> dict[str, list[dict[str, Any]]]:
    rows = []
    for relative in sorted(run.files):
        if relative.endswith(".json"):
            try:
                rows.append(extraction_row(lake.read(relative)))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{lake.uri}/{relative}: not an extraction run record ({error})") from error
    return {"extraction_runs": rows}


def run_day(tables: Mapping[str, list[dict[str, Any]]]) -> date:
    """The partition of a run: the day (UTC) its first attempt started."""
    moments = [
        row.get(column)
        for rows in tables.values()
        for row in rows
        for column in ("started_at", "checked_at")
        if row.get(column) is not None
    ]
    return min(moments).date() if moments else datetime.now(UTC).date()


@dataclass
class LandingReport:
    landed_runs: list[str] = field(default_factory=list)
    unchanged_runs: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DATASETS, 0))
    files: list[str] = field(default_factory=list)


def land_run(lake: ArtifactLake, run: RunArtifacts, previous_files: Iterable[str] = ()) -> tuple[list[str], dict]:
    """Land one run's datasets; remove the files an earlier landing of it wrote and this one does not."""
    tables = dbt_run_tables(lake, run) if run.kind == "dbt" else extract_run_tables(lake, run)
    day = run_day(tables)
    schemas = _schemas()
    written = []
    for dataset, rows in sorted(tables.items()):
        if not rows:
            continue
        relative = posixpath.join(OPS_ZONE, dataset, f"ingestion_date={day.isoformat()}", f"{run.file_stem}.parquet")
        lake.write_table(relative, rows, schemas[dataset])
        written.append(relative)
    for stale in set(previous_files) - set(written):
        lake.remove(stale)
    return written, {dataset: len(rows) for dataset, rows in tables.items()}


def land_artifacts(lake_uri: str, force: bool = False) -> LandingReport:
    """Land every run whose artifacts changed since the last landing (every run with ``force``)."""
    lake = ArtifactLake(lake_uri)
    ledger: dict[str, Any] = lake.read_json(LEDGER) if lake.exists(LEDGER) and not force else {}
    report = LandingReport()
    for run in lake.runs():
        entry = ledger.get(run.key) or {}
        if entry.get("fingerprint") == run.fingerprint():
            report.unchanged_runs += 1
            continue
        written, counts = land_run(lake, run, entry.get("files", []))
        ledger[run.key] = {"fingerprint": run.fingerprint(), "files": written}
        report.landed_runs.append(run.key)
        report.files += written
        for dataset, count in counts.items():
            report.rows[dataset] = report.rows.get(dataset, 0) + count
    if report.landed_runs:
        ledger_path = lake.path(LEDGER)
        lake.fs.makedirs(posixpath.dirname(ledger_path), exist_ok=True)
        with lake.fs.open(ledger_path, "w") as handle:
            handle.write(json.dumps(ledger, indent=1, sort_keys=True))
    log.info(
        "ops datasets landed in %s/%s: %s run(s) (%s unchanged), rows %s",
        lake.uri,
        OPS_ZONE,
        len(report.landed_runs),
        report.unchanged_runs,
        report.rows,
    )
    return report
