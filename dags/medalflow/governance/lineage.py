"""Where a dataset comes from: its upstream chain from a dbt model down to the raw lake and the tasks that landed it.

One graph, from what the project declares (no run needed): the dbt manifest (each model's and snapshot's parents,
each source's ``meta.lake_location``) plus the source configs (dags/config/sources/*.yml: which extraction DAG and
task lands each raw dataset). Raw datasets carry the OpenLineage names the pipeline emits
(:mod:`medalflow.governance.openlineage`), so the same chain can be checked against the events of a run
(:class:`EventLineage`, which reads an OpenLineage events file).

``make lineage ASSET=agg_monthly_cash_flow`` prints the chain as a tree and writes it as a mermaid flowchart and a
self-contained SVG (:func:`to_mermaid`, :func:`to_svg`: a small layered layout, no network, no graphviz).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Kinds of node, upstream first: the order of the picture's columns.
TASK, RAW, SOURCE, MODEL = "extraction task", "raw dataset", "dbt source", "dbt model"
KIND_ORDER = (TASK, RAW, SOURCE, MODEL)
DBT_NODE_PREFIXES = ("model.", "snapshot.", "seed.")
# The extraction task of an entity (medalflow.extract.tasks's factories).
EXTRACTION_TASK_ID = "extract_{entity}"


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    label: str  # short, for the tree and the picture
    detail: str = ""  # e.g. the OpenLineage dataset name, the dbt layer


@dataclass
class LineageGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)

    def add(self, node: Node, parents: Iterable[str] = ()) -> None:
        self.nodes.setdefault(node.id, node)
        known = self.parents.setdefault(node.id, [])
        known += [parent for parent in parents if parent not in known]

    def resolve(self, name: str) -> str:
        """A node id from what a person types: a unique id, a model's name, ``source.table`` or a raw path."""
        if name in self.nodes:
            return name
        candidates = [
            node.id
            for node in self.nodes.values()
            if name in {node.label, node.id.split(".")[-1], ".".join(node.id.split(".")[-2:])}
            or (node.kind == RAW and node.detail.endswith(name))
        ]
        models = [candidate for candidate in candidates if self.nodes[candidate].kind == MODEL]
        if len(models) == 1 or len(set(candidates)) == 1:
            return (models or candidates)[0]
        hint = f"it matches {sorted(set(candidates))}" if candidates else "no node has that name"
        raise KeyError(f"lineage: {name!r} is not one dataset of the project ({hint}); use a model's name or unique id")

    def upstream(self, node_id: str) -> list[str]:
        """Every node ``node_id`` is built from, transitively (itself first), in breadth-first order."""
        seen, queue = [node_id], [node_id]
        while queue:
            for parent in self.parents.get(queue.pop(0), []):
                if parent not in seen:
                    seen.append(parent)
                    queue.append(parent)
        return seen

    def subgraph(self, node_id: str) -> LineageGraph:
        """The upstream closure of one node as a graph of its own."""
        keep = self.upstream(node_id)
        graph = LineageGraph()
        for kept in keep:
            graph.add(self.nodes[kept], [parent for parent in self.parents.get(kept, []) if parent in keep])
        return graph


def _model_label(node: Mapping[str, Any]) -> str:
    return node.get("alias") or node["name"]


