"""Cosmos wiring: the dbt project rendered as one Airflow task per model, grouped by layer folder.

Cosmos reads the pre-built manifest.json (no dbt call while the DAG file is parsed) and runs dbt from its own
virtualenv as a subprocess, as on MWAA. Each model's tests run right after it, in the same task group.
"""

from __future__ import annotations

from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from medalflow.intervals import END_KEY, START_KEY
from medalflow.settings import Settings, dbt_environment, get_settings

RESOLVE_TASK_ID = "resolve_data_interval"
# dbt receives the interval resolved at run time as environment variables (templated: Cosmos renders each task's
# env), read by the dbt_project's data_interval macros. Not --vars: a new value of --vars invalidates dbt's partial
# parse, so every task would pay for a full re-parse of the project.
DBT_INTERVAL_ENVIRONMENT = {
    f"MEDALFLOW_{key.upper()}": "{{ ti.xcom_pull(task_ids='" + RESOLVE_TASK_ID + "')['" + key + "'] }}"
    for key in (START_KEY, END_KEY)
}


def project_config(settings: Settings) -> ProjectConfig:
    return ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=settings.manifest_path,
        project_name="medalflow",
        env_vars={**dbt_environment(settings), **DBT_INTERVAL_ENVIRONMENT},
        install_dbt_deps=False,
    )


def profile_config(settings: Settings) -> ProfileConfig:
    return ProfileConfig(
        profile_name="medalflow",
        target_name=settings.dbt_target,
        profiles_yml_filepath=settings.dbt_profiles_dir / "profiles.yml",
    )


def execution_config(settings: Settings) -> ExecutionConfig:
    return ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL,
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=settings.dbt_executable,
    )


def render_config(settings: Settings) -> RenderConfig:
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.AFTER_EACH,
        group_nodes_by_folder=True,
        # A test over several models (e.g. gold reconciling with silver) runs after all of them, not after one.
        should_detach_multiple_parents_tests=True,
    )


def medallion_task_group(group_id: str = "dbt", operator_args: dict[str, Any] | None = None) -> DbtTaskGroup:
    """The bronze -> silver -> gold models of the dbt project, one task per model, tests after each."""
    settings = get_settings()
    return DbtTaskGroup(
        group_id=group_id,
        project_config=project_config(settings),
        profile_config=profile_config(settings),
        execution_config=execution_config(settings),
        render_config=render_config(settings),
        operator_args=operator_args or {},
    )
