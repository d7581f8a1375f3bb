"""The medalflow page's figures (medalflow.observability_page) over Parquet from tests/observability_fixtures."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import observability_fixtures as fixtures
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medalflow import observability_page as page

END = date(2026, 3, 31)


@pytest.fixture
def published(tmp_path):
    """30 days of DuckDB runs published in a local lake; the page's location."""
    fixtures.write_published(fixtures.generate(30, END, target_type="duckdb"), tmp_path)
    return page.published_uri(str(tmp_path))


def test_published_uri_is_under_the_lake(monkeypatch):
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", "s3://bucket/lake/")
    assert page.published_uri() == "s3://bucket/lake/_published"


def test_nothing_published_says_so(tmp_path):
    with pytest.raises(page.NotPublishedError, match="obs_dbt_invocations"):
        page.page_data(page.published_uri(str(tmp_path)))


def test_run_history_success_rate_and_the_failed_run(published):
    data = page.page_data(published, days=30)

    # 30 medallion runs and 4 extraction DAGs a day; the last medallion run failed (a model errored, a test failed).
    assert data["window"] == {"days": 30, "first_day": "2026-03-02", "last_day": "2026-03-31"}
    assert data["summary"]["runs"] == 30 * 5
    assert data["summary"]["failed_runs"] == 1
    assert data["summary"]["success_rate"] == pytest.approx(149 / 150)
    last = data["summary"]["last_run"]
    assert (last["dag_id"], last["status"]) == ("medallion", "failed")
    # The build (30 models, 80 tests) and the freshness check (12 source tables); a model errored, a test failed.
    assert last["detail"] == "122 nodes, 2 failed, 2 dbt invocations"
    assert data["runs"][0] == last
    assert data["daily"][-1]["failed"] == 1
    assert data["daily"][-1]["succeeded"] == 4
    assert data["daily"][0] | {"success_rate": 1.0} == data["daily"][0]


def test_a_retry_that_succeeded_makes_its_run_succeed(tmp_path):
    rows = fixtures.generate(3, END)
    build = rows["obs_dbt_invocations"][-2]
    assert build["status"] == "error"
    rows["obs_dbt_invocations"].append(build | {"invocation_id": "retry", "try_number": 2, "status": "success",
                                                "nodes_failed": 0})  # fmt: skip
    fixtures.write_published(rows, tmp_path)

    data = page.page_data(page.published_uri(str(tmp_path)), days=3)

    assert data["summary"]["failed_runs"] == 0
    assert "3 dbt invocations" in data["runs"][0]["detail"]


def test_failing_tests_are_each_tests_latest_failure(published):
    failing = page.page_data(published)["failing_tests"]

    assert [(t["test_name"], t["status"], t["failures"]) for t in failing] == [
        (fixtures.FAILING_TEST, "fail", 3),
        (fixtures.WARNING_TEST, "warn", 1),
    ]
    assert failing[0]["model_name"] == "slv_payments"
    assert failing[0]["column_name"] == "payment_id"


def test_a_test_that_passed_again_is_no_longer_failing(tmp_path):
    rows = fixtures.generate(2, END)
    failed = next(r for r in rows["obs_test_results"] if r["status"] == "fail")
    later = failed["run_started_at"] + timedelta(hours=1)
    rows["obs_test_results"].append(failed | {"test_result_id": "later", "run_started_at": later, "status": "pass",
                                              "failures": 0})  # fmt: skip
    fixtures.write_published(rows, tmp_path)

    names = [t["test_name"] for t in page.page_data(page.published_uri(str(tmp_path)))["failing_tests"]]

    assert names == [fixtures.WARNING_TEST]


def test_freshness_is_each_source_tables_latest_check_worst_first(published):
    data = page.page_data(published)
    freshness = data["freshness"]

    assert len(freshness) == len(fixtures.SOURCES)
    assert (freshness[0]["source_name"], freshness[0]["table_name"], freshness[0]["status"]) == (
        *fixtures.STALE_SOURCE,
        "error",
    )
    assert freshness[0]["age_hours"] > 48
    assert {row["checked_at"].date() for row in freshness} == {END}
    assert data["summary"]["stale_sources"] == 1


def test_quarantined_records_per_entity_and_day(published):
    data = page.page_data(published)

    assert [(q["source"], q["entity"]) for q in data["quarantine"]] == [fixtures.QUARANTINING]
    total = data["quarantine"][0]["rows_quarantined"]
    assert total >= 17
    assert total == data["summary"]["quarantined_rows"]
    assert sum(day["quarantined_rows"] for day in data["daily"]) == total
    assert data["daily"][-1]["quarantined_rows"] >= 17


