"""Test settings shared by every tier.

Airflow reads its configuration when first imported, which happens while pytest collects the test modules, so the
environment is set here at import time: an Airflow home of the session's own and, for the metadata database, a
PostgreSQL database of the session's own on 127.0.0.1:5432 (created lazily by the `airflow_database` fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_servers import moto_server

PROJECT_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_HOST = os.getenv("MEDALFLOW_TEST_POSTGRES_HOST", "127.0.0.1")
POSTGRES_ADMIN_URL = f"postgresql+psycopg2://postgres@{POSTGRES_HOST}:5432/postgres"
SESSION_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
AIRFLOW_DATABASE = f"medalflow_test_airflow_{SESSION_ID}"
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="medalflow-airflow-home-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + AIRFLOW_DATABASE,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
        # Fail fast: dag.test() honours retry delays.
        "MEDALFLOW_TASK_RETRIES": "0",
        "MEDALFLOW_DBT_EXECUTABLE": os.getenv("MEDALFLOW_DBT_EXECUTABLE", str(PROJECT_ROOT / ".venv/dbt/bin/dbt")),
    }
)


def _admin_execute(*statements: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_database():
    """Factory: a fresh, uniquely named PostgreSQL database; returns its SQLAlchemy URL. Dropped at session end."""
    created: list[str] = []

    def create(purpose: str) -> str:
        name = f"medalflow_test_{purpose}_{SESSION_ID}"
        _admin_execute(f'drop database if exists "{name}" with (force)', f'create database "{name}"')
        created.append(name)
        return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    yield create
    for name in created:
        _admin_execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def airflow_database():
    """Airflow's metadata database on PostgreSQL, migrated once for the session."""
    _admin_execute(
        f'drop database if exists "{AIRFLOW_DATABASE}" with (force)', f'create database "{AIRFLOW_DATABASE}"'
    )
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    yield os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    from airflow import settings

    # Airflow's own connections first: dropped under them, they fail at interpreter exit, when Airflow closes them.
    settings.dispose_orm(do_log=False)
    _admin_execute(f'drop database if exists "{AIRFLOW_DATABASE}" with (force)')


@pytest.fixture
def fresh_asset_registry(airflow_database):
    """Forget which Assets are active, so this test's DAG runs activate theirs.

    Each test points the lake at its own folder, so the same Asset name (raw.erp.orders) gets a new URI per test.
    Airflow activates an Asset only when neither its name nor its URI is taken by an active one; in a deployment the
    scheduler re-activates Assets after a change of URI, but dag.test() runs no scheduler.
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(airflow_database)
    with engine.begin() as connection:
        connection.execute(text("delete from asset_active"))
    engine.dispose()
    return airflow_database


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto server for the whole session, reached over HTTP as AWS would be; its URL.

    Shared rather than started per module (each start costs seconds), which holds because every test keeps to
    buckets and Glue databases of its own: no test may rely on moto being empty.
    """
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture
def moto_s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's moto server, with this test's AWS settings pointing there; its name."""
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket
