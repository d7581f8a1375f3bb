"""OpenLineage for medalflow: what the extraction tasks read and write, and what each dbt model builds from what.

Events go out through Airflow's OpenLineage provider and its one configured client, so the transport is chosen by
configuration alone (docs/operations.md, "Lineage"): a file locally, Amazon DataZone or an HTTP backend (Marquez) on
AWS; with no transport set the provider is disabled and nothing here runs or calls out.

Dataset names follow OpenLineage's naming spec, and the raw zone is named the same way on both sides of the lake:

* an extraction task's output is its raw dataset, ``file`` + ``/abs/lake/raw/<source>/<entity>`` for a local lake or
  ``s3://<bucket>`` + ``<prefix>/raw/<source>/<entity>`` on S3 (:func:`lake_dataset`, the same names the provider
  gives the task's raw Asset);
* a dbt source is read from that same place (its ``meta.lake_location``), so its dataset is that raw dataset, not
  the warehouse relation the dbt processor would name (``duckdb://...`` + ``warehouse.raw_erp.orders``): the shared
  name is what joins extraction to the medallion in a lineage backend.

Extraction tasks (:class:`ExtractionTaskExtractor`, registered with ``[openlineage] extractors``): outputs the raw
dataset with a schema facet from the declared columns, inputs the source system (the ERP table
``postgres://host:port`` + ``database.schema.table``, the API endpoint ``https://host:port`` + path, the file drops'
inbox folders). Without the extractor registered, the provider still reports the raw dataset from the task's outlet
Asset, under the same name.

The medallion (:func:`emit_dbt_lineage`, a Cosmos callback after every dbt invocation): in watcher mode the model
tasks end in the triggerer, where no listener runs, so Cosmos emits one event for the producer with every model's
datasets mixed together. The callback parses the invocation's ``manifest.json`` and ``run_results.json`` with
openlineage-integration-common's dbt processor (what Cosmos uses) and emits one run per dbt node (job
``<database>.<schema>.medalflow.<model>.build.run``, parent: the Airflow task that ran dbt), with its parents as
inputs and schema, documentation and ownership facets. It also hands the renamed events to the Cosmos task, so
the producer's own event names the raw datasets the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from medalflow.assets import lake_asset_uri
from medalflow.lake import RAW_ZONE

log = logging.getLogger(__name__)

# The Airflow task type of ``@task`` callables: the extraction tasks are TaskFlow tasks.
DECORATED_PYTHON_TASK = "_PythonDecoratedOperator"
EXTRACTOR_CLASSPATH = "medalflow.governance.openlineage.ExtractionTaskExtractor"
PRODUCER = "https://github.com/medalflow/medalflow"
# Where a dbt source's raw data lives in the lake ({name}: the table's name), in the sources' meta.
LAKE_LOCATION_META = "lake_location"


# --- dataset names ----------------------------------------------------------------------------------------------------


def lake_dataset(uri: str) -> tuple[str, str]:
    """A lake location as an OpenLineage (namespace, name): ``s3://bucket`` + key, local files ``file`` + path.

    The same as the provider's Asset converters (``airflow.providers.amazon.aws.assets.s3``,
    ``airflow.providers.common.io.assets.file``), so a raw Asset and this name always agree.
    """
    if "://" not in uri:
        return "file", os.path.abspath(uri)
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return ("file://" + parts.netloc if parts.netloc else "file"), parts.path
    scheme = "gs" if parts.scheme == "gcs" else parts.scheme
    return f"{scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"


def raw_dataset(source: str, entity: str) -> tuple[str, str]:
    """The OpenLineage (namespace, name) of one raw dataset in the lake."""
    return lake_dataset(lake_asset_uri(RAW_ZONE, source, entity))


def source_lake_dataset(source_node: Mapping[str, Any]) -> tuple[str, str] | None:
    """The raw dataset a dbt source node reads (its ``meta.lake_location``), or None if it declares none."""
    location = (source_node.get("meta") or {}).get(LAKE_LOCATION_META)
    if not location:
        return None
    return lake_dataset(lake_asset_uri(*location.replace("{name}", source_node["name"]).strip("/").split("/")))


def parse_raw_asset_name(name: str) -> tuple[str, str] | None:
    """``raw.<source>.<entity>`` (:func:`medalflow.assets.raw_asset`) -> (source, entity); None for other Assets."""
    zone, _, rest = name.partition(".")
    source, _, entity = rest.partition(".")
    if zone != RAW_ZONE or not source or not entity:
        return None
    return source, entity


# --- extraction tasks -------------------------------------------------------------------------------------------------


def _schema_facet(columns: Mapping[str, str]) -> Any:
    from openlineage.client.facet_v2 import schema_dataset

    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in columns.items()]
    )


def _source_system_datasets(group: Any, entity: Any, connection: Any | None) -> list[tuple[str, str]]:
    """Where an entity is read, as OpenLineage (namespace, name): a table, an endpoint, the inbox folders."""
    if group.kind == "files":
        # The day's folder changes every run: each partner's dataset is its folder above the days.
        template = getattr(entity, "inbox", "inbox/{partner}/{entity}/{day}").split("{day}", 1)[0].rstrip("/")
        return [
            lake_dataset(lake_asset_uri(*template.format(partner=partner, entity=entity.name).split("/")))
            for partner in getattr(entity, "formats", None) or {}
        ]
    if connection is None:
        return []
    host = connection.host or ""
    port = f":{connection.port}" if connection.port else ""
    if group.kind == "sql":
        conn_type = (connection.conn_type or "").lower()
        table = getattr(entity, "table", entity.name)
        db_schema = getattr(entity, "db_schema", None)
        if conn_type in {"postgres", "postgresql"}:
            name = ".".join(part for part in (connection.schema, db_schema or "public", table) if part)
            return [(f"postgres://{host}{port}", name)]
        if conn_type in {"mysql", "mariadb"}:
            return [
                (f"mysql://{host}{port}", ".".join(part for part in (db_schema or connection.schema, table) if part))
            ]
        if conn_type == "sqlite":  # the demo's ERP: the database is a file
            return [(f"sqlite://{os.path.abspath(host)}", table)]
        return [(f"{conn_type}://{host}{port}", table)]
    if group.kind == "rest":
        base = host.rstrip("/") if "://" in host else f"{connection.schema or 'https'}://{host}"
        return [(f"{base}{port}", getattr(entity, "path", "/"))]
    return []


def extraction_lineage(source: str, entity_name: str, connection_lookup: Any = None) -> tuple[list[Any], list[Any]]:
    """(inputs, outputs) OpenLineage datasets of one extraction task: the source system in, the raw dataset out."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import documentation_dataset

    from medalflow.extract.config import load_source_group

    group = load_source_group(source)
    entity = group.entity(entity_name)
    connection = None
    if group.conn_id and connection_lookup is not None:
        try:
            connection = connection_lookup(group.conn_id)
        except Exception as error:  # lineage never fails a task: the output is still reported
            log.warning(
                "OpenLineage: no input dataset for %s.%s: connection %r: %s",
                source,
                entity_name,
                group.conn_id,
                type(error).__name__,
            )
    declared = getattr(getattr(entity, "schema", None), "columns", None) or {}
    facets: dict[str, Any] = {}
    if declared:
        facets["schema"] = _schema_facet(declared)
    if description := group.entity_descriptions.get(entity_name):
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(description=description)
    namespace, name = raw_dataset(source, entity_name)
    outputs = [OutputDataset(namespace=namespace, name=name, facets=facets)]
    inputs = [InputDataset(namespace=ns, name=nm) for ns, nm in _source_system_datasets(group, entity, connection)]
    return inputs, outputs


