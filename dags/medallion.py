"""
# medallion

dbt builds the lakehouse **bronze -> silver -> gold**, one Airflow task per dbt model (rendered by Cosmos from the
pre-built `manifest.json`), with each model's tests right after it.

* **Schedule**: when the daily raw datasets have landed (Airflow Assets produced by the extraction DAGs).
* **Interval**: `resolve_data_interval` picks the interval of the triggering data (or `data_interval_start` /
  `data_interval_end` from the run's conf when triggered by hand) and passes it to dbt as vars.
* **Warehouse**: `MEDALFLOW_DBT_TARGET` (duckdb by default; athena, snowflake).
"""

from functools import reduce
from operator import and_

from airflow.sdk import DAG

from medalflow.assets import raw_asset
from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE
from medalflow.extract.config import load_source_group
from medalflow.medallion import medallion_task_group
from medalflow.tasks import resolve_data_interval

ERP = load_source_group("erp")

with DAG(
    dag_id="medallion",
    schedule=reduce(and_, [raw_asset(ERP.name, entity) for entity in ERP.entities]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["dbt", "bronze", "silver", "gold"],
    doc_md=__doc__,
) as dag:
    resolve_data_interval() >> medallion_task_group()

if __name__ == "__main__":
    dag.test()
