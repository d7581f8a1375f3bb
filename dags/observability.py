"""
# observability

Pipeline facts in the warehouse: what every run already keeps in the lake, as dbt models (issue 14).

* **Landing**: dbt's `run_results.json` and `manifest.json` of every DAG run (`<lake>/_artifacts/dbt/`), the
  maintenance DAG's freshness results (`sources.json`) and the extraction tasks' run records
  (`<lake>/_artifacts/extract/`) become Parquet under `<lake>/raw/_ops/<dataset>/`; only runs whose artifacts changed
  since the last landing are read, and a run landed again replaces its files.
* **Build**: `dbt build --select tag:observability`: `obs_dbt_invocations`, `obs_model_runs` (status, duration, rows,
  Athena bytes scanned and cost), `obs_test_results`, `obs_extraction_runs`, `obs_source_freshness`, merged on their
  keys (a rerun changes nothing).
* **Publication**: every observability model and the gold monthly tables as Parquet under
  `<lake>/_published/<model>/`, which the Airflow UI's medalflow page reads.
* **Schedule**: hourly (minute 15). A run with nothing new to record skips its build; its own runs are recorded with
  the next one that has.

On DuckDB the build and the publication take the warehouse's one-writer pool, as every dbt task does.
"""

from airflow.sdk import DAG

from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE
from medalflow.medallion import dbt_pool
from medalflow.observability.tasks import (
    build_observability_models,
    land_run_artifacts,
    publish_observability_tables,
)
from medalflow.settings import get_settings

with DAG(
    dag_id="observability",
    description="Pipeline facts: the runs' dbt artifacts and extraction records landed, modelled and published",
    schedule="15 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "pool": dbt_pool(get_settings()) or "default_pool"},
    tags=["observability", "dbt"],
    doc_md=__doc__,
) as dag:
    land_run_artifacts.override(pool="default_pool")() >> build_observability_models() >> publish_observability_tables()

if __name__ == "__main__":
    dag.test()
