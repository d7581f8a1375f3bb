"""dbt artifacts and docs in the lake (a local folder here; the same fsspec code serves s3://)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from medalflow import artifacts


@pytest.fixture
def target(tmp_path):
    folder = tmp_path / "target"
    folder.mkdir()
    (folder / "run_results.json").write_text(json.dumps({"results": [{"status": "error"}]}))
    (folder / "manifest.json").write_text(json.dumps({"nodes": {}}))
    return folder


def test_run_results_per_attempt_and_the_manifest_once_per_run(target, tmp_path):
    lake = tmp_path / "lake"
    first = artifacts.store_run_artifacts(
        target, str(lake), "medallion", "manual__2026-01-05T00:00:00+00:00", "dbt.dbt_producer_watcher", 1
    )
    (target / "manifest.json").write_text("changed")
    second = artifacts.store_run_artifacts(
        target, str(lake), "medallion", "manual__2026-01-05T00:00:00+00:00", "dbt.dbt_producer_watcher", 2
    )

    run = "_artifacts/dbt/medallion/manual__2026-01-05T00:00:00+00:00"
    assert first == [f"{run}/dbt.dbt_producer_watcher/attempt=1/run_results.json", f"{run}/manifest.json"]
    assert second == [f"{run}/dbt.dbt_producer_watcher/attempt=2/run_results.json"]
    assert json.loads((lake / run / "manifest.json").read_text()) == {"nodes": {}}
    assert (lake / run / "dbt.dbt_producer_watcher/attempt=1/run_results.json").exists()


def test_a_dbt_run_that_wrote_nothing_stores_nothing(tmp_path):
    empty = tmp_path / "target"
    empty.mkdir()
    assert artifacts.store_run_artifacts(empty, str(tmp_path / "lake"), "medallion", "r", "t", 1) == []


def test_cosmos_callback_stores_from_the_task_context_and_never_raises(target, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    ti = SimpleNamespace(dag_id="medallion", task_id="dbt.models.silver.slv_orders.run", try_number=1)
    artifacts.store_artifacts_callback(str(target.parent), context={"ti": ti, "run_id": "scheduled__1"})
    assert (tmp_path / "lake/_artifacts/dbt/medallion/scheduled__1/manifest.json").exists()

    monkeypatch.setenv("MEDALFLOW_LAKE_URI", "unknownscheme://nowhere")
    artifacts.store_artifacts_callback(str(target.parent), context={"ti": ti, "run_id": "scheduled__2"})


def test_run_ids_stay_one_path_segment():
    assert artifacts.run_folder("medallion", "manual/../x") == "_artifacts/dbt/medallion/manual_.._x"


def test_docs_are_published_and_read_back(tmp_path, monkeypatch):
    generated = tmp_path / "target"
    generated.mkdir()
    for name in artifacts.DOCS_FILES:
        (generated / name).write_text(f"content of {name}")
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.delenv("MEDALFLOW_DBT_DOCS_URI", raising=False)

    published = artifacts.publish_docs(generated, artifacts.docs_uri())
    assert published[0] == f"{tmp_path}/lake/_docs/dbt/index.html"
    assert artifacts.read_docs_file("catalog.json") == b"content of catalog.json"
    with pytest.raises(FileNotFoundError):
        artifacts.read_docs_file("../profiles.yml")


def test_docs_missing_from_the_target_are_an_error(tmp_path):
    (tmp_path / "index.html").write_text("page")
    with pytest.raises(FileNotFoundError, match=r"catalog\.json"):
        artifacts.publish_docs(tmp_path, str(tmp_path / "published"))