def build_lineage_graph(
    manifest: Mapping[str, Any], source_groups: Iterable[Any] = (), raw_dataset: Any = None
) -> LineageGraph:
    """The project's lineage: dbt nodes and their parents, sources over raw datasets, raw datasets over the task
    that lands each. ``raw_dataset(source, entity) -> (namespace, name)`` names a raw dataset (default: the lake's
    OpenLineage names, :func:`medalflow.governance.openlineage.raw_dataset`)."""
    from medalflow.governance import openlineage

    raw_dataset = raw_dataset or openlineage.raw_dataset
    graph = LineageGraph()
    landed_by: dict[tuple[str, str], str] = {}
    for group in source_groups:
        for entity in group.entities:
            task_id = EXTRACTION_TASK_ID.format(entity=entity)
            task_node = Node(f"task:{group.dag_id}.{task_id}", TASK, f"{group.dag_id}.{task_id}", group.kind)
            graph.add(task_node)
            landed_by[raw_dataset(group.name, entity)] = task_node.id

    def raw_node(dataset: tuple[str, str], location: str) -> str:
        namespace, name = dataset
        node_id = f"raw:{namespace}:{name}"
        graph.add(
            Node(node_id, RAW, location, f"{namespace} {name}"), [task] if (task := landed_by.get(dataset)) else []
        )
        return node_id

    for unique_id, source in manifest.get("sources", {}).items():
        parents = []
        location = (source.get("meta") or {}).get(openlineage.LAKE_LOCATION_META)
        if location:
            location = location.replace("{name}", source["name"])
            segments = location.strip("/").split("/")
            # raw/<source>/<entity>: the config's source and entity when the layout is the lake's contract
            dataset = (
                raw_dataset(segments[1], segments[2])
                if len(segments) == 3 and segments[0] == "raw"
                else openlineage.source_lake_dataset(source)
            )
            parents.append(raw_node(dataset, location))
        graph.add(Node(unique_id, SOURCE, f"{source['source_name']}.{source['name']}"), parents)
    nodes = manifest.get("nodes", {})
    for unique_id, node in nodes.items():
        if not unique_id.startswith(DBT_NODE_PREFIXES):
            continue
        parents = [
            parent
            for parent in manifest.get("parent_map", {}).get(unique_id, node.get("depends_on", {}).get("nodes", []))
            if parent.startswith(DBT_NODE_PREFIXES) or parent.startswith("source.")
        ]
        graph.add(Node(unique_id, MODEL, _model_label(node), node.get("schema") or ""), parents)
    return graph


def project_lineage(manifest_path: Path | None = None, sources_dir: Path | None = None) -> LineageGraph:
    """The lineage graph of this project: its dbt manifest and its source configs."""
    from medalflow.extract.config import load_sources
    from medalflow.settings import get_settings

    path = manifest_path or get_settings().manifest_path
    if not Path(path).exists():
        raise FileNotFoundError(f"lineage: no dbt manifest at {path}; build it with `make manifest`")
    manifest = json.loads(Path(path).read_text())
    return build_lineage_graph(manifest, load_sources(sources_dir).groups.values())


# --- the chain as text ------------------------------------------------------------------------------------------------


def render_tree(graph: LineageGraph, root: str) -> str:
    """The upstream chain as an indented tree, root first; a node met again says so instead of repeating its tree."""
    lines: list[str] = []
    expanded: set[str] = set()

    def walk(node_id: str, prefix: str, last: bool, top: bool) -> None:
        node = graph.nodes[node_id]
        parents = graph.parents.get(node_id, [])
        repeated = node_id in expanded and parents
        text = f"{node.label}  [{node.kind}{': ' + node.detail if node.detail else ''}]" + (
            "  (upstream shown above)" if repeated else ""
        )
        lines.append(text if top else f"{prefix}{'└── ' if last else '├── '}{text}")
        if repeated:
            return
        expanded.add(node_id)
        child_prefix = "" if top else prefix + ("    " if last else "│   ")
        for index, parent in enumerate(parents):
            walk(parent, child_prefix, index == len(parents) - 1, False)

    walk(root, "", True, True)
    return "\n".join(lines) + "\n"


# --- the chain as pictures --------------------------------------------------------------------------------------------


def _safe_id(node_id: str, index: dict[str, str]) -> str:
    return index.setdefault(node_id, f"n{len(index)}")


def to_mermaid(graph: LineageGraph, root: str) -> str:
    """A mermaid flowchart of ``root``'s upstream chain, raw on the left, the root on the right."""
    sub = graph.subgraph(root)
    index: dict[str, str] = {}
    shapes = {TASK: ('[["', '"]]'), RAW: ('[("', '")]'), SOURCE: ('(["', '"])'), MODEL: ('["', '"]')}
    lines = ["flowchart LR"]
    for node in sub.nodes.values():
        opening, closing = shapes[node.kind]
        label = node.label.replace('"', "'")
        lines.append(f"    {_safe_id(node.id, index)}{opening}{label}{closing}:::{node.kind.split()[-1]}")
    for child, parents in sub.parents.items():
        lines += [f"    {_safe_id(parent, index)} --> {_safe_id(child, index)}" for parent in parents]
    lines += [
        "    classDef task fill:#eef,stroke:#447",
        "    classDef dataset fill:#efe,stroke:#474",
        "    classDef source fill:#ffe,stroke:#774",
        "    classDef model fill:#fee,stroke:#744",
    ]
    return "\n".join(lines) + "\n"


