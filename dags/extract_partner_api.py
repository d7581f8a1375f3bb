"""
# extract_partner_api

Daily extraction of the logistics and finance **partner's REST API** into the lake's raw zone.

* **Schedule**: 00:00 UTC; the data interval is the previous day, `[D-1, D)`.
* **Source**: the `medalflow_partner_api` Airflow connection (conn_type http: host, port, schema, and the login and
  password the API's `POST /api/v1/users/login` exchanges for a bearer token); endpoints, paging, retries and the
  declared columns are in `dags/config/sources/partner.yml`.
* **Tasks**: payments, FX rates and shipments, in parallel (the weekly forecast is `extract_forecast`). Each logs in,
  pages to the end, retries 5xx and timeouts with backoff, honours `Retry-After`, refreshes an expired token.
* **Output**: `raw/partner/<entity>/ingestion_date=<D-1>/part-NNNNN.parquet`, one Asset per entity, `_op = 'U'`.
  Records that do not fit their declared type go to `quarantine/partner/<entity>/ingestion_date=<D-1>/<run>.jsonl`;
  more than `max_bad_ratio` of them fails the task. Rerunning a day replaces exactly that day's files.
"""

from airflow.sdk import DAG

from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE, daily_previous_day
from medalflow.extract.config import load_source_group
from medalflow.extract.tasks import rest_extraction_tasks

with DAG(
    dag_id="extract_partner_api",
    schedule=daily_previous_day(),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["extract", "partner", "rest", "raw"],
    doc_md=__doc__,
) as dag:
    rest_extraction_tasks(load_source_group("partner"))

if __name__ == "__main__":
    dag.test()
