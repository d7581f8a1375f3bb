"""Helpers for tests that run DAGs with dag.test() against the session's Airflow database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable


def forget_dags(dag_ids: Iterable[str]) -> None:
    """Delete DAGs and their runs from Airflow's database, so a later test running a DAG of the same id builds it
    anew with its own lake (Asset URIs) instead of meeting this test's serialized version and Assets."""
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound

    for dag_id in dag_ids:
        with contextlib.suppress(DagNotFound):
            delete_dag(dag_id, keep_records_in_log=False)