def _extractor_base() -> type:
    from airflow.providers.openlineage.extractors.base import BaseExtractor

    return BaseExtractor


class ExtractionTaskExtractor(_extractor_base()):  # type: ignore[misc]
    """The OpenLineage provider's extractor for TaskFlow tasks: an extraction task (one whose outlet is a raw Asset)
    reports its source system as input and its raw dataset, with the declared columns, as output.

    Any other TaskFlow task gets no metadata from here, so the provider falls back to what it does without an
    extractor (hook lineage, then inlets and outlets). Registered with ``AIRFLOW__OPENLINEAGE__EXTRACTORS``.
    """

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return [DECORATED_PYTHON_TASK]

    def _raw_outlets(self) -> list[tuple[str, str]]:
        found = []
        for outlet in getattr(self.operator, "outlets", None) or []:
            if getattr(outlet, "group", None) == RAW_ZONE and (parsed := parse_raw_asset_name(outlet.name)):
                found.append(parsed)
        return found

    def _execute_extraction(self) -> Any:
        from airflow.providers.openlineage.extractors.base import OperatorLineage
        from airflow.sdk import BaseHook

        raw = self._raw_outlets()
        if not raw:
            return None
        inputs, outputs = [], []
        for source, entity in raw:
            found_inputs, found_outputs = extraction_lineage(source, entity, BaseHook.get_connection)
            inputs += found_inputs
            outputs += found_outputs
        return OperatorLineage(inputs=inputs, outputs=outputs)

    def extract_on_complete(self, task_instance: Any) -> Any:
        return self._execute_extraction()


# --- the medallion: one event per dbt node ----------------------------------------------------------------------------


def _lake_sources_processor() -> type:
    from openlineage.common.provider.dbt.local import DbtLocalArtifactProcessor

    class LakeSourcesArtifactProcessor(DbtLocalArtifactProcessor):
        """openlineage-integration-common's dbt processor, with a dbt source named as the raw lake dataset it reads."""

        def extract_dataset_data(self, node: Any, assertions: Any, has_facets: bool = False) -> tuple:
            namespace, name, facets, input_facets = super().extract_dataset_data(node, assertions, has_facets)
            if node.type == "source" and (lake := source_lake_dataset(node.metadata_node)):
                namespace, name = lake
                if "dataSource" in facets:
                    from openlineage.client.facet_v2 import datasource_dataset

                    facets["dataSource"] = datasource_dataset.DatasourceDatasetFacet(name=namespace, uri=namespace)
            return namespace, name, facets, input_facets

    return LakeSourcesArtifactProcessor


