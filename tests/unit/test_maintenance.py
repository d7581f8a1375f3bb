"""The maintenance DAG's logic: Iceberg statements from the manifest, when they run, Athena, freshness."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from medalflow import maintenance

MANIFEST = Path(__file__).resolve().parents[2] / "dbt_project" / "target" / "manifest.json"


def node(name: str, materialized: str, table_type: str | None = "iceberg", schema: str = "gold", kind: str = "model"):
    config = {"materialized": materialized, **({"table_type": table_type} if table_type else {})}
    return {"resource_type": kind, "name": name, "alias": name, "schema": schema, "config": config}


def test_iceberg_tables_are_the_models_dbt_materialises_as_iceberg():
    manifest = {
        "nodes": {
            "model.m.b": node("brz_orders", "incremental", schema="bronze"),
            "model.m.g": node("agg_orders", "table"),
            "model.m.v": node("a_view", "view"),
            "model.m.e": node("an_ephemeral", "ephemeral"),
            "model.m.h": node("hive_table", "table", table_type="hive"),
            "test.m.t": node("not_null_x", "test", kind="test"),
        }
    }
    assert maintenance.iceberg_tables(manifest) == [("bronze", "brz_orders"), ("gold", "agg_orders")]


def test_the_projects_own_models_are_all_covered():
    tables = maintenance.iceberg_tables(json.loads(MANIFEST.read_text()))
    assert ("gold", "agg_monthly_orders") in tables
    assert ("silver", "slv_orders") in tables
    assert ("bronze", "brz_erp__orders") in tables


def test_statements_compact_then_vacuum_each_table():
    statements = maintenance.iceberg_maintenance_statements([("gold", "agg_orders"), ("silver", 'we"ird')])
    assert statements == [
        'OPTIMIZE "gold"."agg_orders" REWRITE DATA USING BIN_PACK',
        'VACUUM "gold"."agg_orders"',
        'OPTIMIZE "silver"."we""ird" REWRITE DATA USING BIN_PACK',
        'VACUUM "silver"."we""ird"',
    ]


@pytest.mark.parametrize(
    ("target", "day", "runs"),
    [("athena", date(2026, 1, 11), True), ("athena", date(2026, 1, 12), False), ("duckdb", date(2026, 1, 11), False)],
)
def test_iceberg_upkeep_runs_on_sundays_on_athena_only(target, day, runs):
    assert (maintenance.iceberg_maintenance_due(target, day) is None) is runs


def test_statements_are_run_on_athena_one_by_one(monkeypatch):
    import boto3
    from moto import mock_aws
    from moto.athena.models import athena_backends

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MEDALFLOW_ATHENA_S3_STAGING_DIR", "s3://results/athena/")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}})
    )
    statements = maintenance.iceberg_maintenance_statements([("gold", "agg_orders")])
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="results")
        query_ids = maintenance.run_athena_statements(statements, "aws_default")
        executions = athena_backends["123456789012"]["us-east-1"].executions
        ran = [executions[query_id].query for query_id in query_ids]
    assert ran == statements


def test_stale_sources_are_those_not_passing():
    sources = {
        "results": [
            {"unique_id": "source.m.erp.orders", "status": "pass"},
            {"unique_id": "source.m.api.p", "status": "warn"},
        ]
    }
    assert maintenance.stale_sources(sources) == {"source.m.api.p": "warn"}


def test_dbt_writes_to_a_target_folder_of_its_own(tmp_path):
    from medalflow.settings import get_settings

    command = maintenance.dbt_command(get_settings(), ["docs", "generate"], tmp_path)
    assert command[1:3] == ["docs", "generate"]
    assert command[-2:] == ["--target-path", str(tmp_path)]