def layered_layout(graph: LineageGraph, root: str) -> dict[str, tuple[int, int]]:
    """(column, row) per node of the chain: the root in the last column, each node one column left of its furthest
    child (so every edge points right), rows ordered by the children's rows to keep edges short."""
    sub = graph.subgraph(root)
    distance = {root: 0}
    order = sub.upstream(root)
    for _ in range(len(order)):  # longest path to the root; the chain is a DAG, so this settles
        changed = False
        for child, parents in sub.parents.items():
            if child not in distance:
                continue
            for parent in parents:
                if distance.get(parent, -1) < distance[child] + 1:
                    distance[parent] = distance[child] + 1
                    changed = True
        if not changed:
            break
    deepest = max(distance.values())
    columns: dict[int, list[str]] = {}
    for node_id in order:
        columns.setdefault(deepest - distance[node_id], []).append(node_id)
    position: dict[str, tuple[int, int]] = {}
    children: dict[str, list[str]] = {}
    for child, parents in sub.parents.items():
        for parent in parents:
            children.setdefault(parent, []).append(child)
    for column in sorted(columns, reverse=True):

        def weight(node_id: str) -> tuple[float, str]:
            rows = [position[child][1] for child in children.get(node_id, []) if child in position]
            return (sum(rows) / len(rows) if rows else 0.0, graph.nodes[node_id].label)

        for row, node_id in enumerate(sorted(columns[column], key=weight)):
            position[node_id] = (column, row)
    return position


SVG_COLOURS = {TASK: ("#e8ecfb", "#44508a"), RAW: ("#e6f4e6", "#3d7a3d"), SOURCE: ("#fbf6dc", "#8a7a2c"),
               MODEL: ("#fbe9e7", "#8a4a3d")}  # fmt: skip


