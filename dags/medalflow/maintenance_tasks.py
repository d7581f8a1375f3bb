"""The maintenance DAG's tasks (logic in medalflow.maintenance)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from medalflow.settings import AWS_CONN_ID, get_settings


@task(doc_md="`dbt docs generate`, published to the lake for the UI's **dbt docs** page.")
def publish_dbt_docs() -> list[str]:
    from medalflow.maintenance import generate_and_publish_docs

    return generate_and_publish_docs()


@task(doc_md="`dbt source freshness`: fails on a source past its `error_after`.", multiple_outputs=False)
def check_freshness() -> dict[str, str]:
    from medalflow.maintenance import check_source_freshness

    context: Any = get_current_context()
    ti = context["ti"]
    return check_source_freshness(attempt=(ti.dag_id, context["run_id"], ti.task_id, ti.try_number))


@task(doc_md="Weekly on Athena: `OPTIMIZE` and `VACUUM` every Iceberg table dbt builds.", pool="default_pool")
def optimize_and_vacuum_iceberg() -> list[str]:
    import json

    from airflow.exceptions import AirflowSkipException

    from medalflow.maintenance import (
        iceberg_maintenance_due,
        iceberg_maintenance_statements,
        iceberg_tables,
        run_athena_statements,
    )

    settings = get_settings()
    context: Any = get_current_context()
    day = context["dag_run"].run_after.date()
    if reason := iceberg_maintenance_due(settings.dbt_target, day):
        raise AirflowSkipException(reason)
    statements = iceberg_maintenance_statements(iceberg_tables(json.loads(settings.manifest_path.read_text())))
    return run_athena_statements(statements, AWS_CONN_ID)