def test_duckdb_runs_have_no_cost(published):
    data = page.page_data(published)

    assert data["cost_available"] is False
    assert data["target_types"] == ["duckdb"]
    assert data["summary"]["cost_usd"] is None
    assert data["summary"]["bytes_scanned"] is None
    assert all(run["cost_usd"] is None for run in data["runs"])
    assert data["costliest_models"] == []


def test_athena_cost_per_run_and_per_model(tmp_path):
    rows = fixtures.generate(10, END, target_type="athena")
    fixtures.write_published(rows, tmp_path)

    data = page.page_data(page.published_uri(str(tmp_path)), days=10)

    invocations = rows["obs_dbt_invocations"]
    assert data["cost_available"] is True
    assert data["summary"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in invocations))
    assert data["summary"]["bytes_scanned"] == sum(r["bytes_scanned"] for r in invocations)
    medallion = next(run for run in data["runs"] if run["dag_id"] == "medallion")
    assert medallion["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in invocations[-2:]))
    costliest = data["costliest_models"][0]
    model_rows = [r for r in rows["obs_model_runs"] if r["model_name"] == costliest["model_name"]]
    assert costliest["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in model_rows))
    assert costliest["cost_usd"] >= max(m["cost_usd"] for m in data["costliest_models"])
    assert sum(day["cost_usd"] for day in data["daily"]) == pytest.approx(data["summary"]["cost_usd"])


def test_slowest_models_and_their_trend(published):
    data = page.page_data(published)
    slowest = data["slowest_models"]

    assert len(slowest) == page.SLOWEST_MODELS
    assert [m["avg_seconds"] for m in slowest] == sorted((m["avg_seconds"] for m in slowest), reverse=True)
    assert all(m["runs"] in (29, 30) for m in slowest)  # the failed model's error still has a duration
    trend = data["model_trend"]
    assert trend["days"][0] == "2026-03-02"
    assert len(trend["days"]) == 30
    assert [s["model_name"] for s in trend["series"]] == [m["model_name"] for m in slowest[: page.TREND_MODELS]]
    assert all(len(s["seconds"]) == 30 for s in trend["series"])


def test_trend_compares_the_windows_halves(tmp_path):
    rows = fixtures.generate(10, END)
    for row in rows["obs_model_runs"]:
        if row["model_name"] == "agg_model_00":
            row["duration_seconds"] = 500.0 if row["run_started_at"].date() > END - timedelta(days=5) else 250.0
    fixtures.write_published(rows, tmp_path)

    slowest = page.page_data(page.published_uri(str(tmp_path)), days=10)["slowest_models"][0]

    assert slowest["model_name"] == "agg_model_00"
    assert slowest["trend_ratio"] == pytest.approx(1.0)  # twice as slow in the second half


def test_the_window_ends_at_the_latest_run_and_filters_older_ones(published):
    data = page.page_data(published, days=7)

    assert data["window"]["last_day"] == END.isoformat()
    assert data["summary"]["runs"] == 7 * 5
    assert len(data["daily"]) == 7


def test_gold_series_in_month_order(published):
    gold = page.page_data(published)["gold"]

    assert gold["cash_flow"]["months"] == sorted(gold["cash_flow"]["months"])
    assert len(gold["cash_flow"]["months"]) == 25
    assert gold["cash_flow"]["months"][-1] == "2026-03"
    assert all(isinstance(v, float) for v in gold["orders"]["sales_brl"])
    forecast = gold["forecast"]
    assert forecast["months"][-1] == "2026-09"
    assert forecast["actual_sales_brl"][-1] is None
    assert forecast["actual_sales_brl"][0] is not None


def test_gold_not_published_yet_is_none(tmp_path):
    rows = fixtures.generate(2, END)
    fixtures.write_published(rows, tmp_path, only=tuple(n for n in rows if n.startswith("obs_")))

    assert page.page_data(page.published_uri(str(tmp_path)))["gold"] == {
        "cash_flow": None,
        "orders": None,
        "forecast": None,
    }


def test_naive_timestamps_are_utc_and_several_files_are_one_table(tmp_path):
    rows = fixtures.generate(4, END)
    published = fixtures.write_published(rows, tmp_path)
    folder = published / "obs_dbt_invocations"
    table = pq.read_table(folder / "part-0.parquet")
    naive = table.cast(
        pa.schema(
            [
                f.with_type(pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f
                for f in table.schema  # as a warehouse without zones writes them
            ]
        )
    )
    (folder / "part-0.parquet").unlink()
    pq.write_table(naive.slice(0, 3), folder / "part-0.parquet")
    pq.write_table(naive.slice(3), folder / "part-1.parquet")

    data = page.page_data(str(published), days=4)

    assert data["latest_run_at"] == max(r["started_at"] for r in rows["obs_dbt_invocations"])
    assert data["summary"]["runs"] == 4 * 5


def test_a_republished_table_is_read_again(tmp_path):
    rows = fixtures.generate(3, END)
    published = fixtures.write_published(rows, tmp_path)
    assert page.page_data(str(published), days=3)["summary"]["failed_runs"] == 1

    for row in rows["obs_dbt_invocations"]:
        row["status"], row["nodes_failed"] = "success", 0
    fixtures.write_published(rows, tmp_path, only=("obs_dbt_invocations",))
    file = published / "obs_dbt_invocations" / "part-0.parquet"
    os.utime(file, (file.stat().st_atime, file.stat().st_mtime + 5))  # a new mtime, even on a coarse clock

    assert page.page_data(str(published), days=3)["summary"]["failed_runs"] == 0


def test_a_table_without_a_contract_column_is_named(tmp_path):
    rows = fixtures.generate(2, END)
    published = fixtures.write_published(rows, tmp_path)
    file = published / "obs_model_runs" / "part-0.parquet"
    pq.write_table(pq.read_table(file).drop_columns(["cost_usd"]), file)

    with pytest.raises(page.PublicationError, match=r"obs_model_runs .*part-0.parquet.*\['cost_usd'\]"):
        page.page_data(str(published))


def test_an_empty_window_has_no_rate(tmp_path):
    rows = {name: [] for name in fixtures.SCHEMAS}
    rows["obs_dbt_invocations"] = []
    fixtures.write_published(rows, tmp_path)

    data = page.page_data(page.published_uri(str(tmp_path)), days=5)

    assert data["summary"]["runs"] == 0
    assert data["summary"]["success_rate"] is None
    assert data["window"]["last_day"] == datetime.now(UTC).date().isoformat()


def test_the_publication_is_read_from_s3_and_a_republished_one_seen(tmp_path, moto_s3_bucket):
    """s3:// through s3fs, as on MWAA (moto here): the page sees a republication at once, despite s3fs's caches."""
    import s3fs

    rows = fixtures.generate(5, END, target_type="athena")
    local = fixtures.write_published(rows, tmp_path / "v1")
    s3 = s3fs.S3FileSystem()
    location = f"s3://{moto_s3_bucket}/lake/_published"
    s3.put(f"{local}/", location, recursive=True)

    first = page.page_data(location, days=5)

    assert first["summary"]["failed_runs"] == 1
    assert first["cost_available"] is True
    for row in rows["obs_dbt_invocations"]:
        row["status"], row["nodes_failed"] = "success", 0
    republished = fixtures.write_published(rows, tmp_path / "v2", only=("obs_dbt_invocations",))
    s3.put(f"{republished}/obs_dbt_invocations/part-0.parquet", f"{location}/obs_dbt_invocations/part-0.parquet")
    assert page.page_data(location, days=5)["summary"]["failed_runs"] == 0


def test_only_the_invocations_published_still_make_a_page(tmp_path):
    rows = fixtures.generate(3, END)
    fixtures.write_published(rows, tmp_path, only=("obs_dbt_invocations",))

    data = page.page_data(page.published_uri(str(tmp_path)), days=3)

    assert data["published"] == ["obs_dbt_invocations"]
    assert data["summary"]["runs"] == 3
    assert data["slowest_models"] == []
    assert data["failing_tests"] == []
    assert data["freshness"] == []
    assert data["quarantine"] == []


def test_athena_unload_files_without_extension_are_read_and_markers_skipped(tmp_path):
    """Athena's UNLOAD names its files after the query, with no extension; a writer's temporary file is not data."""
    rows = fixtures.generate(2, END)
    published = fixtures.write_published(rows, tmp_path)
    folder = published / "obs_dbt_invocations"
    (folder / "part-0.parquet").rename(folder / "20261201_021500_00042_abcde_6f1c0a4e-1b2c-4d5e-8f90-123456789abc")
    (folder / "_SUCCESS").write_text("")
    (folder / "obs_dbt_invocations.parquet.tmp").write_bytes(b"PAR1 half written")

    assert page.page_data(str(published), days=2)["summary"]["runs"] == 2 * 5


def test_a_stray_file_that_is_not_parquet_is_named(tmp_path):
    published = fixtures.write_published(fixtures.generate(2, END), tmp_path)
    (published / "obs_model_runs" / "notes").write_text("not a table")

    with pytest.raises(page.PublicationError, match=r"obs_model_runs: .*notes is not a Parquet file"):
        page.page_data(str(published))


def test_a_failure_repeated_by_a_retried_invocation_is_listed_once(tmp_path):
    rows = fixtures.generate(2, END)
    failed = next(r for r in rows["obs_test_results"] if r["status"] == "fail")
    rows["obs_test_results"].append(failed | {"test_result_id": "retry.test", "invocation_id": "retry"})
    fixtures.write_published(rows, tmp_path)

    failing = page.page_data(str(tmp_path / "_published"))["failing_tests"]

    assert [t["test_name"] for t in failing] == [fixtures.FAILING_TEST, fixtures.WARNING_TEST]
