"""Extraction failures say which source, entity, connection and config failed and what to fix, keep the original
error as their cause, and never carry a credential."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import BaseHook

from medalflow.extract.tasks import ExtractionError, explain_failures, redact

SHOP = """\
source: shop
kind: sql
conn_id: shop_db
description: The web shop's database.
entities:
  orders:
    mode: snapshot
    key: order_id
    columns:
      order_id: bigint
"""
PASSWORD = "s3cr3t-Pa55"


@pytest.fixture
def sources(tmp_path, monkeypatch):
    (tmp_path / "shop.yml").write_text(SHOP)
    monkeypatch.setenv("MEDALFLOW_SOURCES_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_SHOP_DB", raising=False)
    return tmp_path


def test_a_missing_connection_says_which_variable_or_secret_to_create(sources):
    @explain_failures
    def extract(group_name: str, entity_name: str) -> dict:
        BaseHook.get_connection("shop_db")
        return {}

    with pytest.raises(ExtractionError) as raised:
        extract("shop", "orders")
    message = str(raised.value)
    assert message.splitlines() == [
        f"source 'shop', entity 'orders', connection shop_db, config {sources / 'shop.yml'}: "
        "AirflowNotFoundException: The conn_id `shop_db` isn't defined",
        "What to do: the Airflow connection 'shop_db' does not exist: create it, locally as the environment variable "
        "AIRFLOW_CONN_SHOP_DB (a JSON value), on MWAA as the Secrets Manager secret "
        "medalflow/<env>/connections/shop_db (a JSON value); the format of each kind is in "
        f"docs/sources.md#connections; on MWAA only ids matching ^medalflow_ are looked up, so rename the connection "
        f"(conn_id in {sources / 'shop.yml'})",
    ]
    assert type(raised.value.__cause__).__name__ == "AirflowNotFoundException"


def test_a_failure_never_echoes_the_connection_password(sources, monkeypatch):
    connection = {"conn_type": "postgres", "host": "db", "login": "app", "password": PASSWORD, "schema": "shop"}
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_DB", json.dumps(connection))

    @explain_failures
    def extract(group_name: str, entity_name: str) -> dict:
        password = BaseHook.get_connection("shop_db").password
        raise OSError(f"could not reach postgresql://app:{password}@db:5432/shop; auth used {password}")

    with pytest.raises(ExtractionError) as raised:
        extract("shop", "orders")
    message = str(raised.value)
    assert PASSWORD not in message
    assert "OSError: could not reach postgresql://app:***@db:5432/shop; auth used ***" in message
    assert "What to do: see the cause below" in message
    assert PASSWORD in str(raised.value.__cause__)  # the cause is kept as it was (Airflow masks it in the log)


@pytest.mark.parametrize(
    ("error_class", "advice"),
    [
        ("TooManyBadRecordsError", "read the rejected records in quarantine/shop/orders/"),
        ("SchemaError", "the source no longer delivers what"),
        ("FileDropError", "have the partner drop the file, or set require_daily_file: false for 'orders'"),
        ("SourceConnectionError", "check that the source is up and that the connection 'shop_db' has the right host"),
    ],
)
def test_each_kind_of_failure_says_what_to_fix(sources, error_class, advice):
    failure = type(error_class, (Exception,), {})

    @explain_failures
    def extract(group_name: str, entity_name: str) -> dict:
        raise failure("it went wrong")

    with pytest.raises(ExtractionError, match=f"{error_class}: it went wrong\nWhat to do: {advice}"):
        extract("shop", "orders")


def test_a_success_passes_the_result_through(sources):
    assert explain_failures(lambda group, entity: {"rows": 3, "source": group})("shop", "orders") == {
        "rows": 3,
        "source": "shop",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mysql://root:pw@127.0.0.1:3306/erp", "mysql://root:***@127.0.0.1:3306/erp"),
        ("dsn host=db password=hunter2 user=x", "dsn host=db password=*** user=x"),
        ("{'api_key': 'abc123'}", "{'api_key': ***}"),
        ("no secret here: http://host/path", "no secret here: http://host/path"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("name", ["AirflowSkipException", "AirflowTaskTimeout", "AirflowFailException"])
def test_airflow_control_flow_passes_through(sources, name):
    """A skip, a timeout or a fail-without-retry must reach Airflow as what it is, not as a plain failure."""
    import airflow.sdk.exceptions as exceptions

    control = getattr(exceptions, name)

    @explain_failures
    def extract(group_name: str, entity_name: str) -> dict:
        raise control("stop here")

    with pytest.raises(control, match="stop here"):
        extract("shop", "orders")
