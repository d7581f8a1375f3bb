"""The observability DAG's tasks (logic in medalflow.observability.landing, .build and .publication)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from medalflow.settings import get_settings

# Runs of this DAG are landed like any other, but alone they are no reason to build again: otherwise every run would
# find the previous one's artifacts and the DAG would never go quiet.
OWN_RUNS_PREFIX = "dbt/observability/"


def _attempt(context: Any) -> tuple[str, str, str, int]:
    ti = context["ti"]
    return ti.dag_id, context["run_id"], ti.task_id, ti.try_number


@task(multiple_outputs=False, doc_md="New runs' artifacts -> `raw/_ops/<dataset>/` Parquet; nothing new: skip.")
def land_run_artifacts() -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from medalflow.observability.landing import land_artifacts

    report = land_artifacts(get_settings().lake_uri)
    others = [key for key in report.landed_runs if not key.startswith(OWN_RUNS_PREFIX)]
    if not others:
        raise AirflowSkipException(
            f"no new pipeline run to record ({len(report.landed_runs)} run(s) of this DAG landed, "
            f"{report.unchanged_runs} unchanged)"
        )
    return {"landed_runs": report.landed_runs, "rows": report.rows}


@task(doc_md="`dbt build --select tag:observability`: the observability models merged with what was landed.")
def build_observability_models() -> int:
    from medalflow.observability.build import build_observability

    return build_observability(attempt=_attempt(get_current_context()))


@task(doc_md="`dbt run-operation publish_models`: Parquet under `<lake>/_published/<model>/` for the UI.")
def publish_observability_tables() -> list[str]:
    from medalflow.observability.publication import publish

    return publish()
