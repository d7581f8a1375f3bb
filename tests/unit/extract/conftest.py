"""Fixtures of the extraction tests: the demo world, the partner API over real HTTP, and S3 as a moto server.

The partner API and the moto server (the root conftest's ``moto_endpoint``) start once per session; each test gets a
clean fault queue and fresh request statistics. S3 is moto in server mode (a separate process, reached over HTTP
through ``AWS_ENDPOINT_URL`` and dummy credentials), so the lake on ``s3://`` goes through s3fs and botocore exactly
as it would against AWS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
import requests

from medalflow_demo.partner_api import DEFAULT_PASSWORD, DEFAULT_USERNAME, serve_in_background
from medalflow_demo.world import DemoConfig, World, generate

WORLD_START, WORLD_END = date(2026, 1, 1), date(2026, 2, 1)


@pytest.fixture(scope="session")
def world() -> World:
    return generate(DemoConfig(seed=42, scale=1.0, start_date=WORLD_START, end_date=WORLD_END))


class PartnerApi:
    """The running demo partner API and its test hooks."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.username, self.password = DEFAULT_USERNAME, DEFAULT_PASSWORD

    def faults(self, *rules: dict) -> None:
        requests.post(f"{self.base_url}/admin/faults", json=list(rules), timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.delete(f"{self.base_url}/admin/faults", timeout=5).raise_for_status()
        requests.delete(f"{self.base_url}/admin/stats", timeout=5).raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.base_url}/admin/stats", timeout=5).json()


@pytest.fixture(scope="session")
def partner_server(world: World) -> Iterator[PartnerApi]:
    base_url, stop = serve_in_background(world=world)
    yield PartnerApi(base_url)
    stop()


@pytest.fixture
def partner_api(partner_server: PartnerApi) -> Iterator[PartnerApi]:
    partner_server.reset()
    yield partner_server
    partner_server.reset()


@pytest.fixture
def s3_lake_uri(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``s3://bucket/prefix`` lake on the moto server, reached through the standard AWS variables."""
    import boto3
    import fsspec

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    fsspec.filesystem("s3").invalidate_cache()
    return f"s3://{bucket}/medalflow"
