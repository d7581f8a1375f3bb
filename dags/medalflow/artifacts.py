"""dbt's artifacts and docs in the lake, so a run can be inspected after its temporary project folder is gone.

Layout (the lake's contract, docs/raw-zone.md)::

    <lake>/_artifacts/dbt/<dag_id>/<run_id>/manifest.json                              the project as dbt ran it
    <lake>/_artifacts/dbt/<dag_id>/<run_id>/<task_id>/attempt=<n>/run_results.json      each dbt invocation's results
    <lake>/_artifacts/dbt/<dag_id>/<run_id>/<task_id>/attempt=<n>/sources.json          a freshness check's results
    <lake>/_docs/dbt/{index.html,manifest.json,catalog.json}                          the published dbt docs

Watcher mode runs one dbt build per DAG run (one ``run_results.json``); local mode one per task, hence the task and
attempt folders (a retry never overwrites the failure it retries). The manifest is the same for every task of a run
and is stored once. The docs location can be moved with ``MEDALFLOW_DBT_DOCS_URI`` (e.g. a bucket served as a site).
"""

from __future__ import annotations

import logging
import os
import posixpath
from pathlib import Path
from typing import Any

from medalflow.settings import get_settings

log = logging.getLogger(__name__)

ARTIFACTS_ZONE = "_artifacts/dbt"
DOCS_ZONE = "_docs/dbt"
DOCS_URI_VARIABLE = "MEDALFLOW_DBT_DOCS_URI"
# What dbt's docs site needs: the page, and the two files it loads next to it.
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
RUN_RESULTS = "run_results.json"
SOURCES = "sources.json"  # what `dbt source freshness` writes
MANIFEST = "manifest.json"


def safe_segment(value: str) -> str:
    """A run or task id as one path segment: ':' and '+' of timestamps kept readable, '/' never nests."""
    return "".join(c if c.isalnum() or c in "-_.:+=" else "_" for c in value)


def run_folder(dag_id: str, run_id: str) -> str:
    """Lake-relative folder of one DAG run's dbt artifacts."""
    return posixpath.join(ARTIFACTS_ZONE, safe_segment(dag_id), safe_segment(run_id))


def attempt_folder(dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    return posixpath.join(run_folder(dag_id, run_id), safe_segment(task_id), f"attempt={try_number}")


def docs_uri() -> str:
    """Where the dbt docs are published and served from: ``MEDALFLOW_DBT_DOCS_URI``, else ``<lake>/_docs/dbt``."""
    return os.getenv(DOCS_URI_VARIABLE) or posixpath.join(get_settings().lake_uri.rstrip("/"), DOCS_ZONE)


def _filesystem(uri: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(uri)
    return fs, path.rstrip("/")


def store_run_artifacts(
    target_dir: str | Path, lake_uri: str, dag_id: str, run_id: str, task_id: str, try_number: int
) -> list[str]:
    """Copy one dbt invocation's run_results.json (and sources.json, from a freshness check; and the run's
    manifest.json, once) into the lake.

    Returns the lake-relative paths written. Files dbt did not write (it failed before running anything) are skipped.
    """
    fs, root = _filesystem(lake_uri)
    target, written = Path(target_dir), []
    attempt = attempt_folder(dag_id, run_id, task_id, try_number)
    copies = [(target / name, posixpath.join(attempt, name)) for name in (RUN_RESULTS, SOURCES)]
    manifest = posixpath.join(run_folder(dag_id, run_id), MANIFEST)
    if not fs.exists(posixpath.join(root, manifest)):
        copies.append((target / MANIFEST, manifest))
    for source, relative in copies:
        if not source.is_file():
            continue
        destination = posixpath.join(root, relative)
        fs.makedirs(posixpath.dirname(destination), exist_ok=True)
        fs.put_file(str(source), destination)
        written.append(relative)
    log.info("dbt artifacts stored in %s: %s", lake_uri, written or "none (dbt wrote no artifacts)")
    return written


def store_artifacts_callback(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos ``callback``: runs after every dbt invocation, failed ones included, with its temporary project dir.

    Never fails the task: losing an artifact copy must not turn a good dbt run red.
    """
    if context is None:
        return
    ti = context["ti"]
    try:
        store_run_artifacts(
            Path(project_dir) / "target",
            get_settings().lake_uri,
            ti.dag_id,
            context["run_id"],
            ti.task_id,
            ti.try_number,
        )
    except Exception:
        log.exception("could not store the dbt artifacts of %s in the lake", ti.task_id)


def publish_docs(target_dir: str | Path, destination_uri: str) -> list[str]:
    """Copy the docs site dbt generated (``dbt docs generate``) to where the Airflow plugin serves it from.

    The page is copied last, so a reader never gets a new page with the previous run's manifest missing.
    """
    fs, root = _filesystem(destination_uri)
    fs.makedirs(root, exist_ok=True)
    target = Path(target_dir)
    missing = [name for name in DOCS_FILES if not (target / name).is_file()]
    if missing:
        raise FileNotFoundError(f"dbt docs not generated in {target}: missing {missing}")
    for name in sorted(DOCS_FILES, key=lambda name: name == "index.html"):
        fs.put_file(str(target / name), posixpath.join(root, name))
    log.info("dbt docs published to %s", destination_uri)
    return [posixpath.join(destination_uri.rstrip("/"), name) for name in DOCS_FILES]


def read_docs_file(name: str, location: str | None = None) -> bytes:
    """One file of the published docs site; FileNotFoundError when it is not (yet) published."""
    if name not in DOCS_FILES:
        raise FileNotFoundError(name)
    fs, root = _filesystem(location or docs_uri())
    with fs.open(posixpath.join(root, name), "rb") as handle:
        return handle.read()
