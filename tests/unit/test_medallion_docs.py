"""The DAGs document themselves in the Airflow UI: every DAG a description, every medallion task the doc of its dbt
node (the model's description, in English and Portuguese), every task group a tooltip (medalflow.medallion_docs)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from medalflow.medallion_docs import LAYER_TOOLTIPS, PRODUCER_DOC, group_tooltip, task_doc

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def medallion(dag_bag):
    return dag_bag.dags["medallion"]


def task_groups(group):
    for child in group.children.values():
        if hasattr(child, "children"):
            yield child
            yield from task_groups(child)


def test_every_dag_has_a_description(dag_bag):
    assert {"medallion", "maintenance", "extract_erp"} <= set(dag_bag.dags)
    assert [dag.dag_id for dag in dag_bag.dags.values() if not dag.description] == []
    assert dag_bag.dags["extract_erp"].description.startswith("Lands source erp in the lake's raw zone: ")


def test_every_medallion_task_has_a_doc(medallion):
    assert len(medallion.tasks) > 70
    assert [task.task_id for task in medallion.tasks if not (task.doc_md or "").strip()] == []


def test_a_model_task_shows_its_model_description_in_both_languages(medallion):
    task = medallion.get_task("dbt.models.gold.agg_monthly_cash_flow.run")
    assert task.doc_md.startswith("**dbt model `agg_monthly_cash_flow`**\n\nMonthly cash flow (fluxo de caixa) in BRL")
    tests = medallion.get_task("dbt.models.gold.agg_monthly_cash_flow.test")
    assert tests.doc_md.startswith("The dbt tests of model `agg_monthly_cash_flow`")
    assert medallion.get_task("dbt.dbt_producer_watcher").doc_md == PRODUCER_DOC


def test_every_task_group_has_a_tooltip(medallion):
    groups = list(task_groups(medallion.task_group))
    assert len(groups) > 30
    assert [group.group_id for group in groups if not group.tooltip] == []
    by_id = {group.group_id: group for group in groups}
    assert by_id["dbt.models.gold"].tooltip == LAYER_TOOLTIPS["gold"]
    assert by_id["dbt.models.bronze.erp"].tooltip.startswith("Bronze models of source erp: ")
    assert "risco cambial" in by_id["dbt.models.gold.ml_order_features"].tooltip


def test_a_node_without_description_still_gets_a_doc_saying_so():
    task = SimpleNamespace(
        task_id="dbt.models.silver.slv_new.run",
        extra_context={"dbt_node_config": {"unique_id": "model.medalflow.slv_new", "resource_type": "model"}},
    )
    nodes = {"model.medalflow.slv_new": {"name": "slv_new", "resource_type": "model", "description": ""}}
    assert task_doc(task, nodes) == "**dbt model `slv_new`**\n\nNo description in the dbt project yet."
    group = SimpleNamespace(group_id="dbt.models.silver.new_folder")
    assert group_tooltip(group, {}, {}).startswith("dbt models of folder new_folder")
