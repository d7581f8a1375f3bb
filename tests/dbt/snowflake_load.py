"""Loads a raw lake into the raw tables of a (fake) Snowflake: what COPY INTO from an external stage does in production.

Run by the Snowflake tests with dbt's Python (where the Snowflake connector lives):

* ``python snowflake_load.py load <host> <port> <database> <lake folder> <source/entity>...``: each raw partition's
  rows are inserted with their ``ingestion_date`` (from the partition path) into the raw tables, which exist
  (``dbt run-operation create_raw_tables``);
* ``python snowflake_load.py query <host> <port> <database> <sql>``: prints the rows as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import snowflake.connector


def connect(host: str, port: str, database: str):
    return snowflake.connector.connect(
        user="fake", password="snow", account="fakesnow", host=host, port=int(port), protocol="http",
        database=database,
    )  # fmt: skip


def load(host: str, port: str, database: str, lake: str, entities: list[str]) -> None:
    connection = connect(host, port, database)
    cursor = connection.cursor()
    for entity in entities:
        source, table = entity.split("/")
        for path in sorted((Path(lake) / "raw" / source / table).glob("ingestion_date=*/*.parquet")):
            rows = pq.read_table(path).to_pylist()
            if not rows:
                continue
            ingestion_date = path.parent.name.split("=", 1)[1]
            columns = [*rows[0], "ingestion_date"]
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"insert into {database}.raw_{source}.{table} ({', '.join(columns)}) values ({placeholders})",
                [[*row.values(), ingestion_date] for row in rows],
            )
    connection.close()


def query(host: str, port: str, database: str, sql: str) -> None:
    connection = connect(host, port, database)
    print(json.dumps(connection.cursor().execute(sql).fetchall(), default=str))
    connection.close()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(*sys.argv[2:6], sys.argv[6:])
    else:
        query(*sys.argv[2:6])
