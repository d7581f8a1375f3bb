"""The observability layer on DuckDB, for real: dbt's own artifacts landed (medalflow.observability.landing), the
observability models built over them, rebuilt after the same runs are landed again, and published as Parquet.

The runs:
* ``observability`` run 1: a real ``dbt build --select tag:observability`` over an empty lake (what DuckDB reports:
  rows affected, no bytes scanned);
* ``medallion`` run 2: the same run_results.json reshaped as dbt-athena writes it (``data_scanned_in_bytes`` on
  every node, the manifest's adapter athena), with one model failed and one test failed, retried once;
* an extraction run with a failed attempt and a successful retry; a maintenance freshness check.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import Dbt
from warehouse import query

from medalflow.artifacts import store_run_artifacts
from medalflow.observability import landing, records
from medalflow.observability.publication import PUBLISHED_ZONE, publication_folders, published_models
from medalflow.observability_page import CONTRACT as PAGE_CONTRACT

pytestmark = pytest.mark.integration

# The contract (issue 14) the UI page and the dashboards are built on: the columns the page reads, in this order.
CONTRACT = {name: list(columns) for name, columns in PAGE_CONTRACT.items() if name.startswith("obs_")}
MEDALLION_RUN = "asset_triggered__2026-01-06T00:40:00+00:00"
PRODUCER = "dbt.dbt_producer_watcher"
BYTES = 123_456_789
FAILED_MODEL, FAILED_TEST = "obs_model_runs", "unique_obs_test_results_test_result_id"


def athena_shaped(results: dict, manifest: dict, invocation_id: str) -> tuple[dict, dict]:
    """The run's results as dbt-athena reports them (bytes scanned per node), one model and one test failed."""
    results, manifest = copy.deepcopy(results), copy.deepcopy(manifest)
    results["metadata"]["invocation_id"] = invocation_id
    for result in results["results"]:
        result["adapter_response"] = {"_message": "OK", "rows_affected": 7, "data_scanned_in_bytes": BYTES}
        if result["unique_id"].endswith(f".{FAILED_MODEL}"):
            result.update(status="error", message="TABLE_NOT_FOUND: line 1:15", failures=None)
        if FAILED_TEST in result["unique_id"]:
            result.update(status="fail", message="Got 2 results, configured to fail if != 0", failures=2)
    manifest["metadata"]["adapter_type"] = "athena"
    return results, manifest


def store(lake: str, target: Path, dag_id: str, run_id: str, task_id: str, attempt: int) -> None:
    written = store_run_artifacts(target, lake, dag_id, run_id, task_id, attempt)
    assert any(path.endswith("run_results.json") for path in written)


