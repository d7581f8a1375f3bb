"""The medalflow page plugin's app (plugins/medalflow_observability.py) over published fixture Parquet, without a
running api-server: FastAPI's TestClient, signed in through the dependency override, and once with a real JWT."""

from __future__ import annotations

import re
from datetime import date

import medalflow_observability as plugin
import observability_fixtures as fixtures
import pytest
from fastapi.testclient import TestClient

from medalflow.plugin_web import signed_in

END = date(2026, 3, 31)
HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path))
    return tmp_path


@pytest.fixture
def client() -> TestClient:
    app = plugin.create_app()
    app.dependency_overrides[signed_in] = lambda: None
    return TestClient(app)


def publish(lake, target_type: str = "duckdb", days: int = 30) -> dict:
    rows = fixtures.generate(days, END, target_type=target_type)
    fixtures.write_published(rows, lake)
    return rows


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_page_shows_runs_tests_freshness_quarantine_and_gold_charts(lake, client):
    publish(lake)

    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page, text = response.text, text_of(response.text)
    assert "Pipeline health" in text
    assert "asset_triggered__2026-03-31T02:00:00+00:00" in page  # the failed run, first in the history
    assert r'<tr class="failed"><td>medallion</td>' in page
    assert "Success rate 99.3%" in text
    assert fixtures.FAILING_TEST in page
    assert fixtures.WARNING_TEST in page
    assert re.search(r"partner fx_rates error \d+\.\d h", text)
    assert re.search(r"partner payments 30 [\d,]+ [\d,]+ ", text)
    for chart in (
        "chart-runs",
        "chart-models",
        "chart-quarantine",
        "chart-cash-flow",
        "chart-orders",
        "chart-forecast",
    ):
        assert f'<canvas id="{chart}"' in page
    assert '<script src="/medalflow/static/chart.umd.min.js"></script>' in page
    assert "cdn" not in page.lower()
    assert "https://" not in page


def test_duckdb_runs_show_a_dash_for_cost_and_say_cost_is_athenas(lake, client):
    publish(lake, "duckdb")

    page = client.get("/").text

    assert 'id="total-cost">—<' in page
    assert 'id="cost-note"' in page
    assert "apply to Athena" in page
    assert 'id="chart-cost"' not in page
    assert "$" not in text_of(page)


def test_athena_runs_show_bytes_scanned_and_cost(lake, client):
    rows = publish(lake, "athena")

    page = client.get("/").text

    total = sum(r["cost_usd"] for r in rows["obs_dbt_invocations"])
    assert f'id="total-cost">{plugin.format_usd(total)}<' in page
    assert 'id="cost-note"' not in page
    assert '<canvas id="chart-cost"' in page
    assert re.search(r'<td class="num">[\d.,]+ GB</td><td class="num">\$[\d.,]+</td>', page)


def test_model_names_and_messages_are_escaped(lake, client):
    rows = fixtures.generate(5, END)
    for row in rows["obs_model_runs"]:
        row["model_name"] = HOSTILE if row["model_name"] == fixtures.FAILING_MODEL else row["model_name"]
        row["duration_seconds"] = 10_000.0 if row["model_name"] == HOSTILE else row["duration_seconds"]
    for row in rows["obs_test_results"]:
        if row["test_name"] == fixtures.FAILING_TEST:
            row["model_name"], row["message"] = HOSTILE, "</script><script>alert(2)</script>"
    fixtures.write_published(rows, lake)

    page = client.get("/?days=5").text

    assert HOSTILE not in page
    assert "<script>alert" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page  # the tables, escaped by Jinja
    assert "\\u003cimg src=x onerror=" in page  # the chart data, in which '<' cannot end the script element
    assert page.count("</script>") == 3


