"""
# maintenance

Daily upkeep of the lakehouse, away from the medallion's runs (03:00 UTC).

* **dbt docs**: generated and published to the lake (`<lake>/_docs/dbt`, S3 on AWS), where the Airflow UI serves
  them under **Browse -> dbt docs**.
* **Source freshness**: `dbt source freshness` against each source's `warn_after` / `error_after`; a stale source
  fails its task and the failure notification names it.
* **Iceberg upkeep** (Athena target, Sundays): `OPTIMIZE ... REWRITE DATA USING BIN_PACK` then `VACUUM` on every
  Iceberg table dbt builds; skipped on other days and other targets.

On DuckDB every dbt task takes the warehouse's one-writer pool, so maintenance waits for a running medallion build.
"""

from airflow.sdk import DAG

from medalflow.dag_defaults import DEFAULT_ARGS, START_DATE
from medalflow.maintenance_tasks import check_freshness, optimize_and_vacuum_iceberg, publish_dbt_docs
from medalflow.medallion import dbt_pool
from medalflow.settings import get_settings

with DAG(
    dag_id="maintenance",
    description="Daily upkeep: dbt docs published, source freshness checked, Iceberg tables compacted on Sundays",
    schedule="0 3 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "pool": dbt_pool(get_settings()) or "default_pool"},
    tags=["maintenance", "dbt", "docs", "iceberg"],
    doc_md=__doc__,
) as dag:
    publish_dbt_docs() >> check_freshness()
    optimize_and_vacuum_iceberg()

if __name__ == "__main__":
    dag.test()
