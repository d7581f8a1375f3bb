"""The three dashboards, built with Grafana Labs' grafana-foundation-sdk.

Every panel names its data source by a dashboard variable (``${athena}``, ``${cloudwatch}``), never by a Grafana uid or
an AWS account: the same JSON serves every Managed Grafana workspace and environment. The environment is a variable
too (``project``, ``env``), from which the Glue databases (``<project>_<env>_gold``...), the MWAA environment
(``<project>-<env>-airflow``) and the Athena workgroup (``<project>-<env>-pipeline``) follow, as infra/README.md names
them. CloudWatch queries use the data source's default region.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import athena, cloudwatch, dashboard, stat, table, text, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import athena as athena_model
from grafana_foundation_sdk.models import cloudwatch as cloudwatch_model
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption

from medalflow_dashboards import queries

ATHENA_PLUGIN = "grafana-athena-datasource"
CLOUDWATCH_PLUGIN = "cloudwatch"
# "${...}" are Grafana's template variables, interpolated by Grafana, not Python f-strings.
ATHENA = DataSourceRef(type_val=ATHENA_PLUGIN, uid="${athena}")  # ruff: ignore[missing-f-string-syntax]
CLOUDWATCH = DataSourceRef(type_val=CLOUDWATCH_PLUGIN, uid="${cloudwatch}")  # ruff: ignore[missing-f-string-syntax]
MWAA_ENVIRONMENT = "${project}-${env}-airflow"
WORKGROUP = "${project}-${env}-pipeline"
TAGS = ["medalflow"]


def _option(value: str) -> VariableOption:
    return VariableOption(selected=True, text=value, value=value)


def _variables(builder: dashboard.Dashboard, *, athena_source: bool, cloudwatch_source: bool) -> dashboard.Dashboard:
    if athena_source:
        builder = builder.with_variable(
            dashboard.DatasourceVariable("athena").label("Athena data source").type(ATHENA_PLUGIN)
        )
    if cloudwatch_source:
        builder = builder.with_variable(
            dashboard.DatasourceVariable("cloudwatch").label("CloudWatch data source").type(CLOUDWATCH_PLUGIN)
        )
    builder = builder.with_variable(
        dashboard.TextBoxVariable("project").label("Project").default_value("medalflow").current(_option("medalflow"))
    ).with_variable(
        dashboard.CustomVariable("env").label("Environment").values("dev,hom,prod").current(_option("prod"))
    )
    if athena_source:
        # Athena's Glue databases: <project>_<env>_<layer> (dbt's generate_schema_name on Athena).
        builder = builder.with_variable(
            dashboard.ConstantVariable("gold_schema").value("${project}_${env}_gold")
        ).with_variable(dashboard.ConstantVariable("observability_schema").value("${project}_${env}_observability"))
    return builder


def _sql(ref_id: str, sql: str, *, as_table: bool = False) -> athena.Dataquery:
    return (
        athena.Dataquery()
        .ref_id(ref_id)
        .datasource(ATHENA)
        .format(athena_model.FormatOptions.TABLE if as_table else athena_model.FormatOptions.TIME_SERIES)
        .raw_sql(sql.strip())
    )


def _metric(ref_id: str, namespace: str, metric: str, dimensions: dict[str, str], statistic: str, period: str):
    return (
        cloudwatch.CloudWatchMetricsQuery()
        .ref_id(ref_id)
        .datasource(CLOUDWATCH)
        .query_mode(cloudwatch_model.CloudWatchQueryMode.METRICS)
        .metric_query_type(cloudwatch_model.MetricQueryType.SEARCH)
        .metric_editor_mode(cloudwatch_model.MetricEditorMode.BUILDER)
        .region("default")
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(dimensions)
        .match_exact(True)
        .statistic(statistic)
        .period(period)
        .label(metric)
    )


def _insights(ref_id: str, sql: str):
    """A CloudWatch Metrics Insights query (code mode)."""
    return (
        cloudwatch.CloudWatchMetricsQuery()
        .ref_id(ref_id)
        .datasource(CLOUDWATCH)
        .query_mode(cloudwatch_model.CloudWatchQueryMode.METRICS)
        .metric_query_type(cloudwatch_model.MetricQueryType.QUERY)
        .metric_editor_mode(cloudwatch_model.MetricEditorMode.CODE)
        .region("default")
        .sql_expression(sql)
    )


def _series(title: str, *targets, unit: str = "short", width: int = 12, bars: bool = False) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).span(width).height(8)
    if bars:
        panel = panel.draw_style("bars").fill_opacity(80)
    for target in targets:
        panel = panel.with_target(target)
    return panel.datasource(targets[0].build().datasource)


def _table(title: str, sql: str, *, width: int = 12) -> table.Panel:
    return (
        table.Panel().title(title).span(width).height(8).datasource(ATHENA).with_target(_sql("A", sql, as_table=True))
    )


def analytic() -> dashboard.Dashboard:
    """Gold at a glance: monthly cash flow, orders, forecast against actual sales."""
    builder = (
        dashboard.Dashboard("medalflow: analytic (gold)")
        .uid("medalflow-analytic")
        .tags(TAGS)
        .time("now-2y", "now")
        .refresh("")
    )
    builder = _variables(builder, athena_source=True, cloudwatch_source=False)
    return (
        builder.with_panel(
            _series("Monthly cash flow (BRL)", _sql("A", queries.MONTHLY_CASH_FLOW), unit="currencyBRL", width=24)
        )
        .with_panel(_series("Monthly orders", _sql("A", queries.MONTHLY_ORDERS), bars=True))
        .with_panel(
            _series(
                "Forecast vs actual sales (BRL, latest snapshot)",
                _sql("A", queries.FORECAST_VS_ACTUAL),
                unit="currencyBRL",
            )
        )
    )


def operational() -> dashboard.Dashboard:
    """Is the pipeline healthy: MWAA's metrics in CloudWatch, and run history from the observability tables."""
    environment = {"Environment": MWAA_ENVIRONMENT}
    builder = (
        dashboard.Dashboard("medalflow: operational")
        .uid("medalflow-operational")
        .tags(TAGS)
        .time("now-7d", "now")
        .refresh("5m")
    )
    builder = _variables(builder, athena_source=True, cloudwatch_source=True)
    return (
        builder.with_panel(
            stat.Panel()
            .title("dbt success rate")
            .unit("percent")
            .span(6)
            .height(8)
            .datasource(ATHENA)
            .with_target(_sql("A", queries.SUCCESS_RATE, as_table=True))
        )
        .with_panel(_series("dbt runs per day", _sql("A", queries.RUNS_PER_DAY), bars=True, width=18))
        .with_panel(
            _series(
                "Failed DAG runs per DAG (CloudWatch)",
                _insights(
                    "A",
                    "SELECT COUNT(DAGDurationFailed) FROM SCHEMA(AmazonMWAA, DAG, Environment) "
                    f"WHERE Environment = '{MWAA_ENVIRONMENT}' GROUP BY DAG",
                ),
                bars=True,
            )
        )
        .with_panel(
            _series(
                "medallion run duration (CloudWatch)",
                _metric("A", "AmazonMWAA", "DAGDurationSuccess", {**environment, "DAG": "medallion"}, "Maximum", "300"),
                _metric("B", "AmazonMWAA", "DAGDurationFailed", {**environment, "DAG": "medallion"}, "Maximum", "300"),
                unit="ms",
            )
        )
        .with_panel(
            _series(
                "Scheduler heartbeats (CloudWatch)",
                _metric(
                    "A", "AmazonMWAA", "SchedulerHeartbeat", {**environment, "Function": "Scheduler"}, "Sum", "300"
                ),
                width=8,
            )
        )
        .with_panel(
            _series(
                "Queued and running tasks (CloudWatch)",
                _metric("A", "AmazonMWAA", "QueuedTasks", {**environment, "Function": "Executor"}, "Maximum", "300"),
                _metric("B", "AmazonMWAA", "RunningTasks", {**environment, "Function": "Executor"}, "Maximum", "300"),
                width=8,
            )
        )
        .with_panel(
            _series(
                "DAG parse time (CloudWatch)",
                _metric(
                    "A", "AmazonMWAA", "TotalParseTime", {**environment, "Function": "DAG Processing"}, "Maximum", "300"
                ),
                unit="s",
                width=8,
            )
        )
        .with_panel(_table("Slowest models", queries.SLOWEST_MODELS))
        .with_panel(_series("Model build time per layer per day", _sql("A", queries.MODEL_DURATION_TREND), unit="s"))
        .with_panel(_table("Failing tests", queries.FAILING_TESTS, width=24))
        .with_panel(_table("Source freshness (latest check)", queries.SOURCE_FRESHNESS))
        .with_panel(_series("Rows landed and quarantined per day", _sql("A", queries.EXTRACTION_ROWS), bars=True))
        .with_panel(_table("Recent dbt runs", queries.RECENT_RUNS, width=24))
    )


