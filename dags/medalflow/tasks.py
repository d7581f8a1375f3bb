"""Task callables and task factories the DAG files use. Everything heavy is imported inside the callables."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseHook, get_current_context, task

from medalflow import intervals
from medalflow.assets import raw_asset
from medalflow.extract.config import SourceGroup, load_source_group
from medalflow.extract.metadata import IngestionContext
from medalflow.lake import Lake
from medalflow.settings import get_settings

log = logging.getLogger(__name__)


def run_interval(context: Any) -> intervals.DataInterval:
    """The data interval of the running task (the previous day on the extraction timetables)."""
    return intervals.resolve(
        context["dag_run"].conf,
        (),
        (context.get("data_interval_start"), context.get("data_interval_end")),
        context["dag_run"].run_after,
    )


def extract_sql_entity(group_name: str, entity_name: str) -> dict[str, Any]:
    """Extract one ERP table's changes in the run's interval into the raw zone, and announce them on its Asset."""
    from medalflow.extract.sql import DatabaseLocation, extract_changes

    context = get_current_context()
    group = load_source_group(group_name)
    interval = run_interval(context)
    location = DatabaseLocation.from_airflow_connection(BaseHook.get_connection(group.conn_id))
    ingestion = IngestionContext(group.name, context["run_id"], datetime.now(UTC))
    result = extract_changes(
        location, group.entity(entity_name), Lake(get_settings().lake_uri), interval.start, interval.end, ingestion
    )
    context["outlet_events"][raw_asset(group.name, entity_name)].extra = {**interval.as_extra(), "rows": result["rows"]}
    return result


def sql_extraction_tasks(group: SourceGroup) -> list[Any]:
    """One task per entity of a SQL source group, each producing its raw Asset. They run in parallel."""
    return [
        task(
            task_id=f"extract_{entity_name}",
            outlets=[raw_asset(group.name, entity_name)],
            doc_md=f"Changes of `{group.name}.{entity_name}` in the data interval -> raw Parquet.",
        )(extract_sql_entity)(group.name, entity_name)
        for entity_name in group.entities
    ]
