"""
# extract_sources_check

Holds no DAG: it fails to import, naming the file and the key at fault, when a source config in
`dags/config/sources/` cannot become an extraction DAG, so Airflow's import errors show it (the Airflow safe-mode
parser reads this file because it names Airflow and DAGs). It is a file of its own
because Airflow hides every DAG of a file with an import error: `extract_sources.py` keeps generating the DAGs of the
good source configs. The error says which file, which key, and what to do (docs/sources.md).
"""

from medalflow.extract.dags import raise_source_config_errors

raise_source_config_errors()
