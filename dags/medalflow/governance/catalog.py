"""The data catalog: every asset the project declares, searchable in English or Portuguese, without running anything.

Assets come from what is already written down: the dbt manifest (models, snapshots and sources, with their
descriptions, columns, tags and ``meta``: ``owner``, ``domain``, and ``pii`` / ``pii_type`` on columns), the source
configs (dags/config/sources/*.yml: each entity is a raw dataset in the lake with its declared columns, landed by a
task of its extraction DAG) and the DAG files' docstrings (their ``doc_md``). A raw dataset takes the descriptions
and PII flags of the dbt source that reads it, so the raw zone is as documented as the warehouse.

Search ignores case and accents ("risco cambial" finds "Risco Cambial", "previsao" finds "previsão") and matches
every word of the query anywhere in an asset's text: name, description, domain, tags, columns (and their PII types).
The vocabulary in both languages comes from dbt_project/glossary.yml, which tests keep true to the descriptions.

``make catalog q="risco cambial"`` prints the hits; ``make catalog`` lists every asset with its schema.
"""

from __future__ import annotations

import ast
import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Kinds of asset, in the order a listing shows them: upstream first.
DAG, TASK, RAW, SOURCE, MODEL, SNAPSHOT = "dag", "task", "raw dataset", "dbt source", "model", "snapshot"
KIND_ORDER = (RAW, SOURCE, MODEL, SNAPSHOT, DAG, TASK)
LAYER_ORDER = ("raw", "bronze", "silver", "gold", "orchestration")
DEFAULT_OWNER = "data-platform"  # medalflow.dag_defaults' owner; dbt nodes without ``meta.owner`` belong to it too
# The extraction task of an entity (medalflow.extract.tasks's factories); the medallion's task of a dbt node.
EXTRACTION_TASK_ID = "extract_{entity}"
MEDALLION_DAG_ID = "medallion"
DAG_FILES_DIR = Path(__file__).resolve().parents[2]  # dags/
GLOSSARY_PATH = DAG_FILES_DIR.parent / "dbt_project" / "glossary.yml"


def folded(text: str) -> str:
    """Lower case without accents and with single spaces: what a search compares ('Previsão' == 'previsao')."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(char for char in decomposed if not unicodedata.combining(char)).split())


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str = ""
    description: str = ""
    pii_type: str | None = None  # set when the column holds personal data (``meta.pii``), e.g. tax_id, email
    pii_protection: str | None = None  # how it is protected, when it is (hmac_sha256, masked)

    @property
    def is_pii(self) -> bool:
        return self.pii_type is not None


@dataclass(frozen=True)
class Asset:
    kind: str
    layer: str
    name: str
    description: str = ""
    owner: str = DEFAULT_OWNER
    tags: tuple[str, ...] = ()
    domain: str = ""
    schema: str = ""  # the warehouse schema, the lake location, or the DAG a task belongs to
    columns: tuple[Column, ...] = ()

    @property
    def pii_columns(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.is_pii)

    @property
    def readers(self) -> str:
        """Who may read the data (README, "Find, trace and protect data"): the pipeline reads every layer; the gold
        consumer (its role on Athena and Snowflake, its read-only file on DuckDB) reads gold and nothing else."""
        if self.kind not in (RAW, SOURCE, MODEL, SNAPSHOT):
            return ""
        return "pipeline, gold consumer" if self.layer == "gold" else "pipeline only"

    def search_text(self) -> str:
        parts = [self.kind, self.layer, self.name, self.description, self.domain, self.schema, *self.tags]
        for column in self.columns:
            parts += [column.name, column.description, column.pii_type or ""]
        return folded(" ".join(parts))

    def matching_columns(self, words: Iterable[str]) -> tuple[Column, ...]:
        """The columns the query's words point at (each column matching at least one word)."""
        words = list(words)
        return tuple(
            column
            for column in self.columns
            if any(word in folded(f"{column.name} {column.description} {column.pii_type or ''}") for word in words)
        )


