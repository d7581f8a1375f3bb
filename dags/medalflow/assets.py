"""The Airflow Assets the pipeline produces and consumes: one per raw dataset in the lake."""

from __future__ import annotations

from airflow.sdk import Asset

from medalflow.lake import RAW_ZONE
from medalflow.settings import get_settings


def lake_asset_uri(*parts: str) -> str:
    """A lake location as an Asset URI: ``s3://...`` as is, a local folder as ``file://``."""
    root = get_settings().lake_uri.rstrip("/")
    if "://" not in root:
        root = "file://" + root
    return "/".join([root, *parts])


def raw_asset(source: str, entity: str) -> Asset:
    return Asset(name=f"{RAW_ZONE}.{source}.{entity}", uri=lake_asset_uri(RAW_ZONE, source, entity), group="raw")
