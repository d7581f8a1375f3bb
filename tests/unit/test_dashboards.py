"""The Grafana dashboards as code (tools/medalflow_dashboards) and their publication.

The generated JSON: three dashboards with stable uids, every panel and query naming its data source by a dashboard
variable, nothing of an AWS account or region in it, CloudWatch queries on the metrics MWAA and Athena publish under the
names infra/ gives the environment and the workgroup. (Their SQL runs on a demo warehouse in
tests/dbt/test_dashboard_queries.py.)

Publishing runs against a local stand-in for Grafana's HTTP API that checks each request as the API defines it: the
paths and methods (GET/POST /api/folders, POST /api/dashboards/db), the Bearer token, the bodies' shape. Then the
refusals: 401, 403, 404, nothing listening; each names the URL and never the token.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from test_infra import PUBLISHED_METRICS  # what MWAA and Athena publish, as the alarms use it

from medalflow_dashboards import __main__ as cli
from medalflow_dashboards.dashboards import ATHENA_PLUGIN, CLOUDWATCH_PLUGIN, athena_queries, build_all
from medalflow_dashboards.publish import Grafana, PublishError, publish

TOKEN = "glsa_test-token-that-must-never-be-printed"
DATASOURCE_VARIABLES = {ATHENA_PLUGIN: "athena", CLOUDWATCH_PLUGIN: "cloudwatch"}


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return build_all()


def test_three_dashboards_with_stable_uids_and_titles(dashboards) -> None:
    assert set(dashboards) == {"analytic", "operational", "cost"}
    for name, model in dashboards.items():
        assert model["uid"] == f"medalflow-{name}"
        assert model["title"].startswith("medalflow: ")
        assert "medalflow" in model["tags"]
        assert model["panels"], name


def test_every_panel_and_query_names_its_data_source_by_a_variable(dashboards) -> None:
    for name, model in dashboards.items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        for panel in model["panels"]:
            if panel["type"] == "text":
                continue
            sources = [panel["datasource"], *(target["datasource"] for target in panel["targets"])]
            for source in sources:
                variable = DATASOURCE_VARIABLES[source["type"]]
                assert source["uid"] == f"${{{variable}}}", f"{name}/{panel['title']}: {source}"
                assert variables[variable]["type"] == "datasource"
                assert variables[variable]["query"] == source["type"], "the variable lists data sources of that type"


def test_no_account_region_or_arn_is_hardcoded(dashboards) -> None:
    for name, model in dashboards.items():
        serialized = json.dumps(model)
        assert not re.search(r"(?<!\d)\d{12}(?!\d)", serialized), f"{name}: an account id"
        assert not re.search(r"\b(us|eu|ap|sa|ca|me|af)-(east|west|north|south|central|northeast|southeast)-\d\b",
                             serialized), f"{name}: a region"  # fmt: skip
        assert "arn:" not in serialized
        assert "medalflow_prod_" not in serialized, "names come from variables"
        assert "medalflow-prod-" not in serialized, "names come from variables"


def test_the_environment_is_a_variable_and_names_follow_infra(dashboards) -> None:
    for model in dashboards.values():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["env"]["query"] == "dev,hom,prod"
        assert variables["project"]["query"] == "medalflow"
        if "athena" in variables:
            # dbt's generate_schema_name on Athena: <MEDALFLOW_ATHENA_SCHEMA = project_env>_<layer>.
            assert variables["gold_schema"]["query"] == "${project}_${env}_gold"
            assert variables["observability_schema"]["query"] == "${project}_${env}_observability"


def cloudwatch_targets(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        target
        for panel in model["panels"]
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == CLOUDWATCH_PLUGIN
    ]


def test_cloudwatch_queries_use_the_published_metrics_and_infras_names(dashboards) -> None:
    seen = set()
    for name, model in dashboards.items():
        for target in cloudwatch_targets(model):
            assert target["region"] == "default", "the data source's region, never a literal one"
            if target["metricEditorMode"] == 1:  # Metrics Insights, code mode
                assert target["metricQueryType"] == 1
                assert "FROM SCHEMA(AmazonMWAA, DAG, Environment)" in target["sqlExpression"]
                assert "Environment = '${project}-${env}-airflow'" in target["sqlExpression"]
                seen.add("DAGDurationFailed")
                continue
            namespace, metric = target["namespace"], target["metricName"]
            assert set(target["dimensions"]) == PUBLISHED_METRICS[namespace][metric], f"{name}: {metric}"
            assert target["matchExact"] is True
            if "Environment" in target["dimensions"]:
                assert target["dimensions"]["Environment"] == "${project}-${env}-airflow"
            if "WorkGroup" in target["dimensions"]:
                assert target["dimensions"]["WorkGroup"] == "${project}-${env}-pipeline"
            seen.add(metric)
    assert {"SchedulerHeartbeat", "QueuedTasks", "DAGDurationFailed", "ProcessedBytes"} <= seen


def test_the_panels_cover_issue_14(dashboards) -> None:
    sql = {name: " ".join(q for _, q in athena_queries(model)) for name, model in dashboards.items()}
    for table in ["agg_monthly_cash_flow", "agg_monthly_orders", "agg_monthly_forecast_vs_actual"]:
        assert f"${{gold_schema}}.{table}" in sql["analytic"]
    for table in ["obs_dbt_invocations", "obs_model_runs", "obs_test_results", "obs_source_freshness",
                  "obs_extraction_runs"]:  # fmt: skip
        assert f"${{observability_schema}}.{table}" in sql["operational"]
    assert "cost_usd" in sql["cost"]
    assert "${observability_schema}.obs_model_runs" in sql["cost"], "cost per model"
    assert any(t["metricName"] == "ProcessedBytes" for t in cloudwatch_targets(dashboards["cost"]) if "metricName" in t)


# --- publishing -------------------------------------------------------------------------------------------------------


class FakeGrafana(ThreadingHTTPServer):
    """Grafana's folder and dashboard API, strict about what it accepts, and recording every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GrafanaHandler)
        self.folders: dict[str, str] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.refuse_with: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class GrafanaHandler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self) -> bool:
        self.server.requests.append((self.command, self.path))
        if self.server.refuse_with:
            self.answer(self.server.refuse_with, {"message": "refused"})
            return False
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.answer(401, {"message": "invalid API key"})
            return False
        return True

    def body(self) -> dict[str, Any]:
        assert self.headers.get("Content-Type") == "application/json"
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        if not self.authorized():
            return
        match = re.fullmatch(r"/api/folders/([A-Za-z0-9_-]+)", self.path)
        if not match:
            self.answer(404, {"message": "Not found"})
        elif match.group(1) in self.server.folders:
            self.answer(200, {"uid": match.group(1), "title": self.server.folders[match.group(1)]})
        else:
            self.answer(404, {"message": "folder not found"})

    def do_POST(self) -> None:
        if not self.authorized():
            return
        body = self.body()
        if self.path == "/api/folders":
            assert set(body) == {"uid", "title"}, body
            if body["uid"] in self.server.folders:
                self.answer(409, {"message": "a folder with that uid already exists"})
                return
            self.server.folders[body["uid"]] = body["title"]
            self.answer(200, {"uid": body["uid"], "title": body["title"], "url": f"/dashboards/f/{body['uid']}/"})
        elif self.path == "/api/dashboards/db":
            assert set(body) == {"dashboard", "folderUid", "overwrite", "message"}, body
            model = body["dashboard"]
            assert model["id"] is None, "a new or overwritten dashboard is matched by uid"
            assert model["uid"]
            assert model["title"]
            assert isinstance(model["panels"], list)
            if body["folderUid"] not in self.server.folders:
                self.answer(400, {"message": "folder not found"})
                return
            if model["uid"] in self.server.dashboards and not body["overwrite"]:
                self.answer(412, {"status": "version-mismatch", "message": "exists"})
                return
            version = self.server.dashboards.get(model["uid"], {}).get("version", 0) + 1
            self.server.dashboards[model["uid"]] = {**body, "version": version}
            slug = model["title"].lower().replace(" ", "-")
            self.answer(
                200,
                {"id": 1, "uid": model["uid"], "url": f"/d/{model['uid']}/{slug}", "status": "success",
                 "version": version},
            )  # fmt: skip
        else:
            self.answer(404, {"message": "Not found"})


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_publish_creates_the_folder_once_and_overwrites_the_dashboards(grafana, dashboards) -> None:
    urls = publish(Grafana(grafana.url, TOKEN), dashboards, "medalflow", "medalflow", "first")
    assert grafana.folders == {"medalflow": "medalflow"}
    assert set(grafana.dashboards) == {"medalflow-analytic", "medalflow-operational", "medalflow-cost"}
    assert all(url.startswith(f"{grafana.url}/d/medalflow-") for url in urls)
    assert grafana.requests[:2] == [("GET", "/api/folders/medalflow"), ("POST", "/api/folders")]
    stored = grafana.dashboards["medalflow-cost"]
    assert stored["folderUid"] == "medalflow"
    assert stored["overwrite"] is True
    assert stored["dashboard"]["panels"] == dashboards["cost"]["panels"]

    grafana.requests.clear()
    publish(Grafana(grafana.url + "/", TOKEN), dashboards, "medalflow", "medalflow", "second")
    assert ("POST", "/api/folders") not in grafana.requests, "an existing folder is reused"
    assert {d["version"] for d in grafana.dashboards.values()} == {2}
    assert grafana.dashboards["medalflow-analytic"]["message"] == "second"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "refused the token"), (403, "needs the Editor role"), (404, "is GRAFANA_URL the Grafana workspace's URL")],
)
def test_refusals_name_the_url_and_never_the_token(grafana, dashboards, status: int, expected: str) -> None:
    grafana.refuse_with = status
    with pytest.raises(PublishError) as raised:
        publish(Grafana(grafana.url, TOKEN), dashboards, "medalflow", "medalflow", "m")
    message = str(raised.value)
    assert expected in message
    assert grafana.url in message
    assert TOKEN not in message
    assert TOKEN not in repr(raised.value.__cause__) + repr(raised.value.__context__)