@dataclass(frozen=True)
class Hit:
    asset: Asset
    columns: tuple[Column, ...] = ()  # the asset's columns the query points at (e.g. tax_id for "cpf")


@dataclass
class Catalog:
    assets: list[Asset] = field(default_factory=list)
    # Each glossary term's forms (English, Portuguese), folded: a query for one form also finds the other.
    synonyms: list[tuple[str, ...]] = field(default_factory=list)

    def sorted_assets(self) -> list[Asset]:
        def order(asset: Asset) -> tuple[int, int, str]:
            layer = LAYER_ORDER.index(asset.layer) if asset.layer in LAYER_ORDER else len(LAYER_ORDER)
            return layer, KIND_ORDER.index(asset.kind), asset.name

        return sorted(self.assets, key=order)

    def search(self, query: str) -> list[Hit]:
        """Assets whose text holds every word of the query (case and accents ignored); a quoted phrase of several
        words also matches as a phrase, so "fluxo de caixa" finds the cash flow, not every text with "de"."""
        phrase = folded(query)
        if not phrase:
            return [Hit(asset) for asset in self.sorted_assets()]
        words = phrase.split()
        phrases = next((forms for forms in self.synonyms if phrase in forms), (phrase,))
        hits = []
        for asset in self.sorted_assets():
            text = asset.search_text()
            found = [form for form in phrases if form in text]
            if found or all(word in text for word in words):
                hits.append(Hit(asset, asset.matching_columns(found or words)))
        return hits


def _meta(item: Mapping[str, Any]) -> dict[str, Any]:
    """A dbt node's or column's meta: ``config.meta`` (dbt 1.10+) over the legacy top-level ``meta``."""
    return {**(item.get("meta") or {}), **((item.get("config") or {}).get("meta") or {})}


def _dbt_columns(node: Mapping[str, Any]) -> tuple[Column, ...]:
    columns = []
    for name, column in (node.get("columns") or {}).items():
        meta = _meta(column)
        pii_type = (meta.get("pii_type") or "personal data") if meta.get("pii") else None
        columns.append(
            Column(
                name=name,
                data_type=column.get("data_type") or "",
                description=" ".join((column.get("description") or "").split()),
                pii_type=pii_type,
                pii_protection=meta.get("pii_protection"),
            )
        )
    return tuple(columns)


def _dbt_assets(manifest: Mapping[str, Any]) -> tuple[list[Asset], dict[tuple[str, str], Mapping[str, Any]]]:
    """Models, snapshots (and their medallion tasks) and sources from the manifest; the sources by (source, table)."""
    assets: list[Asset] = []
    project = (manifest.get("metadata") or {}).get("project_name")
    for node in (manifest.get("nodes") or {}).values():
        kind = {"model": MODEL, "snapshot": SNAPSHOT}.get(node.get("resource_type", ""))
        if kind is None or (project and node.get("package_name") != project):
            continue
        meta = _meta(node)
        fqn = node.get("fqn") or []
        layer = fqn[1] if len(fqn) > 2 else node.get("schema", "")
        description = " ".join((node.get("description") or "").split())
        common = {
            "layer": layer,
            "owner": meta.get("owner") or DEFAULT_OWNER,
            "tags": tuple(node.get("tags") or ()),
            "domain": meta.get("domain") or "",
        }
        assets.append(
            Asset(
                kind=kind,
                name=node["name"],
                description=description,
                schema=node.get("schema", ""),
                columns=_dbt_columns(node),
                **common,
            )
        )
        # Cosmos renders one medallion task per model and snapshot, documented with the node's description.
        assets.append(
            Asset(
                kind=TASK,
                name=f"{MEDALLION_DAG_ID}: {node['name']}",
                schema=MEDALLION_DAG_ID,
                description=f"Builds and tests dbt {kind} {node['name']}: {description}",
                **common,
            )
        )
    sources: dict[tuple[str, str], Mapping[str, Any]] = {}
    for source in (manifest.get("sources") or {}).values():
        if project and source.get("package_name") != project:
            continue
        sources[source["source_name"], source["name"]] = source
    return assets, sources