def dbt_events(project_dir: Path, profile_name: str, target: str, job_namespace: str) -> list[Any]:
    """The OpenLineage events (start and complete/fail per model, snapshot and test) of the dbt invocation whose
    ``target/`` artifacts are in ``project_dir``; dbt sources named as their raw lake datasets."""
    processor = _lake_sources_processor()(
        producer=PRODUCER,
        job_namespace=job_namespace,
        project_dir=str(project_dir),
        profile_name=profile_name,
        target=target,
        skip_errors=True,
    )
    processor.should_raise_on_unsupported_command = False  # a `dbt ls` or `docs generate` has nothing to report
    parsed = processor.parse()
    return [*parsed.starts, *parsed.completes, *parsed.fails]


def _parent_facet(task_instance: Any) -> Any:
    """The Airflow task that ran dbt, as the parent of each dbt node's run (so a backend nests them under it)."""
    from airflow.providers.openlineage.plugins import macros
    from openlineage.client.facet_v2 import parent_run

    namespace = macros.lineage_job_namespace()
    root = None
    try:
        root = parent_run.Root(
            run=parent_run.RootRun(runId=macros.lineage_root_run_id(task_instance)),
            job=parent_run.RootJob(
                namespace=macros.lineage_root_job_namespace(task_instance),
                name=macros.lineage_root_job_name(task_instance),
            ),
        )
    except Exception:  # an older provider or a task instance without a DAG run: the parent alone still nests
        root = None
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=macros.lineage_run_id(task_instance)),
        job=parent_run.Job(namespace=namespace, name=macros.lineage_job_name(task_instance)),
        root=root,
    )


def openlineage_enabled() -> bool:
    """Whether the OpenLineage provider has a transport configured (and is not disabled)."""
    try:
        from airflow.providers.openlineage import conf
    except ImportError:
        return False
    return not conf.is_disabled()


def with_parent(events: Iterable[Any], parent: Any) -> list[Any]:
    import attrs

    return [
        attrs.evolve(event, run=attrs.evolve(event.run, facets={**(event.run.facets or {}), "parent": parent}))
        for event in events
    ]


# Run facets that describe the whole dbt invocation rather than one node: they may go on the Airflow task's event.
INVOCATION_RUN_FACETS = ("dbt_version", "dbt_run", "processing_engine")


def for_the_task(event: Any) -> Any:
    """A node's event reduced to what the Airflow task that ran dbt may report as its own: datasets, and the facets
    of the invocation."""
    import attrs

    facets = {name: facet for name, facet in (event.run.facets or {}).items() if name in INVOCATION_RUN_FACETS}
    return attrs.evolve(event, run=attrs.evolve(event.run, facets=facets), job=attrs.evolve(event.job, facets={}))


def emit_dbt_lineage(project_dir: str | Path, context: Mapping[str, Any] | None = None, **_: Any) -> int:
    """Cosmos callback (after every dbt invocation, with its temporary project folder): emit one OpenLineage run per
    dbt node it ran through the provider's client, and give the Cosmos task the same, renamed events for its own
    event. Does nothing when OpenLineage is off; never fails the task. Returns the number of events emitted."""
    if not openlineage_enabled() or context is None:
        return 0
    try:
        from airflow.providers.openlineage import conf
        from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

        task = context["task"]
        profile = task.profile_config
        events = dbt_events(Path(project_dir), profile.profile_name, profile.target_name, conf.namespace())
        # Cosmos reports these on the task's own event (get_openlineage_facets_on_complete): the renamed datasets,
        # without the facets of one node (Cosmos merges every event's facets into the task's: the task's event
        # would otherwise claim to be the last model's run, with its dbt_node, SQL and tags).
        task.openlineage_events_completes = [
            for_the_task(event) for event in events if event.eventType.value == "COMPLETE"
        ]
        adapter = get_openlineage_listener().adapter
        parent = _parent_facet(context["ti"])
        for event in with_parent(events, parent):
            adapter.emit(event)
        return len(events)
    except Exception:  # lineage never fails the build it describes
        log.warning("OpenLineage: could not emit the dbt nodes' events", exc_info=True)
        return 0


def openlineage_transport_summary() -> str:
    """The configured transport's type, for logs and `make lineage` (never its URL or credentials)."""
    from airflow.providers.openlineage import conf

    if conf.is_disabled():
        return "off"
    transport = conf.transport() or {}
    return str(transport.get("type", "configured")) if isinstance(transport, Mapping) else "configured"


__all__ = [
    "EXTRACTOR_CLASSPATH",
    "ExtractionTaskExtractor",
    "dbt_events",
    "emit_dbt_lineage",
    "extraction_lineage",
    "lake_dataset",
    "raw_dataset",
    "source_lake_dataset",
]
