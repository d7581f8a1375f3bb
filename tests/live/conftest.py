"""The running Airflow the live tests drive (started once per session; see live_medalflow.py)."""

from __future__ import annotations

import live_medalflow
import pytest


@pytest.fixture(scope="session")
def live(postgres_database):
    yield live_medalflow.acquire(postgres_database)
    live_medalflow.release()
