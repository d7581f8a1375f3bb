"""The medalflow page (plugins/medalflow_observability.py) in the running Airflow, in Chromium: the navigation's
"Pipeline health" entry shows it in a frame with its charts drawn; DuckDB runs show no cost, Athena runs do.

The page reads the tables the builds publish under ``<lake>/_published/``; here the test publishes 90 days of made-up
runs there itself (tests/observability_fixtures.py, as the benchmark does), so what the page must show is known. A
publication already in the live lake (a build's) is set aside meanwhile and put back after. Screenshots go to
.local/screenshots/ (04- to 06-, after the UI tests' own).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import observability_fixtures as fixtures
import pytest
from selenium.webdriver.common.by import By
from test_airflow_ui import browser, screenshot, wait_for  # ruff: ignore[unused-import] (browser: the module's Chromium fixture)

pytestmark = pytest.mark.integration

CHARTS_ALWAYS = {"chart-runs", "chart-models", "chart-quarantine", "chart-cash-flow", "chart-orders", "chart-forecast"}
# Each chart the page drew: its canvas's size on screen (a chart that failed to draw has none, or no instance).
DRAWN_CHARTS = """
return Object.entries(window.medalflowCharts || {}).map(([id, chart]) => {
  const box = chart.canvas.getBoundingClientRect();
  return [id, Math.round(box.width), Math.round(box.height), chart.data.datasets.length];
});
"""


@pytest.fixture
def publish(live):
    """Publishes fixture runs in the live lake (``publish(target_type)``); restores what was there before."""
    published = live.lake / "_published"
    set_aside = live.lake / "_published.before-e2e"
    if published.exists():
        published.rename(set_aside)

    def write(target_type: str):
        shutil.rmtree(published, ignore_errors=True)
        rows = fixtures.generate(90, datetime.now(UTC).date(), target_type=target_type)
        fixtures.write_published(rows, live.lake)
        return rows

    yield write
    shutil.rmtree(published, ignore_errors=True)
    if set_aside.exists():
        set_aside.rename(published)


def sign_in_with_token(driver, live) -> None:
    """The UI's session cookie, from the API's token endpoint (the sign-in form is the UI tests' subject)."""
    base = live.services.base_url
    driver.get(f"{base}/api/v2/version")
    driver.add_cookie({"name": "_token", "value": live.client.token("medalflow", live.services.password), "path": "/"})


def drawn_charts(driver) -> dict[str, tuple[int, int, int]]:
    return {
        chart_id: (width, height, datasets) for chart_id, width, height, datasets in driver.execute_script(DRAWN_CHARTS)
    }


def test_pipeline_health_page_with_charts_and_cost(live, browser, publish):  # ruff: ignore[redefined-while-unused] (the imported fixture)
    base = live.services.base_url
    plugins = {plugin["name"] for plugin in live.client.get("plugins")["plugins"]}
    assert {"medalflow_observability", "medalflow_dbt_docs"} <= plugins

    rows = publish("duckdb")
    sign_in_with_token(browser, live)

    # The navigation's entry: the plugin's external view, the page in a frame.
    browser.get(f"{base}/plugin/medalflow")
    wait_for(browser, lambda d: "Pipeline health" in d.page_source, "the Pipeline health navigation entry")
    frame = wait_for(browser, lambda d: d.find_elements(By.TAG_NAME, "iframe"), "the medalflow page's frame")[0]
    assert frame.get_attribute("src").endswith("/medalflow/")
    browser.switch_to.frame(frame)
    charts = wait_for(browser, lambda d: set(drawn_charts(d)) >= CHARTS_ALWAYS and drawn_charts(d), "the charts")
    for chart_id, (width, height, datasets) in charts.items():
        assert min(width, height) > 100, f"{chart_id} not drawn: {width}x{height} px"
        assert datasets > 0, f"{chart_id} has no data"
    body = browser.find_element(By.TAG_NAME, "body").text
    last_build = rows["obs_dbt_invocations"][-1]["run_id"]
    assert last_build in body
    assert "failed" in body
    assert fixtures.FAILING_TEST in body
    assert "fx_rates" in body
    assert browser.find_element(By.ID, "total-cost").text == "—"
    assert "apply to Athena" in browser.find_element(By.ID, "cost-note").text
    assert "chart-cost" not in charts
    browser.switch_to.default_content()
    screenshot(browser, "04-pipeline-health-in-airflow")

    # The page alone, whole, then the same runs as on Athena: the cost columns and chart filled.
    browser.get(f"{base}/medalflow/?days=90")
    wait_for(browser, lambda d: set(drawn_charts(d)) >= CHARTS_ALWAYS, "the charts over 90 days")
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1600, height + 120)
    wait_for(browser, lambda d: all(w > 100 for w, _, _ in drawn_charts(d).values()), "the charts resized")
    screenshot(browser, "05-pipeline-health-duckdb")
    browser.set_window_size(1600, 1000)

    publish("athena")
    browser.get(f"{base}/medalflow/")
    charts = wait_for(browser, lambda d: "chart-cost" in drawn_charts(d) and drawn_charts(d), "the cost chart")
    assert charts["chart-cost"][0] > 100
    assert browser.find_element(By.ID, "total-cost").text.startswith("$")
    assert not browser.find_elements(By.ID, "cost-note")
    browser.execute_script("document.getElementById('cost').scrollIntoView()")
    screenshot(browser, "06-pipeline-health-athena-cost")
