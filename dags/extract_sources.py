"""
# extract_sources

One Airflow extraction DAG per source config in `dags/config/sources/*.yml` (or in the folder
`MEDALFLOW_SOURCES_DIR` names):
`extract_erp`, `extract_partner_api`, `extract_forecast`, `extract_file_drops` and any source added as a YAML file.
Each DAG's schedule, owner, tags, retries and documentation come from its file's `dag:` section and descriptions
(docs/sources.md); the logic is in `medalflow.extract.dags`. A file that cannot become a DAG is reported by
`extract_sources_check.py` as an import error, while the other sources' DAGs keep running.
"""

from medalflow.extract.dags import build_extraction_dags

globals().update(build_extraction_dags())
