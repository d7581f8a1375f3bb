"""Grafana dashboards for Amazon Managed Grafana, as code (issue 14): analytic (gold), operational (MWAA's CloudWatch
metrics and the observability tables) and cost (Athena bytes and dollars per run and per model).

Built with Grafana Labs' grafana-foundation-sdk (``dashboards.py``), their SQL in Athena's dialect (``queries.py``), and
published through Grafana's HTTP API by ``make dashboards`` (``publish.py``). A laptop tool: nothing here runs on MWAA.
"""
