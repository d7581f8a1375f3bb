"""Failure notifications: what the report says, and that each channel really delivers it (local servers, moto)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from medalflow import notifications
from medalflow.notifications import FailureNotifier, failure_report

LOG_URL = "http://airflow.example/dags/medallion/runs/manual__1/tasks/dbt.models.gold.agg_monthly_orders.run"


def failed_context(unique_id: str | None = "model.medalflow.agg_monthly_orders") -> dict:
    task = SimpleNamespace(extra_context={"dbt_node_config": {"unique_id": unique_id}} if unique_id else {})
    ti = SimpleNamespace(
        dag_id="medallion",
        task_id="dbt.models.gold.agg_monthly_orders.run",
        run_id="manual__1",
        try_number=3,
        log_url=LOG_URL,
        task=task,
    )
    return {"ti": ti, "task": task, "run_id": "manual__1", "exception": RuntimeError("Database Error in model x")}


def test_report_names_dag_task_model_run_and_link():
    report = failure_report(failed_context())
    assert report.subject == "[medalflow] medallion: dbt model model.medalflow.agg_monthly_orders failed"
    for expected in ("medallion", "dbt.models.gold.agg_monthly_orders.run (try 3)", "manual__1", LOG_URL):
        assert expected in report.text
    assert "RuntimeError: Database Error in model x" in report.text


def test_report_of_a_task_that_runs_no_single_model():
    report = failure_report(failed_context(unique_id=None))
    assert report.model is None
    assert report.subject == "[medalflow] medallion: task dbt.models.gold.agg_monthly_orders.run failed"


def test_channel_defaults_to_the_log_and_rejects_unknown_names(monkeypatch):
    monkeypatch.delenv("MEDALFLOW_NOTIFIER", raising=False)
    assert notifications.channel() == "log"
    monkeypatch.setenv("MEDALFLOW_NOTIFIER", "pager")
    with pytest.raises(ValueError, match="pager"):
        notifications.channel()


def test_log_notifier_writes_the_report(monkeypatch, caplog):
    monkeypatch.setenv("MEDALFLOW_NOTIFIER", "log")
    with caplog.at_level(logging.ERROR, logger="medalflow.notifications"):
        FailureNotifier().notify(failed_context())
    assert LOG_URL in caplog.text
    assert "model.medalflow.agg_monthly_orders" in caplog.text


def test_an_undeliverable_notification_never_raises(monkeypatch, caplog):
    monkeypatch.setenv("MEDALFLOW_NOTIFIER", "sns")
    monkeypatch.delenv("MEDALFLOW_SNS_TOPIC_ARN", raising=False)
    with caplog.at_level(logging.ERROR, logger="medalflow.notifications"):
        FailureNotifier().notify(failed_context())
    assert "could not be sent" in caplog.text
    assert "MEDALFLOW_SNS_TOPIC_ARN" in caplog.text


def test_slack_webhook_receives_the_report(monkeypatch):
    received: list[dict] = []

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("MEDALFLOW_NOTIFIER", "slack")
        monkeypatch.setenv(
            "AIRFLOW_CONN_MEDALFLOW_SLACK",
            json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "schema": "http"}),
        )
        notifications.send_slack(failure_report(failed_context()), failed_context())
    finally:
        server.shutdown()
    assert len(received) == 1
    assert LOG_URL in received[0]["text"]
    assert "model.medalflow.agg_monthly_orders" in received[0]["text"]


def test_sns_topic_receives_the_report(monkeypatch):
    import boto3
    from moto import mock_aws
    from moto.sns.models import sns_backends

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}})
    )
    with mock_aws():
        topic = boto3.client("sns").create_topic(Name="medalflow-alerts")["TopicArn"]
        monkeypatch.setenv("MEDALFLOW_SNS_TOPIC_ARN", topic)
        notifications.send_sns(failure_report(failed_context()), failed_context())
        sent = sns_backends["123456789012"]["us-east-1"].topics[topic].sent_notifications
    assert len(sent) == 1
    _, message, subject, *_ = sent[0]
    assert subject.startswith("[medalflow] medallion")
    assert len(subject) <= 100
    assert LOG_URL in message
