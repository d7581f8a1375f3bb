"""Failure notifications: which DAG, task and dbt model failed, in which run, and a link to its log.

One notifier, :class:`FailureNotifier`, is every task's ``on_failure_callback``; where the message goes is chosen when
a task fails (not when the DAG file is parsed), by ``MEDALFLOW_NOTIFIER``:

* ``log`` (default): an ERROR line in the task's log, nothing leaves the machine;
* ``sns``: Amazon SNS, topic ``MEDALFLOW_SNS_TOPIC_ARN``, through the ``aws_default`` connection;
* ``slack``: a Slack incoming webhook, the ``medalflow_slack`` HTTP connection (``MEDALFLOW_SLACK_CONN_ID``) whose
  host is the webhook URL;
* ``email``: SMTP to ``MEDALFLOW_ALERT_EMAILS`` (comma-separated), through the ``smtp_default`` connection.

A notifier that cannot deliver logs why and the report itself: a broken alert channel must never hide the failure.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseNotifier

from medalflow.settings import AWS_CONN_ID

log = logging.getLogger(__name__)

NOTIFIER_VARIABLE = "MEDALFLOW_NOTIFIER"
CHANNELS = ("log", "sns", "slack", "email")
SNS_SUBJECT_LIMIT = 100  # SNS rejects longer subjects


@dataclass(frozen=True)
class FailureReport:
    dag_id: str
    task_id: str
    run_id: str
    try_number: int | None
    model: str | None
    url: str | None
    error: str | None

    @property
    def subject(self) -> str:
        what = f"dbt model {self.model}" if self.model else f"task {self.task_id}"
        return f"[medalflow] {self.dag_id}: {what} failed"

    @property
    def text(self) -> str:
        lines = [
            self.subject,
            f"DAG:   {self.dag_id}",
            f"Task:  {self.task_id} (try {self.try_number})",
            f"Model: {self.model or '-'}",
            f"Run:   {self.run_id}",
            f"Log:   {self.url or '-'}",
        ]
        if self.error:
            lines.append(f"Error: {self.error}")
        return "\n".join(lines)


def dbt_model_of(task: Any) -> str | None:
    """The dbt node a Cosmos task runs or watches (``model.medalflow.slv_orders``); None for other tasks.

    Cosmos's producer runs the whole project: its failure is the build's, not one model's.
    """
    extra = getattr(task, "extra_context", None) or {}
    node = extra.get("dbt_node_config") or {}
    return node.get("unique_id")


def failure_report(context: Any) -> FailureReport:
    ti = context["ti"]
    task = context.get("task") or getattr(ti, "task", None)
    exception = context.get("exception")
    try:
        url = ti.log_url
    except Exception:  # a context without an API base URL still deserves its alert
        url = None
    return FailureReport(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=context.get("run_id") or ti.run_id,
        try_number=getattr(ti, "try_number", None),
        model=dbt_model_of(task),
        url=url,
        error=f"{type(exception).__name__}: {exception}"[:1000] if exception else None,
    )


def channel() -> str:
    name = os.getenv(NOTIFIER_VARIABLE, "log").strip().lower() or "log"
    if name not in CHANNELS:
        raise ValueError(f"{NOTIFIER_VARIABLE}={name!r}: expected one of {CHANNELS}")
    return name


def send_sns(report: FailureReport, context: Any) -> None:
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    topic = os.getenv("MEDALFLOW_SNS_TOPIC_ARN")
    if not topic:
        raise ValueError("MEDALFLOW_SNS_TOPIC_ARN is not set")
    SnsNotifier(
        aws_conn_id=AWS_CONN_ID, target_arn=topic, subject=report.subject[:SNS_SUBJECT_LIMIT], message=report.text
    ).notify(context)


def send_slack(report: FailureReport, context: Any) -> None:
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=os.getenv("MEDALFLOW_SLACK_CONN_ID", "medalflow_slack"))
    hook.run(endpoint="", json={"text": report.text})


def send_email(report: FailureReport, context: Any) -> None:
    import html

    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    recipients = [address.strip() for address in os.getenv("MEDALFLOW_ALERT_EMAILS", "").split(",") if address.strip()]
    if not recipients:
        raise ValueError("MEDALFLOW_ALERT_EMAILS is not set")
    SmtpNotifier(to=recipients, subject=report.subject, html_content=f"<pre>{html.escape(report.text)}</pre>").notify(
        context
    )


SENDERS = {"sns": send_sns, "slack": send_slack, "email": send_email}


class FailureNotifier(BaseNotifier):
    """``on_failure_callback`` for every medalflow task: the report goes to the configured channel and the log."""

    template_fields = ()

    def notify(self, context: Any) -> None:
        report = failure_report(context)
        log.error("%s", report.text)
        try:
            name = channel()
            if name in SENDERS:
                SENDERS[name](report, context)
        except Exception:
            log.exception("the failure notification could not be sent; the report is above")
