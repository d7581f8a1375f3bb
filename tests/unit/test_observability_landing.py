"""The runs' artifacts landed as the ops raw datasets (medalflow.observability.landing), on a local lake."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medalflow.observability import landing, records

RUN = "scheduled__2026-01-05T00:00:00+00:00"
PRODUCER = "dbt.dbt_producer_watcher"
MANIFEST = {
    "metadata": {"adapter_type": "athena"},
    "nodes": {
        "model.medalflow.slv_orders": {
            "resource_type": "model", "name": "slv_orders", "fqn": ["medalflow", "silver", "slv_orders"],
            "tags": ["silver"], "config": {"materialized": "incremental"},
        },
        "model.medalflow.agg_monthly_orders": {
            "resource_type": "model", "name": "agg_monthly_orders", "fqn": ["medalflow", "gold", "agg_monthly_orders"],
            "tags": ["gold", "internal"], "config": {"materialized": "table"},
        },
        "test.medalflow.not_null_slv_orders_order_id.abc": {
            "resource_type": "test", "name": "not_null_slv_orders_order_id", "tags": [], "config": {},
            "attached_node": "model.medalflow.slv_orders", "column_name": "order_id",
        },
    },
    "unit_tests": {
        "unit_test.medalflow.slv_orders.cdc_merge": {
            "resource_type": "unit_test", "name": "cdc_merge", "model": "slv_orders", "package_name": "medalflow",
        },
    },
    "sources": {"source.medalflow.erp.orders": {"source_name": "erp", "name": "orders"}},
}  # fmt: skip


def result(unique_id: str, status: str, seconds: float = 1.5, **extra) -> dict:
    return {
        "unique_id": unique_id,
        "status": status,
        "execution_time": seconds,
        "timing": [
            {"name": "compile", "started_at": "2026-01-06T00:40:00.000000Z", "completed_at": "2026-01-06T00:40:01Z"},
            {"name": "execute", "started_at": "2026-01-06T00:40:01Z", "completed_at": "2026-01-06T00:40:02.500000Z"},
        ],
        "adapter_response": extra.pop("adapter_response", {}),
        "message": extra.pop("message", None),
        "failures": extra.pop("failures", None),
    }


def run_results(invocation_id: str, results: list[dict], which: str = "build") -> dict:
    return {
        "metadata": {
            "invocation_id": invocation_id,
            "generated_at": "2026-01-06T00:41:00Z",
            "invocation_started_at": "2026-01-06T00:39:58Z",
        },
        "elapsed_time": 62.0,
        "args": {"which": which, "target": "athena"},
        "results": results,
    }


def write(lake: Path, relative: str, payload: dict) -> None:
    path = lake / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


@pytest.fixture
def lake(tmp_path) -> Path:
    """A lake with one medallion run (a failed model, a failed test, Athena bytes), one maintenance freshness check
    and one extraction run (a failed attempt, then a successful one)."""
    root = tmp_path / "lake"
    folder = f"_artifacts/dbt/medallion/{RUN}"
    write(root, f"{folder}/manifest.json", MANIFEST)
    write(
        root,
        f"{folder}/{PRODUCER}/attempt=1/run_results.json",
        run_results(
            "inv-1",
            [
                result("model.medalflow.slv_orders", "success", adapter_response={"rows_affected": 40,
                       "data_scanned_in_bytes": 2_000_000}),
                result("model.medalflow.agg_monthly_orders", "error", message="Database Error: boom"),
                result("test.medalflow.not_null_slv_orders_order_id.abc", "fail", failures=3),
                result("unit_test.medalflow.slv_orders.cdc_merge", "pass"),
                result("operation.medalflow.medalflow-on-run-start-0", "success"),
            ],
        ),
    )  # fmt: skip
    maintenance = "_artifacts/dbt/maintenance/scheduled__2026-01-06T03:00:00+00:00"
    write(root, f"{maintenance}/manifest.json", MANIFEST)
    write(
        root,
        f"{maintenance}/check_freshness/attempt=1/sources.json",
        {
            "metadata": {"invocation_id": "inv-fresh", "generated_at": "2026-01-06T03:00:10Z"},
            "results": [
                {
                    "unique_id": "source.medalflow.erp.orders",
                    "status": "warn",
                    "max_loaded_at": "2026-01-05T00:00:00+00:00",
                    "snapshotted_at": "2026-01-06T03:00:05+00:00",
                    "max_loaded_at_time_ago_in_s": 27 * 3600 + 5,
                },
                {"unique_id": "source.medalflow.partner.payments", "status": "runtime error"},
            ],
        },
    )
    for attempt, status in ((1, "failed"), (2, "success")):
        records.write_record(
            str(root),
            records.ExtractionRunRecord(
                "extract_erp", RUN, attempt, "erp", "orders", "2026-01-05T00:00:00+00:00", "2026-01-06T00:00:00+00:00",
                f"2026-01-06T00:0{attempt}:00+00:00", f"2026-01-06T00:0{attempt}:30+00:00",
                None if status == "failed" else 120, None if status == "failed" else 1, status,
                "ExtractionError: ..." if status == "failed" else None,
            ),
        )  # fmt: skip
    return root


def dataset(lake: Path, name: str) -> list[dict]:
    files = sorted((lake / "raw/_ops" / name).glob("ingestion_date=*/*.parquet"))
    return [row for path in files for row in pq.read_table(path).to_pylist()]


def test_every_run_lands_as_flat_rows_in_the_raw_zone_layout(lake):
    report = landing.land_artifacts(str(lake))
    assert len(report.landed_runs) == 3
    assert report.rows == {"dbt_invocations": 1, "dbt_node_results": 4, "extraction_runs": 2, "source_freshness": 2}
    stem = "dbt__medallion__scheduled__2026-01-05T00_00_00_00_00.parquet"
    assert (lake / "raw/_ops/dbt_invocations/ingestion_date=2026-01-06" / stem).is_file()

    (invocation,) = dataset(lake, "dbt_invocations")
    assert invocation["invocation_id"] == "inv-1"
    assert (invocation["dag_id"], invocation["run_id"], invocation["task_id"], invocation["try_number"]) == (
        "medallion",
        RUN,
        PRODUCER,
        1,
    )
    assert (invocation["command"], invocation["target_type"], invocation["status"]) == ("build", "athena", "error")
    assert (invocation["nodes_total"], invocation["nodes_failed"], invocation["elapsed_seconds"]) == (4, 2, 62.0)
    assert invocation["started_at"].isoformat() == "2026-01-06T00:39:58"

    nodes = {row["unique_id"]: row for row in dataset(lake, "dbt_node_results")}
    assert "operation.medalflow.medalflow-on-run-start-0" not in nodes, "hooks are not nodes of a layer"
    orders = nodes["model.medalflow.slv_orders"]
    assert (orders["layer"], orders["materialization"], orders["status"]) == ("silver", "incremental", "success")
    assert (orders["rows_affected"], orders["bytes_scanned"], orders["duration_seconds"]) == (40, 2_000_000, 1.5)
    assert orders["started_at"].isoformat() == "2026-01-06T00:40:01"
    assert orders["completed_at"].isoformat() == "2026-01-06T00:40:02.500000"
    failed = nodes["model.medalflow.agg_monthly_orders"]
    assert (failed["layer"], failed["status"], failed["message"]) == ("gold", "error", "Database Error: boom")
    assert failed["bytes_scanned"] is None
    assert failed["rows_affected"] is None
    test = nodes["test.medalflow.not_null_slv_orders_order_id.abc"]
    assert (test["tested_model"], test["column_name"], test["status"], test["failures"]) == (
        "slv_orders",
        "order_id",
        "fail",
        3,
    )
    assert nodes["unit_test.medalflow.slv_orders.cdc_merge"]["tested_model"] == "slv_orders"

    freshness = {row["unique_id"]: row for row in dataset(lake, "source_freshness")}
    orders = freshness["source.medalflow.erp.orders"]
    assert (orders["source_name"], orders["table_name"], orders["status"]) == ("erp", "orders", "warn")
    assert orders["age_hours"] == pytest.approx(27.0014, abs=1e-3)
    assert orders["checked_at"].isoformat() == "2026-01-06T03:00:05"
    errored = freshness["source.medalflow.partner.payments"]
    assert (errored["source_name"], errored["table_name"], errored["max_loaded_at"]) == ("partner", "payments", None)

    extractions = sorted(dataset(lake, "extraction_runs"), key=lambda row: row["try_number"])
    assert [(row["status"], row["rows_landed"], row["rows_quarantined"]) for row in extractions] == [
        ("failed", None, None),
        ("success", 120, 1),
    ]
    assert extractions[0]["interval_start"].isoformat() == "2026-01-05T00:00:00"


def test_landing_again_reads_only_changed_runs_and_replaces_a_run_instead_of_duplicating_it(lake):
    landing.land_artifacts(str(lake))
    again = landing.land_artifacts(str(lake))
    assert again.landed_runs == []
    assert again.unchanged_runs == 3

    # A retry of the medallion's producer: the run is landed again, with both attempts, in the same file.
    folder = f"_artifacts/dbt/medallion/{RUN}"
    write(lake, f"{folder}/{PRODUCER}/attempt=2/run_results.json", run_results("inv-2", [
        result("model.medalflow.agg_monthly_orders", "success")
    ]))  # fmt: skip
    retried = landing.land_artifacts(str(lake))
    assert retried.landed_runs == [f"dbt/medallion/{RUN}"]
    invocations = dataset(lake, "dbt_invocations")
    assert sorted((row["invocation_id"], row["try_number"]) for row in invocations) == [("inv-1", 1), ("inv-2", 2)]
    assert len(dataset(lake, "dbt_node_results")) == 5
    assert len(list((lake / "raw/_ops").rglob("*.parquet"))) == 4, "one file per run and dataset it has rows for"
    assert not list((lake / "_staging").rglob("*.parquet")), "nothing left in the work area"


def test_a_forced_landing_rewrites_the_same_files_with_the_same_rows(lake):
    landing.land_artifacts(str(lake))
    before = {path: pq.read_table(path).to_pylist() for path in (lake / "raw/_ops").rglob("*.parquet")}
    landing.land_artifacts(str(lake), force=True)
    after = {path: pq.read_table(path).to_pylist() for path in (lake / "raw/_ops").rglob("*.parquet")}
    assert after == before


def test_a_run_whose_files_move_to_another_day_leaves_no_stale_file(lake):
    landing.land_artifacts(str(lake))
    moved = records.ExtractionRunRecord(
        "extract_erp", RUN, 1, "erp", "orders", None, None, "2026-01-04T23:59:00+00:00", "2026-01-05T00:00:10+00:00",
        1, 0, "success",
    )  # fmt: skip
    records.write_record(str(lake), moved)
    landing.land_artifacts(str(lake))
    files = sorted(path.parent.name for path in (lake / "raw/_ops/extraction_runs").rglob("*.parquet"))
    assert files == ["ingestion_date=2026-01-04"]
    assert len(dataset(lake, "extraction_runs")) == 2


def test_a_broken_artifact_is_named(lake):
    (lake / f"_artifacts/dbt/medallion/{RUN}/{PRODUCER}/attempt=1/run_results.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"run_results.json is not JSON .*remove or fix the file"):
        landing.land_artifacts(str(lake))


def test_timestamps_are_naive_utc_and_counts_unknown_are_null():
    assert landing.timestamp("2026-01-06T03:00:05+02:00").isoformat() == "2026-01-06T01:00:05"
    assert landing.timestamp("2026-01-06T03:00:05Z").isoformat() == "2026-01-06T03:00:05"
    assert landing.timestamp(None) is None
    assert [landing._count(value) for value in (-1, None, "7", 3, True)] == [None, None, 7, 3, None]


def test_the_dag_skips_its_build_when_only_its_own_previous_run_is_new(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowSkipException

    from medalflow.observability.tasks import land_run_artifacts

    root = tmp_path / "lake"
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(root))
    own = "_artifacts/dbt/observability/scheduled__2026-01-06T01:15:00+00:00/build_observability_models/attempt=1"
    write(root, f"{own}/run_results.json", run_results("inv-own", [result("model.medalflow.slv_orders", "success")]))
    with pytest.raises(AirflowSkipException, match="no new pipeline run to record"):
        land_run_artifacts.function()
    write(root, f"_artifacts/dbt/medallion/{RUN}/{PRODUCER}/attempt=1/run_results.json", run_results("inv-1", []))
    landed = land_run_artifacts.function()
    assert landed["landed_runs"] == [f"dbt/medallion/{RUN}"]
