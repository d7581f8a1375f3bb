"""DuckDB over an ``s3://`` lake: the duckdb profile's fsspec filesystem, against moto's S3 server over real HTTP.

DuckDB's httpfs extension cannot be downloaded everywhere, so profiles.yml registers s3fs with DuckDB when
``MEDALFLOW_LAKE_URI`` is ``s3://``; the endpoint comes from ``AWS_ENDPOINT_URL_S3`` (botocore reads it), which is
what docker-compose.yml sets for MinIO and what this test sets for moto.

Two days land in ``s3://<bucket>/lake``, then dbt builds them one interval at a time (the first run creates every
table, the second takes the incremental path: interval deletes, appends and merges, all reading the lake through
s3fs). The same raw zone is copied to a local folder and built the same way: every bronze, silver and gold table
must be equal. The forecast lands on Sundays only, so its datasets have no files in S3 and must read as empty
(the ``glob`` check over fsspec), while every dataset that landed must have rows.
"""

from __future__ import annotations

import boto3
import pytest
from conftest import DAYS, Dbt
from raw_lake import RawLakeBuilder
from warehouse import differences, query, tables

from medalflow.lake import Lake

pytestmark = pytest.mark.integration

BUCKET = "medalflow-s3-lake-test"
LAKE_URI = f"s3://{BUCKET}/lake"
# Thursday and Friday: ERP, partner API and file drops land; the forecast (Sundays) does not.
LANDED_DAYS = DAYS[:2]
NOT_LANDED = {
    "bronze.brz_forecast__projects", "bronze.brz_forecast__baselines", "bronze.brz_forecast__scenarios",
    "silver.slv_forecast_projects", "silver.slv_forecast_monthly", "gold.agg_monthly_forecast_vs_actual",
}  # fmt: skip


@pytest.fixture(scope="module")
def s3_environment(moto_endpoint):
    """The lake's bucket on the session's moto server, and this process's environment pointed at it (the lake written
    here and the dbt subprocesses both read it)."""
    with pytest.MonkeyPatch.context() as environment:
        # Only S3's endpoint, as docker-compose.yml does for MinIO: the profile must not need anything else.
        environment.delenv("AWS_ENDPOINT_URL", raising=False)
        environment.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
        environment.setenv("AWS_ACCESS_KEY_ID", "testing")
        environment.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        environment.setenv("AWS_DEFAULT_REGION", "us-east-1")
        boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=BUCKET)
        yield moto_endpoint


def build_daily(dbt: Dbt) -> None:
    """One run per landed day, as the medallion DAG does. Data tests are left out: none reads the lake (they read the
    warehouse), and test_duckdb.py runs them all."""
    for day in LANDED_DAYS:
        dbt("build", "--exclude", "resource_type:test", "resource_type:unit_test", interval=day)


@pytest.fixture(scope="module")
def builds(s3_environment, world, tmp_path_factory):
    """The same raw zone built from S3 and from a local copy of it: (S3 build, local build, S3 lake)."""
    root = tmp_path_factory.mktemp("s3_lake")
    builder = RawLakeBuilder(world, LAKE_URI, root / "erp.sqlite")
    try:
        builder.land(LANDED_DAYS)
    finally:
        builder.close()
    lake = Lake(LAKE_URI)
    local_lake = root / "local" / "lake"
    lake.fs.get(lake.path("raw"), str(local_lake / "raw"), recursive=True)

    on_s3 = Dbt(LAKE_URI, root / "s3" / "warehouse.duckdb", root / "s3")
    build_daily(on_s3)
    on_local = Dbt(str(local_lake), root / "local" / "warehouse.duckdb", root / "local")
    build_daily(on_local)
    return on_s3, on_local, lake


def test_raw_zone_landed_in_s3(builds, s3_environment):
    _, _, lake = builds
    assert lake.uri.startswith("s3://")
    files = lake.list_files("raw")
    assert files, "the raw zone is in the bucket"
    listed = boto3.client("s3", endpoint_url=s3_environment).list_objects_v2(Bucket=BUCKET, Prefix="lake/raw/")
    assert sorted(item["Key"] for item in listed["Contents"]) == sorted(f"lake/{name}" for name in files)
    days = {name.split("ingestion_date=")[1].split("/")[0] for name in files}
    assert days == {day.isoformat() for day in LANDED_DAYS}


def test_every_layer_built_from_s3_has_rows_and_the_forecast_reads_as_empty(builds):
    on_s3, _, _ = builds
    results = on_s3.run_results()
    failed = [(r["unique_id"], r["status"]) for r in results if r["status"] not in ("success", "pass")]
    assert not failed
    built = tables(on_s3.warehouse)
    assert {name.split(".")[0] for name in built} == {"bronze", "silver", "gold"}
    rows = {name: query(on_s3.warehouse, f"select count(*) from {name}")[0][0] for name in built}
    assert {name for name, count in rows.items() if not count} == NOT_LANDED


def test_s3_lake_builds_the_same_tables_as_a_local_copy(builds):
    on_s3, on_local, _ = builds
    names = tables(on_s3.warehouse)
    assert names == tables(on_local.warehouse)
    assert differences(on_s3.warehouse, on_local.warehouse, names) == {}