def _source_asset(source: Mapping[str, Any]) -> Asset:
    meta = _meta(source)
    description = " ".join((source.get("description") or source.get("source_description") or "").split())
    return Asset(
        kind=SOURCE,
        layer="raw",
        name=f"{source['source_name']}.{source['name']}",
        description=description,
        owner=meta.get("owner") or DEFAULT_OWNER,
        tags=tuple(source.get("tags") or ()),
        domain=meta.get("domain") or "",
        schema=source.get("schema", ""),
        columns=_dbt_columns(source),
    )


def _raw_assets(groups: Iterable[Any], sources: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[Asset]:
    """Each source config entity: a raw dataset (declared columns, described by its dbt source), its extraction DAG
    and task. A dbt source no config lands (or a config no source reads) is still listed on its own."""
    assets: list[Asset] = []
    read = set()
    for group in groups:
        owner = group.dag.owner or DEFAULT_OWNER
        tags = tuple(group.dag.tags or ())
        assets.append(
            Asset(
                kind=DAG,
                layer="orchestration",
                name=group.dag_id,
                owner=owner,
                tags=tags,
                schema=group.dag_id,
                description=" ".join(f"{group.description} Lands: {', '.join(sorted(group.entities))}.".split()),
            )
        )
        for entity_name, entity in sorted(group.entities.items()):
            source = sources.get((group.name, entity_name))
            described = {column.name: column for column in _dbt_columns(source)} if source else {}
            declared = getattr(getattr(entity, "schema", None), "columns", None) or {}
            columns = tuple(
                Column(
                    name=name,
                    data_type=str(data_type),
                    description=described[name].description if name in described else "",
                    pii_type=described[name].pii_type if name in described else None,
                    pii_protection=described[name].pii_protection if name in described else None,
                )
                for name, data_type in declared.items()
            )
            entity_description = group.entity_descriptions.get(entity_name) or (
                source.get("description", "") if source else ""
            )
            entity_description = " ".join(entity_description.split())
            location = ((source or {}).get("meta") or {}).get("lake_location", f"raw/{group.name}/{{name}}")
            assets.append(
                Asset(
                    kind=RAW,
                    layer="raw",
                    name=f"{group.name}.{entity_name}",
                    description=entity_description,
                    owner=owner,
                    tags=tags,
                    schema=location.replace("{name}", entity_name),
                    columns=columns,
                )
            )
            task_id = EXTRACTION_TASK_ID.format(entity=entity_name)
            assets.append(
                Asset(
                    kind=TASK,
                    layer="orchestration",
                    name=f"{group.dag_id}: {task_id}",
                    owner=owner,
                    tags=tags,
                    schema=group.dag_id,
                    description=f"Lands raw dataset {group.name}.{entity_name} in the lake: {entity_description}",
                )
            )
            if source:
                read.add((group.name, entity_name))
    assets += [_source_asset(source) for key, source in sorted(sources.items()) if key not in read]
    return assets


def _literal_keyword(call: ast.Call, name: str) -> Any:
    for keyword in call.keywords:
        if keyword.arg == name:
            try:
                return ast.literal_eval(keyword.value)
            except ValueError:
                return None
    return None


def dag_file_assets(dag_dir: Path = DAG_FILES_DIR) -> list[Asset]:
    """The DAGs written by hand (``with DAG(dag_id="...", doc_md=__doc__)``), read with ``ast``: importing them
    would render the medallion through Cosmos. A file building DAGs in a loop (the extraction DAGs) declares no
    literal dag_id and is covered by the source configs instead."""
    assets = []
    for path in sorted(dag_dir.glob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        docstring = ast.get_docstring(module) or ""
        for call in ast.walk(module):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "DAG"):
                continue
            dag_id = _literal_keyword(call, "dag_id")
            if not isinstance(dag_id, str):
                continue
            description = _literal_keyword(call, "description") or ""
            doc = " ".join(f"{description} {docstring}".replace("#", " ").split())
            tags = tuple(_literal_keyword(call, "tags") or ())
            assets.append(
                Asset(kind=DAG, layer="orchestration", name=dag_id, description=doc, tags=tags, schema=dag_id)
            )
    return assets


def load_glossary(path: Path = GLOSSARY_PATH) -> list[dict[str, Any]]:
    """The business glossary's terms: ``term`` (English), ``pt`` (Portuguese), ``definition``, ``models``."""
    import yaml

    return list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("terms") or [])


