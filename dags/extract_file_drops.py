"""
# extract_file_drops

Daily landing of the freight partners' **file drops** from the lake's inbox into its raw zone.

* **Schedule**: 00:00 UTC; the data interval is the previous day, `[D-1, D)`.
* **Source**: `<lake>/inbox/<partner>/shipments/<D-1>/` (CSV from `oceanic`, Parquet from `skyfreight`); partners,
  formats and declared columns are in `dags/config/sources/files.yml`. Each partner drops a file every day, so a
  missing one fails the task (and Airflow retries later). The originals are never changed nor deleted.
* **Output**: `raw/files/shipments/ingestion_date=<D-1>/<partner>-<original name>.parquet` with `partner` and
  `_file` (the original's URL), one Asset, `_op = 'U'`. Rows that do not fit go to
  `quarantine/files/shipments/ingestion_date=<D-1>/<run>.jsonl` naming file and line.
"""

from airflow.sdk import DAG

from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE, daily_previous_day
from medalflow.extract.config import load_source_group
from medalflow.extract.tasks import file_extraction_tasks

with DAG(
    dag_id="extract_file_drops",
    schedule=daily_previous_day(),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["extract", "files", "raw"],
    doc_md=__doc__,
) as dag:
    file_extraction_tasks(load_source_group("files"))

if __name__ == "__main__":
    dag.test()
