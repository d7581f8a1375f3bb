"""
# extract_forecast

Weekly snapshot of the partner's **forecast API** (hierarchical and slow to compute) into the lake's raw zone.

* **Schedule**: Sundays 02:00 UTC; the data interval is the week before, and `ingestion_date` is its start.
* **Source**: the `medalflow_partner_api` Airflow connection (same server and credentials as `extract_partner_api`);
  the endpoints and declared columns are in `dags/config/sources/forecast.yml`.
* **Tasks**: `extract_projects` first; then, in parallel, each project's monthly baseline and scenarios
  (`extract_baselines`, `extract_scenarios`), for every project in that run's projects partition.
* **Output**: `raw/forecast/{projects,baselines,scenarios}/ingestion_date=<interval start>/`, one Asset each,
  `_op = 'U'` (a full snapshot each week).
"""

from airflow.sdk import DAG

from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE, weekly_sunday_0200
from medalflow.extract.config import load_source_group
from medalflow.extract.tasks import rest_extraction_tasks

with DAG(
    dag_id="extract_forecast",
    schedule=weekly_sunday_0200(),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["extract", "forecast", "rest", "raw"],
    doc_md=__doc__,
) as dag:
    rest_extraction_tasks(load_source_group("forecast"))

if __name__ == "__main__":
    dag.test()