def cost() -> dashboard.Dashboard:
    """What Athena costs: bytes and dollars per day, per run and per model (dbt-athena's adapter response), and the
    workgroup's own ProcessedBytes in CloudWatch (every query, dbt's and anyone else's)."""
    builder = (
        dashboard.Dashboard("medalflow: cost (Athena)")
        .uid("medalflow-cost")
        .tags(TAGS)
        .time("now-30d", "now")
        .refresh("")
    )
    builder = _variables(builder, athena_source=True, cloudwatch_source=True)
    return (
        builder.with_panel(
            _series("dbt on Athena: cost per day", _sql("A", queries.COST_PER_DAY), unit="currencyUSD", bars=True)
        )
        .with_panel(
            _series(
                "Workgroup bytes scanned per day (CloudWatch)",
                _metric("A", "AWS/Athena", "ProcessedBytes", {"WorkGroup": WORKGROUP}, "Sum", "86400"),
                unit="bytes",
                bars=True,
            )
        )
        .with_panel(_table("Cost per model", queries.COST_PER_MODEL))
        .with_panel(_table("Most expensive runs", queries.COST_PER_RUN))
        .with_panel(
            text.Panel()
            .title("How cost is computed")
            .span(24)
            .height(3)
            .content(
                "cost_usd = max(bytes scanned, 10 MB) / 1e12 x the price per TB (dbt var `athena_price_per_tb_usd`, "
                "default 5.0), per model from dbt-athena's adapter response. Empty off Athena."
            )
        )
    )


DASHBOARDS = {"analytic": analytic, "operational": operational, "cost": cost}


def to_json(builder: dashboard.Dashboard) -> dict[str, Any]:
    """The dashboard model as Grafana's HTTP API takes it."""
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def build_all() -> dict[str, dict[str, Any]]:
    return {name: to_json(make()) for name, make in DASHBOARDS.items()}


def athena_queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, raw SQL) of every Athena target of a dashboard's JSON."""
    return [
        (panel["title"], target["rawSQL"])
        for panel in model.get("panels", [])
        for target in panel.get("targets", [])
        if target.get("datasource", {}).get("type") == ATHENA_PLUGIN
    ]
