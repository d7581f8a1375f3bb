"""Pipeline facts in the warehouse (issue 14): what the runs already keep, landed as raw datasets for dbt.

* :mod:`.records`: each extraction task attempt writes a small JSON record to the lake (rows landed, quarantined,
  status), failed attempts included.
* :mod:`.landing`: the runs' artifacts (dbt's run_results.json + manifest.json per run, the freshness sources.json,
  the extraction records) flattened into Parquet under ``<lake>/raw/_ops/<dataset>/ingestion_date=D/``, one file per
  DAG run, so re-landing a run replaces it. dbt reads them as the ``ops`` source (models/observability).
* :mod:`.publication`: the observability models and the gold monthly tables published as Parquet under
  ``<lake>/_published/<model>/`` for readers outside the warehouse (the Airflow UI page).
* :mod:`.tasks`: the ``observability`` DAG's tasks.
"""
