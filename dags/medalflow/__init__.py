"""medalflow: shared code for the lakehouse DAGs (extraction, lake, dbt/Cosmos wiring, demo sources).

Lives in the DAGs folder so MWAA puts it on the path; uniquely named so it never collides with another project's
`utils` there. DAG files import from it and only declare.
"""
