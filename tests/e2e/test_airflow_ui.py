"""The Airflow UI in a real browser (Debian's Chromium, headless): sign in, the medallion DAG's graph with one task
per dbt model, and the dbt docs page the project's plugin adds. Screenshots go to .local/screenshots/."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from live_medalflow import FIRST_DAY, PROJECT_ROOT
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.integration

SCREENSHOTS = PROJECT_ROOT / ".local" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
]


@pytest.fixture(scope="module")
def built(live):
    """A day built through the assets, and the docs published by the maintenance DAG's own scheduled run (unpausing
    it starts the latest one at once)."""
    build = live.build_day_through_assets(FIRST_DAY)
    live.client.set_paused("maintenance", False)
    run = live.client.wait_for_new_run("maintenance", "scheduled", known=[])
    live.client.wait_for_run("maintenance", run["dag_run_id"], timeout=300, describe=live.describe_task("maintenance"))
    return live, build


@pytest.fixture(scope="module")
def browser():
    profile = Path(tempfile.mkdtemp(prefix="medalflow-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition: Callable, what: str, timeout: float = 30):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))
    except WebDriverException as error:
        screenshot(driver, f"failed-{what.replace(' ', '-')}")
        raise AssertionError(f"timed out waiting for {what} at {driver.current_url}") from error


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def button(driver, label: str):
    for candidate in driver.find_elements(By.TAG_NAME, "button"):
        if label in ((candidate.text or "").strip(), candidate.get_attribute("aria-label")):
            return candidate
    return None


def test_sign_in_graph_and_dbt_docs(built, browser):
    live, build = built
    base = live.services.base_url

    browser.get(base)
    wait_for(browser, lambda d: d.find_elements(By.NAME, "username"), "the sign-in form")
    browser.find_element(By.NAME, "username").send_keys("medalflow")
    browser.find_element(By.NAME, "password").send_keys(live.services.password)
    button(browser, "Sign in").click()
    wait_for(
        browser,
        lambda d: "/auth/login" not in d.current_url and "Welcome" in d.find_element(By.TAG_NAME, "body").text,
        "the home page",
    )
    screenshot(browser, "01-home")

    # The graph of the run the extraction started, every task group expanded: one node per dbt model and its tests.
    browser.get(f"{base}/dags/medallion/runs/{build.medallion_run_id}")
    wait_for(browser, lambda d: button(d, "Show Graph (Press g)"), "the DAG page")
    button(browser, "Show Graph (Press g)").click()
    wait_for(browser, lambda d: button(d, "Expand all task groups"), "the graph's controls").click()
    model_nodes = wait_for(
        browser,
        lambda d: [
            node
            for node in d.find_elements(By.CSS_SELECTOR, ".react-flow__node")
            if (node.get_attribute("data-id") or "").endswith("agg_monthly_orders.run")
        ],
        "the per-model tasks in the graph",
    )
    node_ids = {node.get_attribute("data-id") for node in browser.find_elements(By.CSS_SELECTOR, ".react-flow__node")}
    for model in ("brz_erp__orders", "slv_orders", "agg_monthly_orders"):
        assert any(node_id.endswith(f".{model}.run") for node_id in node_ids), f"{model}: no task in the graph"
        assert any(node_id.endswith(f".{model}.test") for node_id in node_ids), f"{model}: no test task in the graph"
    assert "DbtRunWatcherOperator" in model_nodes[0].text
    time.sleep(1)  # the graph lays itself out after its nodes exist
    screenshot(browser, "02-medallion-graph")

    # Browse -> dbt docs: the plugin's external view, the docs site in a frame, showing the project's models.
    browser.get(f"{base}/plugin/dbt-docs")
    frame = wait_for(browser, lambda d: d.find_elements(By.TAG_NAME, "iframe"), "the dbt docs frame")[0]
    assert frame.get_attribute("src").endswith("/dbt-docs/index.html")
    browser.switch_to.frame(frame)
    wait_for(browser, lambda d: "medalflow" in d.find_element(By.TAG_NAME, "body").text, "the docs' project tree")
    # A gold model's page (the docs site's own route), with the columns the catalog read from the warehouse.
    browser.execute_script("window.location.hash = '#!/model/model.medalflow.agg_monthly_orders'")
    page = wait_for(
        browser,
        lambda d: (text := d.find_element(By.TAG_NAME, "body").text) and "order_month" in text and text,
        "the agg_monthly_orders page",
    )
    assert "agg_monthly_orders" in page
    assert "sales_brl" in page
    browser.switch_to.default_content()
    screenshot(browser, "03-dbt-docs-gold-model")

    # The docs are served to signed-in users only.
    import requests

    assert requests.get(f"{base}/dbt-docs/manifest.json", timeout=10).status_code == 401