def test_a_wrong_token_is_a_401_from_the_api(grafana, dashboards) -> None:
    with pytest.raises(PublishError, match="401"):
        publish(Grafana(grafana.url, "glsa_wrong"), dashboards, "medalflow", "medalflow", "m")
    assert not grafana.dashboards


def test_nothing_listening_names_the_url(dashboards) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(PublishError, match=re.escape(f"cannot reach Grafana at {url}")) as raised:
        publish(Grafana(url, TOKEN), dashboards, "medalflow", "medalflow", "m")
    assert TOKEN not in str(raised.value)


def test_bad_settings_are_refused_before_any_request() -> None:
    with pytest.raises(PublishError, match="GRAFANA_TOKEN is empty"):
        Grafana("https://grafana.example.org", "")
    with pytest.raises(PublishError, match="not an http"):
        Grafana("grafana.example.org", TOKEN)


def test_the_command_publishes_with_the_token_from_the_environment(grafana, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert cli.main(["publish", "--url", grafana.url]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert TOKEN not in out + err
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_wrong")
    assert cli.main(["publish", "--url", grafana.url]) == 1
    out, err = capsys.readouterr()
    assert "dashboards not published" in err
    assert grafana.url in err
    assert "glsa_wrong" not in out + err
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    assert cli.main(["publish", "--url", ""]) == 2


def test_the_command_builds_the_json_files(tmp_path, dashboards) -> None:
    assert cli.main(["build", "--out", str(tmp_path)]) == 0
    for name, model in dashboards.items():
        assert json.loads((tmp_path / f"{name}.json").read_text()) == model
