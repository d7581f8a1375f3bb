"""The lineage walker and its pictures (medalflow.governance.lineage), on a small manifest and on the project's."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from medalflow.governance.lineage import (
    MODEL,
    RAW,
    SOURCE,
    TASK,
    EventLineage,
    build_lineage_graph,
    layered_layout,
    project_lineage,
    render_tree,
    to_mermaid,
    to_svg,
    write_pictures,
)
from medalflow_cli import main as cli_main

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Group:  # the part of medalflow.extract.config.SourceGroup the walker reads
    name: str
    dag_id: str
    kind: str
    entities: dict = field(default_factory=dict)


def source(name: str, table: str, in_lake: bool = True) -> dict:
    """A dbt source table as the manifest has it, read from ``raw/<source>/<table>`` (the sources' meta)."""
    meta = {"lake_location": f"raw/{name}/{{name}}"} if in_lake else {}
    return {"name": table, "source_name": name, "meta": meta}


def model(name: str, schema: str) -> dict:
    return {"name": name, "alias": name, "schema": schema}


@pytest.fixture
def manifest() -> dict:
    """gold.cash <- silver.fact <- bronze erp orders + partner payments; gold.forecast <- bronze forecast (apart)."""
    return {
        "sources": {
            "source.p.erp.orders": source("erp", "orders"),
            "source.p.partner.payments": source("partner", "payments"),
            "source.p.forecast.projects": source("forecast", "projects"),
        },
        "nodes": {
            "model.p.brz_orders": model("brz_orders", "bronze"),
            "model.p.brz_payments": model("brz_payments", "bronze"),
            "model.p.brz_projects": model("brz_projects", "bronze"),
            "model.p.fact": model("fact", "silver"),
            "model.p.cash": model("cash", "gold"),
            "model.p.forecast": model("forecast", "gold"),
            "test.p.not_null_cash": {"name": "not_null_cash"},
        },
        "parent_map": {
            "model.p.brz_orders": ["source.p.erp.orders"],
            "model.p.brz_payments": ["source.p.partner.payments"],
            "model.p.brz_projects": ["source.p.forecast.projects"],
            "model.p.fact": ["model.p.brz_orders", "model.p.brz_payments"],
            "model.p.cash": ["model.p.fact"],
            "model.p.forecast": ["model.p.brz_projects"],
            "test.p.not_null_cash": ["model.p.cash"],
        },
    }


GROUPS = [
    Group("erp", "extract_erp", "sql", {"orders": None}),
    Group("partner", "extract_partner_api", "rest", {"payments": None}),
    Group("forecast", "extract_forecast", "rest", {"projects": None}),
]


def lake_name(source_name: str, entity: str) -> tuple[str, str]:
    return "s3://lake-bucket", f"prefix/raw/{source_name}/{entity}"


@pytest.fixture
def graph(manifest):
    return build_lineage_graph(manifest, GROUPS, lake_name)


def test_the_walk_goes_from_a_model_to_the_tasks_that_landed_its_raw_data(graph):
    chain = graph.upstream("model.p.cash")
    assert chain[0] == "model.p.cash"
    assert set(chain) == {
        "model.p.cash",
        "model.p.fact",
        "model.p.brz_orders",
        "model.p.brz_payments",
        "source.p.erp.orders",
        "source.p.partner.payments",
        "raw:s3://lake-bucket:prefix/raw/erp/orders",
        "raw:s3://lake-bucket:prefix/raw/partner/payments",
        "task:extract_erp.extract_orders",
        "task:extract_partner_api.extract_payments",
    }
    assert graph.parents["source.p.erp.orders"] == ["raw:s3://lake-bucket:prefix/raw/erp/orders"]
    assert graph.parents["raw:s3://lake-bucket:prefix/raw/erp/orders"] == ["task:extract_erp.extract_orders"]
    assert "test.p.not_null_cash" not in graph.nodes, "tests are not datasets"


def test_a_source_without_a_lake_location_ends_the_chain(manifest):
    manifest["sources"]["source.p.erp.orders"] = source("erp", "orders", in_lake=False)
    graph = build_lineage_graph(manifest, GROUPS, lake_name)
    assert graph.parents["source.p.erp.orders"] == []


def test_names_resolve_to_one_node_or_say_why_not(graph):
    assert graph.resolve("cash") == "model.p.cash"
    assert graph.resolve("model.p.fact") == "model.p.fact"
    assert graph.resolve("erp.orders") == "source.p.erp.orders"
    with pytest.raises(KeyError, match="'nothing' is not one dataset"):
        graph.resolve("nothing")


def test_the_tree_shows_every_node_of_the_chain_once_expanded(graph):
    tree = render_tree(graph, "model.p.cash")
    lines = tree.splitlines()
    assert lines[0].startswith("cash  [dbt model: gold]")
    for node_id in graph.upstream("model.p.cash"):
        assert graph.nodes[node_id].label in tree
    assert "forecast" not in tree
    assert any(line.endswith("└── extract_erp.extract_orders  [extraction task: sql]") for line in lines)


def test_a_shared_parent_is_expanded_once(manifest):
    manifest["nodes"]["model.p.cash2"] = model("cash2", "gold")
    manifest["parent_map"]["model.p.cash2"] = ["model.p.fact", "model.p.cash"]
    graph = build_lineage_graph(manifest, GROUPS, lake_name)
    tree = render_tree(graph, "model.p.cash2")
    assert tree.count("brz_orders") == 1
    assert "(upstream shown above)" in tree


def test_the_mermaid_picture_has_every_node_and_edge_of_the_chain(graph):
    text = to_mermaid(graph, "model.p.cash")
    assert text.startswith("flowchart LR\n")
    chain = graph.upstream("model.p.cash")
    for node_id in chain:
        assert graph.nodes[node_id].label in text
    edges = [line for line in text.splitlines() if "-->" in line]
    assert len(edges) == sum(len(graph.parents[node]) for node in chain)
    assert "forecast" not in text


def test_the_svg_is_self_contained_and_draws_every_node_left_of_its_children(graph):
    svg = to_svg(graph, "model.p.cash")
    root = ElementTree.fromstring(svg)  # well-formed XML
    texts = [element.text for element in root.iter("{http://www.w3.org/2000/svg}text")]
    chain = graph.upstream("model.p.cash")
    for node_id in chain:
        assert graph.nodes[node_id].label in texts
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", ""), "nothing loaded from the network"
    paths = [element for element in root.iter("{http://www.w3.org/2000/svg}path") if element.get("stroke")]
    assert len(paths) == sum(len(graph.parents[node]) for node in chain)
    layout = layered_layout(graph, "model.p.cash")
    for child in chain:
        for parent in graph.parents[child]:
            assert layout[parent][0] < layout[child][0]
    columns = {graph.nodes[node].kind: layout[node][0] for node in chain}
    assert columns[TASK] < columns[RAW] < columns[SOURCE] < columns[MODEL]


def test_events_chain_through_the_most_specific_writer():
    """The watcher producer's own event lists every model's inputs; the walk follows each dbt node's run instead."""

    def event(job: str, inputs: list, outputs: list, unique_id: str | None = None) -> dict:
        facets = {"dbt_node": {"unique_id": unique_id}} if unique_id else {}
        return {
            "eventType": "COMPLETE",
            "job": {"namespace": "ns", "name": job, "facets": facets},
            "inputs": [{"namespace": "file", "name": name} for name in inputs],
            "outputs": [{"namespace": "file", "name": name} for name in outputs],
        }

    events = [
        event("extract_erp.extract_orders", ["erp.orders"], ["/lake/raw/erp/orders"]),
        event("extract_forecast.extract_projects", ["api/projects"], ["/lake/raw/forecast/projects"]),
        event("wh.brz.run", ["/lake/raw/erp/orders"], ["wh.brz"], "model.p.brz"),
        event("wh.fc.run", ["/lake/raw/forecast/projects"], ["wh.fc"], "model.p.fc"),
        event("wh.gold.run", ["wh.brz"], ["wh.gold"], "model.p.gold"),
        # the producer (an Airflow task, with Cosmos's merged dbt_node facet): one event for the whole build
        {
            **event(
                "medallion.dbt.producer",
                ["/lake/raw/erp/orders", "/lake/raw/forecast/projects"],
                ["wh.brz", "wh.fc", "wh.gold"],
                "model.p.fc",
            ),
            "run": {"facets": {"airflow": {}}},
        },
        {"eventType": "START", "job": {"namespace": "ns", "name": "x"}, "inputs": [], "outputs": []},
    ]
    lineage = EventLineage.from_events(events)
    gold = lineage.dbt_outputs["model.p.gold"]
    assert lineage.upstream(gold) == {("file", "wh.brz"), ("file", "/lake/raw/erp/orders"), ("file", "erp.orders")}
    assert lineage.specific_writers(("file", "wh.brz")) == {"ns/wh.brz.run"}
    assert lineage.dbt_outputs["model.p.fc"] == ("file", "wh.fc"), "the producer's event is not the node's run"
    assert lineage.specific_parents(gold) == {("file", "wh.brz")}
    assert lineage.writers["file", "/lake/raw/erp/orders"] == {"ns/extract_erp.extract_orders"}


def test_the_project_chain_of_the_cash_flow_reaches_every_daily_source():
    graph = project_lineage()
    root = graph.resolve("agg_monthly_cash_flow")
    chain = graph.upstream(root)
    kinds = {graph.nodes[node].kind for node in chain}
    assert kinds == {MODEL, SOURCE, RAW, TASK}
    dags = {graph.nodes[node].label.split(".")[0] for node in chain if graph.nodes[node].kind == TASK}
    assert dags == {"extract_erp", "extract_partner_api", "extract_file_drops"}
    manifest = json.loads((PROJECT_ROOT / "dbt_project/target/manifest.json").read_text())
    for node in chain:
        if node.startswith("model."):
            assert graph.parents[node] == [
                parent for parent in manifest["parent_map"][node] if parent.startswith(("model.", "source."))
            ]


def test_the_cli_prints_the_tree_and_writes_both_pictures(tmp_path, capsys):
    assert cli_main(["lineage", "agg_monthly_cash_flow", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("agg_monthly_cash_flow  [dbt model: gold]")
    assert "extract_erp.extract_orders" in printed
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "agg_monthly_cash_flow.mmd",
        "agg_monthly_cash_flow.svg",
    ]
    assert cli_main(["lineage", "no_such_model", "--out", str(tmp_path)]) == 2
    assert "'no_such_model' is not one dataset" in capsys.readouterr().err


def test_pictures_are_named_after_the_root(graph, tmp_path):
    written = write_pictures(graph, "model.p.cash", tmp_path / "out")
    assert [path.name for path in written] == ["cash.mmd", "cash.svg"]
    assert all(path.read_text() for path in written)
