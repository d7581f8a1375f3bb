"""The browser tests drive the same running Airflow as the live tests (tests/live/live_medalflow.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))

import live_medalflow


@pytest.fixture(scope="session")
def live(postgres_database):
    yield live_medalflow.acquire(postgres_database)
    live_medalflow.release()