def build_catalog(
    manifest: Mapping[str, Any],
    source_groups: Iterable[Any] = (),
    dag_assets: Iterable[Asset] = (),
    glossary: Iterable[Mapping[str, Any]] = (),
) -> Catalog:
    dbt_assets, sources = _dbt_assets(manifest)
    synonyms = [tuple(folded(entry[key]) for key in ("term", "pt") if entry.get(key)) for entry in glossary]
    return Catalog([*_raw_assets(source_groups, sources), *dbt_assets, *dag_assets], synonyms)


def project_catalog(manifest_path: Path | None = None, sources_dir: Path | None = None) -> Catalog:
    """The catalog of this project: its dbt manifest, its source configs and its DAG files."""
    from medalflow.extract.config import load_sources
    from medalflow.settings import get_settings

    path = Path(manifest_path or get_settings().manifest_path)
    if not path.is_file():
        raise FileNotFoundError(f"catalog: no dbt manifest at {path}; build it with `make manifest`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return build_catalog(manifest, load_sources(sources_dir).groups.values(), dag_file_assets(), load_glossary())


def _column_line(column: Column) -> str:
    pii = ""
    if column.is_pii:
        pii = f"  [PII: {column.pii_type}" + (f", {column.pii_protection}" if column.pii_protection else "") + "]"
    data_type = f" {column.data_type}" if column.data_type else ""
    description = f"  {column.description}" if column.description else ""
    return f"      - {column.name}{data_type}{pii}{description}"


def render_asset(asset: Asset, columns: Iterable[Column] | None = None) -> str:
    """One asset as text: kind, layer, name, description, owner, tags, domain, PII, and the given columns."""
    lines = [f"{asset.kind} | {asset.layer} | {asset.name}"]
    if asset.description:
        lines.append(f"    {asset.description}")
    details = [f"owner: {asset.owner}", f"tags: {', '.join(asset.tags) or '-'}"]
    if asset.domain:
        details.append(f"domain: {asset.domain}")
    if asset.schema and asset.kind not in (DAG,):
        details.append(f"{'dag' if asset.kind == TASK else 'schema'}: {asset.schema}")
    pii = asset.pii_columns
    details.append("pii: " + (", ".join(f"{column.name} ({column.pii_type})" for column in pii) if pii else "none"))
    if asset.readers:
        details.append(f"readers: {asset.readers}")
    lines.append("    " + "; ".join(details))
    shown = list(asset.columns if columns is None else columns)
    if shown:
        lines.append("    columns:" if columns is None else "    matching columns:")
        lines += [_column_line(column) for column in shown]
    return "\n".join(lines) + "\n"


def render_search(hits: list[Hit], query: str) -> str:
    if not hits:
        return f'no asset matches "{query}"\n'
    header = f'{len(hits)} asset(s) match "{query}"\n\n'
    return header + "\n".join(render_asset(hit.asset, hit.columns) for hit in hits)


def render_listing(catalog: Catalog) -> str:
    """Every asset with its schema (the columns of raw datasets, sources, models and snapshots)."""
    return "\n".join(render_asset(asset) for asset in catalog.sorted_assets())