def to_svg(graph: LineageGraph, root: str) -> str:
    """A self-contained SVG of ``root``'s upstream chain (no script, no font or style from the network)."""
    position = layered_layout(graph, root)
    sub = graph.subgraph(root)
    box_width, box_height, gap_x, gap_y, margin = 250, 38, 70, 16, 20
    widths = {node_id: max(box_width, 7 * len(graph.nodes[node_id].label) + 20) for node_id in position}
    column_width: dict[int, int] = {}
    for node_id, (column, _) in position.items():
        column_width[column] = max(column_width.get(column, 0), widths[node_id])
    column_x, x = {}, margin
    for column in sorted(column_width):
        column_x[column] = x
        x += column_width[column] + gap_x
    rows = max(row for _, row in position.values()) + 1
    width, height = x - gap_x + margin, margin * 2 + rows * (box_height + gap_y) + 24

    def box(node_id: str) -> tuple[int, int, int]:
        column, row = position[node_id]
        return column_x[column], margin + 24 + row * (box_height + gap_y), column_width[column]

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>Lineage of {html.escape(graph.nodes[root].label)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>',
        f'<text x="{margin}" y="{margin}" font-weight="bold">Upstream of {html.escape(graph.nodes[root].label)}: '
        + " | ".join(f'<tspan fill="{SVG_COLOURS[kind][1]}">{kind}</tspan>' for kind in KIND_ORDER)
        + "</text>",
    ]
    for child, parents in sub.parents.items():
        cx, cy, _ = box(child)
        for parent in parents:
            px, py, pw = box(parent)
            start_x, start_y, end_y = px + pw, py + box_height / 2, cy + box_height / 2
            middle = (start_x + cx) / 2
            parts.append(
                f'<path d="M {start_x} {start_y} C {middle} {start_y}, {middle} {end_y}, {cx} {end_y}" fill="none" '
                'stroke="#888" stroke-width="1.2" marker-end="url(#arrow)"/>'
            )
    for node_id in position:
        node = graph.nodes[node_id]
        fill, stroke = SVG_COLOURS[node.kind]
        x0, y0, w = box(node_id)
        tooltip = html.escape(f"{node.kind}: {node.id}" + (f" ({node.detail})" if node.detail else ""))
        parts += [
            f'<g><title>{tooltip}</title><rect x="{x0}" y="{y0}" width="{w}" height="{box_height}" rx="6" '
            f'fill="{fill}" stroke="{stroke}"/>',
            f'<text x="{x0 + 10}" y="{y0 + 16}">{html.escape(node.label)}</text>',
            f'<text x="{x0 + 10}" y="{y0 + 31}" font-size="10" fill="{stroke}">{html.escape(node.kind)}</text></g>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_pictures(graph: LineageGraph, root: str, out_dir: Path) -> list[Path]:
    """``<root>.mmd`` and ``<root>.svg`` in ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = graph.nodes[root].label.replace("/", "_")
    written = []
    for suffix, text in ((".mmd", to_mermaid(graph, root)), (".svg", to_svg(graph, root))):
        path = out_dir / f"{stem}{suffix}"
        path.write_text(text)
        written.append(path)
    return written


# --- the same chain, from a run's OpenLineage events ------------------------------------------------------------------


Dataset = tuple[str, str]  # OpenLineage (namespace, name)


@dataclass
class EventLineage:
    """What a run's OpenLineage events say: which job wrote each dataset from which inputs (COMPLETE events).

    A dataset the watcher producer built has two writers: its dbt node's run (its own parents as inputs) and the
    Airflow task that ran the whole ``dbt build`` (every model's inputs at once). The walk follows the most specific
    writer: a dbt node's run where there is one.
    """

    writers: dict[Dataset, set[str]] = field(default_factory=dict)  # dataset -> jobs that output it
    inputs: dict[str, set[Dataset]] = field(default_factory=dict)  # job -> its input datasets
    dbt_outputs: dict[str, Dataset] = field(default_factory=dict)  # dbt unique id -> the dataset its run wrote
    dbt_jobs: set[str] = field(default_factory=set)  # jobs that are one dbt node's run
    facets: dict[Dataset, dict[str, Any]] = field(default_factory=dict)  # dataset -> facets seen on it

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> EventLineage:
        lineage = cls()
        for event in events:
            if event.get("eventType") != "COMPLETE":
                continue
            job = f"{event['job']['namespace']}/{event['job']['name']}"
            lineage.inputs.setdefault(job, set())
            # A dbt node's run, not an Airflow task's event (which has the "airflow" run facet).
            is_airflow_task = "airflow" in ((event.get("run") or {}).get("facets") or {})
            unique_id = ((event["job"].get("facets") or {}).get("dbt_node") or {}).get("unique_id")
            unique_id = None if is_airflow_task else unique_id
            if unique_id:
                lineage.dbt_jobs.add(job)
            for dataset in event.get("inputs") or []:
                key = (dataset["namespace"], dataset["name"])
                lineage.inputs[job].add(key)
                lineage.facets.setdefault(key, {}).update(dataset.get("facets") or {})
            for dataset in event.get("outputs") or []:
                key = (dataset["namespace"], dataset["name"])
                lineage.writers.setdefault(key, set()).add(job)
                lineage.facets.setdefault(key, {}).update(dataset.get("facets") or {})
                if unique_id:
                    lineage.dbt_outputs[unique_id] = key
        return lineage

    @classmethod
    def from_file(cls, path: Path) -> EventLineage:
        """An OpenLineage file transport's output: one JSON event per line."""
        lines = Path(path).read_text().splitlines()
        return cls.from_events(json.loads(line) for line in lines if line.strip())

    def specific_writers(self, dataset: Dataset) -> set[str]:
        """The jobs that wrote ``dataset``: its dbt node's run if it has one, else every job that output it."""
        writers = self.writers.get(dataset, set())
        return (writers & self.dbt_jobs) or writers

    def specific_parents(self, dataset: Dataset) -> set[Dataset]:
        """The datasets the most specific writers of ``dataset`` read."""
        return {
            parent
            for job in self.specific_writers(dataset)
            for parent in self.inputs.get(job, set())
            if parent != dataset
        }

    def upstream(self, dataset: Dataset) -> set[Dataset]:
        """Every dataset ``dataset`` is built from, transitively, through the most specific writers."""
        seen: set[Dataset] = set()
        queue = [dataset]
        while queue:
            for parent in self.specific_parents(queue.pop()):
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return seen
