"""Task callables and factories of the extraction DAGs: SQL (CDC), REST and file drops.

Each raw dataset is one task with one outlet Asset (:func:`medalflow.assets.raw_asset`); its event ``extra`` carries
the data interval (so the medallion run knows what landed), the rows written and the records quarantined. Heavy
imports (requests, pyarrow) happen inside the callables, at run time.
"""

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


def _announce(context: Any, group: SourceGroup, entity_name: str, interval: Any, result: dict[str, Any]) -> None:
    context["outlet_events"][raw_asset(group.name, entity_name)].extra = {
        **interval.as_extra(),
        "rows": result["rows"],
        "quarantined": result["quarantined"],
    }


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


def extract_rest_entity(group_name: str, entity_name: str) -> dict[str, Any]:
    """Extract one REST entity for the run's interval into the raw zone and announce it on its Asset."""
    from medalflow.extract.rest import ApiLocation, RestClient, RestSettings, extract_entity, read_parent_keys

    context = get_current_context()
    group = load_source_group(group_name)
    entity = group.entity(entity_name)
    interval = run_interval(context)
    location = ApiLocation.from_airflow_connection(BaseHook.get_connection(group.conn_id))
    lake = Lake(get_settings().lake_uri)
    ingestion = IngestionContext(group.name, context["run_id"], datetime.now(UTC))
    parent_keys = read_parent_keys(lake, group.name, entity, interval.start.date()) if entity.parent else None
    with RestClient(location, RestSettings.from_options(group.options)) as client:
        result = extract_entity(client, entity, lake, interval.start, interval.end, ingestion, parent_keys)
    _announce(context, group, entity_name, interval, result)
    return result


def extract_file_entity(group_name: str, entity_name: str) -> dict[str, Any]:
    """Land one kind of partner file drop for the run's interval day and announce it on its Asset."""
    from medalflow.extract.files import extract_file_drops
    from medalflow.extract.quarantine import Limits

    context = get_current_context()
    group = load_source_group(group_name)
    interval = run_interval(context)
    ingestion = IngestionContext(group.name, context["run_id"], datetime.now(UTC))
    lake = Lake(get_settings().lake_uri)
    limits = Limits.from_options(group.options)
    result = extract_file_drops(group.entity(entity_name), lake, interval.start.date(), ingestion, limits)
    _announce(context, group, entity_name, interval, result)
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


def rest_extraction_tasks(group: SourceGroup) -> dict[str, Any]:
    """One task per entity of a REST source group. Top-level entities run in parallel; an entity fetched per key of
    a parent (``parent:`` in the YAML) runs after it."""
    tasks = {
        entity_name: task(
            task_id=f"extract_{entity_name}",
            outlets=[raw_asset(group.name, entity_name)],
            doc_md=f"`{group.name}.{entity_name}` from `{entity.path}` for the data interval -> raw Parquet.",
        )(extract_rest_entity)(group.name, entity_name)
        for entity_name, entity in group.entities.items()
    }
    for entity_name, entity in group.entities.items():
        if entity.parent:
            tasks[entity.parent] >> tasks[entity_name]
    return tasks


def file_extraction_tasks(group: SourceGroup) -> dict[str, Any]:
    """One task per kind of file drop, each producing its raw Asset."""
    return {
        entity_name: task(
            task_id=f"extract_{entity_name}",
            outlets=[raw_asset(group.name, entity_name)],
            doc_md=f"`{group.name}.{entity_name}` files of the interval's day from the inbox -> raw Parquet.",
        )(extract_file_entity)(group.name, entity_name)
        for entity_name in group.entities
    }
