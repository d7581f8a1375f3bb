"""
# medallion

dbt builds the lakehouse **bronze -> silver -> gold**, one Airflow task per dbt model (rendered by Cosmos from the
pre-built `manifest.json`), with each model's tests right after it.

* **Schedule**: when every daily raw dataset has landed (the Assets of the ERP, partner API and file-drop
  extractions; `MEDALFLOW_MEDALLION_SOURCES`). The weekly forecast is read as last landed, never waited for.
* **Interval**: the union of the triggering asset events' intervals (or `data_interval_start` / `data_interval_end`
  from the run's conf when triggered by hand), passed to dbt in its environment; the producer's log states it.
* **Execution**: one `dbt build` per run (Cosmos watcher mode); each model's task reports that model's result.
  `MEDALFLOW_COSMOS_EXECUTION_MODE=local` runs one dbt process per task instead.
* **Warehouse**: `MEDALFLOW_DBT_TARGET` (duckdb by default; athena, snowflake).
* **Consumers** (DuckDB): after a dbt build that built gold, gold is copied into the consumers' read-only file,
  `<warehouse dir>/consumer/medalflow_gold.duckdb`, holding gold only (README, "Find, trace and protect data").
* **When something breaks**: failure notifications name the DAG, task, dbt model and run (`MEDALFLOW_NOTIFIER`);
  dbt's `run_results.json` and `manifest.json` are kept under `<lake>/_artifacts/dbt/medallion/<run_id>/`.
"""

from airflow.sdk import DAG

from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE
from medalflow.medallion import MEDALLION_MACROS, medallion_schedule, medallion_task_group

with DAG(
    dag_id="medallion",
    description="dbt builds bronze -> silver -> gold, one task per model, when the daily raw datasets have landed",
    schedule=medallion_schedule(),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    user_defined_macros=MEDALLION_MACROS,
    default_args=DEFAULT_ARGS,
    tags=["dbt", "bronze", "silver", "gold"],
    doc_md=__doc__,
) as dag:
    medallion_task_group()

if __name__ == "__main__":
    from medalflow.watcher import sensors_follow_producer

    sensors_follow_producer(dag.tasks)  # dag.test() runs one task at a time: the producer must come first
    dag.test()
