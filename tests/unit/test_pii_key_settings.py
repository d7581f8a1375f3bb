"""Where dbt's PII key comes from (medalflow.settings): the environment, the Airflow connection, or the demo key."""

from __future__ import annotations

import dataclasses

import pytest

from medalflow.settings import PII_KEY_VARIABLE, dbt_environment, get_settings, pii_key_environment


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv(PII_KEY_VARIABLE, raising=False)
    monkeypatch.delenv("MEDALFLOW_PII_ALLOW_DEMO_KEY", raising=False)


def settings_for(target: str, lake_uri: str):
    return dataclasses.replace(get_settings(), dbt_target=target, lake_uri=lake_uri)


@pytest.mark.usefixtures("no_key")
def test_the_laptop_demo_may_use_the_demo_key():
    settings = settings_for("duckdb", "/home/me/medalflow/.local/lake")
    assert dbt_environment(settings)["MEDALFLOW_PII_ALLOW_DEMO_KEY"] == "true"
    assert pii_key_environment(settings) == {}


@pytest.mark.parametrize(("target", "lake"), [("athena", "s3://lake/dev"), ("snowflake", "s3://lake/dev"),
                                              ("duckdb", "s3://lake/dev")])  # fmt: skip
@pytest.mark.usefixtures("no_key")
def test_elsewhere_the_key_comes_from_the_connection_when_the_task_renders(target, lake):
    settings = settings_for(target, lake)
    assert dbt_environment(settings)["MEDALFLOW_PII_ALLOW_DEMO_KEY"] == "false"
    assert pii_key_environment(settings) == {PII_KEY_VARIABLE: "{{ conn.medalflow_pii_key.password }}"}


@pytest.mark.usefixtures("no_key")
def test_a_key_in_the_environment_or_an_explicit_switch_wins(monkeypatch):
    settings = settings_for("athena", "s3://lake/dev")
    monkeypatch.setenv("MEDALFLOW_PII_ALLOW_DEMO_KEY", "true")
    assert dbt_environment(settings)["MEDALFLOW_PII_ALLOW_DEMO_KEY"] == "true"
    monkeypatch.setenv("MEDALFLOW_PII_ALLOW_DEMO_KEY", "false")
    monkeypatch.setenv(PII_KEY_VARIABLE, "from-the-environment")
    assert pii_key_environment(settings) == {}
    assert "from-the-environment" not in dbt_environment(settings).values(), "never copied into dbt's variables"
    local = settings_for("duckdb", "/tmp/lake")
    monkeypatch.delenv(PII_KEY_VARIABLE)
    assert dbt_environment(local)["MEDALFLOW_PII_ALLOW_DEMO_KEY"] == "false"
