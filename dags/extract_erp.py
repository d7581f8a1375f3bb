"""
# extract_erp

Daily change data capture from the importer's **ERP** database into the lake's raw zone.

* **Schedule**: 00:00 UTC; the data interval is the previous day, `[D-1, D)`.
* **Source**: the `medalflow_erp` Airflow connection (PostgreSQL, or SQLite in the embedded demo); the entities and
  their declared columns are in `dags/config/sources/erp.yml`.
* **Output**: `raw/erp/<entity>/ingestion_date=<D-1>/part-00000.parquet`, one Asset per entity, with the CDC
  operation (`_op`: I/U/D) and ingestion metadata on every row. Rerunning a day replaces exactly that day's files.
"""

from airflow.sdk import DAG

from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE, daily_previous_day
from medalflow.extract.config import load_source_group
from medalflow.extract.tasks import sql_extraction_tasks

with DAG(
    dag_id="extract_erp",
    schedule=daily_previous_day(),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["extract", "erp", "raw"],
    doc_md=__doc__,
) as dag:
    sql_extraction_tasks(load_source_group("erp"))

if __name__ == "__main__":
    dag.test()
