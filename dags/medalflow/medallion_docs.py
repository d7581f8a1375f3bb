"""Documentation of the medallion's Cosmos tasks, from the dbt manifest Cosmos renders them from.

Cosmos 1.15 gives its tasks no ``doc_md`` and its task groups no tooltip. Here each model's (and snapshot's) task
shows the model's description, its tests' task what they check, each model group's tooltip the model's description
and each folder group's tooltip what the layer (or the source) is: the Airflow UI then says in English and
Portuguese what a task builds (the descriptions carry dbt_project/glossary.yml's vocabulary).

The manifest is the one Cosmos already parsed (:func:`manifest_kept`), so documenting costs no second read of it
at parse time.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from contextlib import contextmanager
from typing import Any

# What each layer folder is (dbt_project.yml's comments and docs/conventions.md), for its task group's tooltip.
LAYER_TOOLTIPS = {
    "models": "The dbt project's models, layer by layer: bronze -> silver -> gold.",
    "snapshots": "dbt snapshots: history of slowly changing entities (type-2 SCD).",
    "bronze": "Bronze (staging): one model per raw dataset, renamed and typed, append-only with ingestion metadata.",
    "silver": "Silver: current state of each entity, conformed and merged newer-wins; the correlated order fact.",
    "gold": "Gold: marts for BI dashboards and ML, each a contract with its consumers.",
}
ROOT_TOOLTIP = "The dbt project, one task per model (tests after each): bronze -> silver -> gold."
PRODUCER_DOC = (
    "Runs one `dbt build` for the whole run (Cosmos watcher mode); every model's task in this group reports that "
    "model's own result as the build reaches it. Its failure names the model that broke (docs/operations.md)."
)


@contextmanager
def manifest_kept() -> Generator[dict[str, Any]]:
    """While Cosmos renders, keep the manifest it loads (the dict it parses the file into), for the tasks' docs."""
    from cosmos.dbt.graph import DbtGraph

    kept: dict[str, Any] = {}
    original = DbtGraph._load_manifest_from_file

    def load_and_keep(graph: DbtGraph, manifest_path: Any) -> dict[str, Any]:
        manifest = original(graph, manifest_path)
        kept.update(manifest)
        return manifest

    DbtGraph._load_manifest_from_file = load_and_keep  # type: ignore[method-assign]
    try:
        yield kept
    finally:
        DbtGraph._load_manifest_from_file = original  # type: ignore[method-assign]


def _text(description: str | None) -> str:
    return " ".join((description or "").split())


def _node_of(task: Any) -> dict[str, Any]:
    return (getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}


def task_doc(task: Any, nodes: Mapping[str, Mapping[str, Any]]) -> str:
    """The doc of one Cosmos task: what its dbt node is and says, in Markdown; never empty."""
    config = _node_of(task)
    node = nodes.get(config.get("unique_id", ""), {})
    name = node.get("name") or config.get("name") or task.task_id
    kind = node.get("resource_type") or config.get("resource_type") or ""
    description = _text(node.get("description"))
    if task.task_id.endswith(".test") or task.task_id.endswith("_test") or kind == "test":
        if kind == "test":  # a test over several models, on its own at the top of the group
            parents = node.get("depends_on", {}).get("nodes", [])
            models = [nodes.get(parent, {}).get("name", parent) for parent in parents]
            what = f"dbt test `{name}` over {', '.join(f'`{model}`' for model in models) or 'the project'}."
            return f"{what} {description}".strip()
        return f"The dbt tests of {kind or 'model'} `{name}` (its column and unit tests), run after it. {description}"
    if kind:
        missing = "No description in the dbt project yet." if node else f"See `{name}` in the dbt docs."
        return f"**dbt {kind} `{name}`**\n\n{description or missing}"
    if type(task).__name__.startswith("DbtProducer"):
        return PRODUCER_DOC
    return f"Part of the dbt task group ({type(task).__name__})."


def group_tooltip(group: Any, nodes_by_name: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str]) -> str:
    """A task group's tooltip: a model's description, a layer's role, a source folder's source; never empty."""
    label = group.group_id.rsplit(".", 1)[-1] if group.group_id else ""
    if label in nodes_by_name:
        return _text(nodes_by_name[label].get("description")) or f"dbt model {label} and its tests."
    if label in LAYER_TOOLTIPS:
        return LAYER_TOOLTIPS[label]
    if label in sources:
        return f"Bronze models of source {label}: {sources[label]}"
    return f"dbt models of folder {label or 'the project'}: bronze -> silver -> gold, tests after each model."


def _task_groups(group: Any) -> Iterable[Any]:
    yield group
    for child in group.children.values():
        if hasattr(child, "children"):
            yield from _task_groups(child)


def document_task_group(group: Any, manifest: Mapping[str, Any]) -> None:
    """Give every task of a Cosmos task group a ``doc_md`` and every task group in it a tooltip (kept if set)."""
    nodes = manifest.get("nodes") or {}
    nodes_by_name = {
        node["name"]: node for node in nodes.values() if node.get("resource_type") in ("model", "snapshot", "seed")
    }
    sources: dict[str, str] = {}
    for source in (manifest.get("sources") or {}).values():
        sources.setdefault(source["source_name"], _text(source.get("source_description")))
    for task in group.iter_tasks():
        if not task.doc_md:
            task.doc_md = task_doc(task, nodes)
    for task_group in _task_groups(group):
        if not task_group.tooltip:
            is_root = task_group is group
            task_group.tooltip = ROOT_TOOLTIP if is_root else group_tooltip(task_group, nodes_by_name, sources)