@pytest.fixture(scope="module")
def observability(tmp_path_factory):
    root = tmp_path_factory.mktemp("observability")
    lake = str(root / "lake")
    Path(lake).mkdir()
    dbt = Dbt(lake, root / "warehouse.duckdb", root)
    build = ("build", "--select", "tag:observability", "--exclude", "resource_type:unit_test")

    # Run 1, real: the observability layer built over an empty lake.
    dbt(*build)
    target = root / "target"
    store(lake, target, "observability", "manual__2026-01-06T01:00:00+00:00", "build_observability_models", 1)

    # Run 2, Athena-shaped, its producer failed once and was retried.
    real = json.loads((target / "run_results.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    athena = root / "athena-target"
    athena.mkdir()
    for attempt in (1, 2):
        results, athena_manifest = athena_shaped(real, manifest, f"athena-invocation-{attempt}")
        (athena / "run_results.json").write_text(json.dumps(results))
        (athena / "manifest.json").write_text(json.dumps(athena_manifest))
        store(lake, athena, "medallion", MEDALLION_RUN, PRODUCER, attempt)

    # An extraction that failed, then succeeded on retry; a freshness check.
    for attempt, status in ((1, "failed"), (2, "success")):
        records.write_record(lake, records.ExtractionRunRecord(
            "extract_erp", MEDALLION_RUN, attempt, "erp", "orders", "2026-01-05T00:00:00+00:00",
            "2026-01-06T00:00:00+00:00", f"2026-01-06T00:0{attempt}:00+00:00", f"2026-01-06T00:0{attempt}:02.5+00:00",
            None if status == "failed" else 40, None if status == "failed" else 2, status,
        ))  # fmt: skip
    freshness = root / "freshness-target"
    freshness.mkdir()
    (freshness / "sources.json").write_text(json.dumps({
        "metadata": {"invocation_id": "freshness-1", "generated_at": "2026-01-06T03:00:10Z"},
        "results": [{"unique_id": "source.medalflow.erp.orders", "status": "pass", "max_loaded_at":
                     "2026-01-06T00:00:00+00:00", "snapshotted_at": "2026-01-06T03:00:00+00:00",
                     "max_loaded_at_time_ago_in_s": 10800.0}],
    }))  # fmt: skip
    store_run_artifacts(freshness, lake, "maintenance", "scheduled__2026-01-06T03:00:00+00:00", "check_freshness", 1)

    report = landing.land_artifacts(lake)
    assert len(report.landed_runs) == 4
    dbt(*build)
    first = snapshot(dbt.warehouse)

    # The same runs landed again (a forced landing rewrites every file), then built again.
    landing.land_artifacts(lake, force=True)
    dbt(*build)
    return dbt, first, manifest


def snapshot(warehouse: Path) -> dict[str, list[tuple]]:
    return {name: sorted(query(warehouse, f"select * from observability.{name}"), key=str) for name in CONTRACT}


def test_the_models_have_the_contracts_columns(observability):
    dbt, _first, _manifest = observability
    for name, columns in CONTRACT.items():
        found = query(
            dbt.warehouse,
            "select column_name from information_schema.columns where table_schema = 'observability' "
            f"and table_name = '{name}' order by ordinal_position",
        )
        assert [column for (column,) in found] == columns, name


def test_model_runs_record_each_invocation_with_status_rows_and_athena_cost(observability):
    dbt, _first, manifest = observability
    observability_models = sum(
        1 for node in manifest["nodes"].values() if node["resource_type"] == "model" and "observability" in node["tags"]
    )
    rows = query(
        dbt.warehouse,
        "select dag_id, status, layer, materialization, rows_affected, bytes_scanned, cost_usd, duration_seconds "
        "from observability.obs_model_runs where model_name = 'obs_model_runs' order by dag_id, invocation_id",
    )
    (athena_1, athena_2, duckdb) = rows
    assert athena_1[:2] == ("medallion", "error")
    assert athena_2[:2] == ("medallion", "error")
    assert athena_1[2:4] == ("observability", "incremental")
    # 123,456,789 bytes at 5 USD per TB, to the 1e-10 USD the model rounds to.
    assert athena_1[5] == BYTES
    assert athena_1[6] == round(BYTES / 1e12 * 5.0, 10)
    assert duckdb[0] == "observability"
    assert duckdb[1] == "success"
    assert (duckdb[5], duckdb[6]) == (None, None), "no bytes, no cost off Athena"
    assert duckdb[7] > 0
    per_invocation = query(
        dbt.warehouse, "select invocation_id, count(*) from observability.obs_model_runs group by 1 order by 1"
    )
    assert [count for _invocation, count in per_invocation] == [observability_models] * 3


def test_invocations_sum_their_nodes_cost_and_name_the_failures(observability):
    dbt, _first, _manifest = observability
    rows = query(
        dbt.warehouse,
        "select dag_id, task_id, try_number, command, target_type, status, nodes_failed, bytes_scanned, cost_usd, "
        "nodes_total from observability.obs_dbt_invocations order by dag_id, try_number",
    )
    assert len(rows) == 3
    (first, second, own) = rows
    assert first[:7] == ("medallion", PRODUCER, 1, "build", "athena", "error", 2)
    assert second[2] == 2
    nodes = first[9]
    assert first[7] == BYTES * nodes
    assert first[8] == pytest.approx(nodes * round(BYTES / 1e12 * 5.0, 10), abs=1e-10)
    assert own[:7] == ("observability", "build_observability_models", 1, "build", "duckdb", "success", 0)
    assert own[7] is None
    assert own[8] is None


def test_test_results_keep_the_failed_test_with_its_model_and_column(observability):
    dbt, _first, _manifest = observability
    failed = query(
        dbt.warehouse,
        "select status, failures, model_name, column_name, message from observability.obs_test_results "
        "where status <> 'pass' order by invocation_id",
    )
    assert len(failed) == 2, "the failed test in each attempt of the Athena-shaped run"
    assert failed[0][:4] == ("fail", 2, "obs_test_results", "test_result_id")
    assert "configured to fail" in failed[0][4]
    (passed,) = query(dbt.warehouse, "select count(*) from observability.obs_test_results where status = 'pass'")[0]
    assert passed > 10


def test_extraction_runs_and_freshness_checks(observability):
    dbt, _first, _manifest = observability
    runs = query(
        dbt.warehouse,
        "select extraction_run_id, status, rows_landed, rows_quarantined, duration_seconds, interval_start "
        "from observability.obs_extraction_runs order by try_number",
    )
    assert runs == [
        (f"extract_erp.{MEDALLION_RUN}.orders.1", "failed", None, None, 2.5, runs[0][5]),
        (f"extract_erp.{MEDALLION_RUN}.orders.2", "success", 40, 2, 2.5, runs[0][5]),
    ]
    assert runs[0][5].isoformat() == "2026-01-05T00:00:00"
    freshness = query(
        dbt.warehouse,
        "select freshness_check_id, source_name, table_name, age_hours, status from observability.obs_source_freshness",
    )
    assert freshness == [("freshness-1.source.medalflow.erp.orders", "erp", "orders", 3.0, "pass")]


def test_landing_and_building_the_same_runs_again_changes_nothing(observability):
    dbt, first, _manifest = observability
    assert snapshot(dbt.warehouse) == first
    (invocations,) = query(dbt.warehouse, "select count(*) from observability.obs_dbt_invocations")[0]
    assert invocations == 3


def test_publication_writes_each_model_as_parquet_under_the_lake(observability, tmp_path):
    dbt, _first, manifest = observability
    models = published_models(manifest, Path(__file__).resolve().parents[2] / "dbt_project")
    assert set(CONTRACT) | {"agg_monthly_cash_flow", "agg_monthly_orders", "agg_monthly_forecast_vs_actual"} == set(
        models
    )
    publication_folders(dbt.lake_uri, models)
    dbt("run-operation", "publish_models")
    for name, columns in CONTRACT.items():
        files = sorted((Path(dbt.lake_uri) / PUBLISHED_ZONE / name).glob("*.parquet"))
        assert [path.name for path in files] == [f"{name}.parquet"]
        table = pq.read_table(files[0])
        assert table.column_names == columns
        (count,) = query(dbt.warehouse, f"select count(*) from observability.{name}")[0]
        assert table.num_rows == count > 0
    # Published again: the same single file per model, replaced.
    dbt("run-operation", "publish_models")
    assert len(list((Path(dbt.lake_uri) / PUBLISHED_ZONE / "obs_model_runs").iterdir())) == 1