def test_the_json_endpoint_has_the_figures(lake, client):
    publish(lake, "athena")

    response = client.get("/api/page-data", params={"days": 7})

    assert response.status_code == 200
    data = response.json()
    assert data["window"] == {"days": 7, "first_day": "2026-03-25", "last_day": "2026-03-31"}
    assert data["cost_available"] is True
    assert data["summary"]["failed_runs"] == 1
    assert data["runs"][0]["started_at"].startswith("2026-03-31T02:00")
    assert data["gold"]["orders"]["months"][-1] == "2026-03"


def test_the_window_is_bounded(lake, client):
    publish(lake, days=3)

    assert client.get("/api/page-data", params={"days": 0}).status_code == 422
    assert client.get("/", params={"days": 10_000}).status_code == 422


def test_nothing_published_names_the_dag_to_run(lake, client):
    response = client.get("/")

    assert response.status_code == 404
    assert "not published yet" in response.text
    assert "The observability DAG publishes" in response.text
    assert str(lake / "_published") in response.text
    api = client.get("/api/page-data")
    assert api.status_code == 404
    assert "nothing published" in api.json()["detail"]


def test_an_unreadable_publication_says_which_table(lake, client):
    publish(lake, days=2)
    import pyarrow.parquet as pq

    file = lake / "_published" / "obs_test_results" / "part-0.parquet"
    pq.write_table(pq.read_table(file).drop_columns(["message"]), file)

    response = client.get("/")

    assert response.status_code == 502
    assert "obs_test_results" in response.text
    assert "[&#x27;message&#x27;]" in response.text


def test_the_assets_are_served_and_nothing_else(client):
    chart = client.get("/static/chart.umd.min.js")
    assert chart.status_code == 200
    assert chart.headers["content-type"].startswith("text/javascript")
    assert chart.text.startswith("/*!\n * Chart.js v4.")
    assert client.get("/static/page.js").status_code == 200
    assert client.get("/static/page.html.j2").status_code == 404
    assert client.get("/static/..%2Fmedalflow_observability.py").status_code == 404


def test_the_page_is_for_signed_in_users_only(lake):
    publish(lake, days=2)
    client = TestClient(plugin.create_app())

    for path in ("/", "/api/page-data", "/static/chart.umd.min.js"):
        assert client.get(path).status_code == 401, path


def test_a_ui_session_cookie_signs_in(lake, airflow_database):
    """The real check: a JWT the api-server's auth manager issued, in the UI's cookie (the revocation list is read
    from the metadata database, hence the database fixture)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    publish(lake, days=2)
    token = create_auth_manager().generate_jwt(SimpleAuthManagerUser(username="medalflow", role="viewer"))
    client = TestClient(plugin.create_app(), cookies={COOKIE_NAME_JWT_TOKEN: token})

    assert client.get("/").status_code == 200
    assert client.get("/api/page-data").json()["summary"]["runs"] == 2 * 5
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert TestClient(plugin.create_app()).get("/", headers={"Authorization": f"Bearer {forged}"}).status_code in (
        401,
        403,
    )


def test_the_plugin_adds_pipeline_health_to_the_navigation():
    [view] = plugin.MedalflowObservabilityPlugin.external_views
    assert view["href"] == "/medalflow/"
    assert view["url_route"] == "medalflow"
    assert view["name"] == "Pipeline health"
    assert view["nav_top_level"] is True


@pytest.mark.parametrize(
    ("formatter", "value", "shown"),
    [
        (plugin.format_duration, 4.25, "4.2 s"),
        (plugin.format_duration, 125, "2 min 05 s"),
        (plugin.format_duration, 3 * 3600 + 60 * 7, "3 h 07 min"),
        (plugin.format_bytes, 10_485_760, "10.0 MB"),
        (plugin.format_bytes, 512, "512 B"),
        (plugin.format_usd, 0.00005, "$0.0001"),
        (plugin.format_usd, 12.345, "$12.35"),
        (plugin.format_usd, None, "—"),
        (plugin.format_trend, 0.25, "+25%"),
        (plugin.format_percent, None, "—"),
    ],
)
def test_figures_are_formatted_for_reading(formatter, value, shown):
    assert formatter(value) == shown
