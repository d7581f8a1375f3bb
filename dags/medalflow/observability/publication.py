"""Publication of the observability models and the gold monthly tables for readers outside the warehouse.

``dbt run-operation publish_models`` (dbt_project/macros/publish_models.sql, dispatched per warehouse) writes each
model's table as Parquet under ``<lake>/_published/<model>/``: DuckDB with ``COPY ... TO``, Athena with ``UNLOAD``,
Snowflake with ``COPY INTO`` an external stage over the same folder. SQL in the warehouse rather than a Python copy:
the table never leaves the warehouse through the Airflow worker (Athena and Snowflake write to S3 themselves), and
each warehouse's statement is checked where it is compiled (tests/dbt). DuckDB's ``COPY`` does not create parent
folders, so a local lake gets them here first.
"""

from __future__ import annotations

import json
import logging
import posixpath
import tempfile
from pathlib import Path
from typing import Any

from medalflow.settings import Settings, get_settings

log = logging.getLogger(__name__)

PUBLISHED_ZONE = "_published"
OBSERVABILITY_TAG = "observability"


def published_models(manifest: dict[str, Any], project_dir: Path) -> list[str]:
    """The models ``publish_models`` writes: every model tagged observability, plus var ``published_models``."""
    import yaml

    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    extra = set((project.get("vars") or {}).get("published_models") or [])
    names = {
        node["name"]
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model" and (OBSERVABILITY_TAG in node.get("tags", []) or node["name"] in extra)
    }
    return sorted(names)


def publication_folders(lake_uri: str, models: list[str]) -> list[str]:
    """Make ``<lake>/_published/<model>/`` for each model (a no-op on object stores, which have no folders)."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(lake_uri.rstrip("/"))
    folders = [posixpath.join(root.rstrip("/"), PUBLISHED_ZONE, name) for name in models]
    for folder in folders:
        fs.makedirs(folder, exist_ok=True)
    return folders


def publish(settings: Settings | None = None, manifest_path: Path | None = None) -> list[str]:
    """Publish every published model; returns ``<lake>/_published/<model>`` of each. Fails naming dbt's exit code."""
    from medalflow.maintenance import run_dbt

    settings = settings or get_settings()
    manifest = json.loads((manifest_path or settings.manifest_path).read_text())
    models = published_models(manifest, settings.dbt_project_dir)
    publication_folders(settings.lake_uri, models)
    with tempfile.TemporaryDirectory(prefix="medalflow-publish-") as target:
        completed = run_dbt(settings, ["run-operation", "publish_models"], target)
    if completed.returncode:
        raise RuntimeError(
            f"dbt run-operation publish_models failed with exit code {completed.returncode} (its output is above)"
        )
    return [posixpath.join(settings.lake_uri.rstrip("/"), PUBLISHED_ZONE, name) for name in models]
