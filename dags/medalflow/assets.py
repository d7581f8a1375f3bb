"""The Airflow Assets the pipeline produces and consumes: one per raw dataset in the lake."""

from __future__ import annotations

import os

from airflow.sdk import Asset

from medalflow.lake import RAW_ZONE
from medalflow.settings import get_settings


def lake_asset_uri(*parts: str) -> str:
    """A lake location as an Asset URI: ``s3://...`` as is, a local folder as ``file://`` + its absolute path.

    Absolute, so that a relative ``MEDALFLOW_LAKE_URI`` (``./.local/lake``) still names one place: the Asset's URI
    is also its OpenLineage dataset name (``file`` + path, medalflow.governance.openlineage), which a dbt source
    reading the same folder must match.
    """
    root = get_settings().lake_uri.rstrip("/")
    if "://" not in root:
        root = "file://" + os.path.abspath(root)
    return "/".join([root, *parts])


def raw_asset(source: str, entity: str) -> Asset:
    """The Asset of one raw dataset: ``raw.<source>.<entity>`` at ``<lake>/raw/<source>/<entity>``. The OpenLineage
    provider reports it as the extraction task's output dataset under the same location."""
    return Asset(name=f"{RAW_ZONE}.{source}.{entity}", uri=lake_asset_uri(RAW_ZONE, source, entity), group="raw")
