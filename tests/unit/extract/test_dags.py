"""A YAML file is a DAG: a new file in the sources folder becomes an extraction DAG as its ``dag:`` section says, and a
broken one is named in an import error of its own while the other sources' DAGs stay."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from medalflow.dag_defaults import OWNER

PROJECT_ROOT = Path(__file__).resolve().parents[3]
GENERATOR = PROJECT_ROOT / "dags" / "extract_sources.py"
CHECK = PROJECT_ROOT / "dags" / "extract_sources_check.py"
EXPECTED_RETRIES = 0  # tests/conftest.py: MEDALFLOW_TASK_RETRIES=0

SHOP = """\
source: shop
kind: sql
conn_id: shop_db
description: The web shop's database, orders and refunds.
dag:
  dag_id: extract_web_shop
  schedule: "30 1 * * 1-5"
  owner: shop-team
  tags: [extract, shop]
  retries: 3
  max_active_runs: 2
  start_date: 2026-02-01
entities:
  orders:
    description: One row per order, as the shop stores it.
    table: shop_orders
    key: order_id
    columns:
      order_id: bigint
      created_at: timestamp
      updated_at: timestamp
      deleted_at: timestamp
  refunds:
    mode: snapshot
    key: refund_id
    columns:
      refund_id: bigint
"""


def bag(path: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path))


@pytest.fixture
def sources(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MEDALFLOW_SOURCES_DIR", str(tmp_path))
    return tmp_path


def test_a_new_yaml_file_becomes_a_dag_as_declared(sources):
    from airflow.timetables.interval import CronDataIntervalTimetable

    (sources / "shop.yml").write_text(SHOP)
    dags = bag(GENERATOR)
    assert dags.import_errors == {}
    assert sorted(dags.dags) == ["extract_web_shop"]
    dag = dags.dags["extract_web_shop"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.summary == "30 1 * * 1-5"
    # A real interval: Tuesday 01:30 covers the time since Monday 01:30.
    interval = dag.timetable.infer_manual_data_interval(run_after=datetime(2026, 2, 3, 1, 30, tzinfo=UTC))
    assert (interval.start, interval.end) == (
        datetime(2026, 2, 2, 1, 30, tzinfo=UTC),
        datetime(2026, 2, 3, 1, 30, tzinfo=UTC),
    )
    assert (sorted(dag.tags), dag.max_active_runs, dag.catchup) == (["extract", "shop"], 2, False)
    assert dag.start_date == datetime(2026, 2, 1, tzinfo=UTC)
    assert {(task.task_id, task.owner, task.retries) for task in dag.tasks} == {
        ("extract_orders", "shop-team", 3),
        ("extract_refunds", "shop-team", 3),
    }
    assert {outlet.name for task in dag.tasks for outlet in task.outlets} == {"raw.shop.orders", "raw.shop.refunds"}
    doc = dag.doc_md
    assert doc.startswith("# extract_web_shop\n\nThe web shop's database, orders and refunds.\n")
    for expected in (
        f"Generated from `{sources / 'shop.yml'}` (kind `sql`)",
        "cron `30 1 * * 1-5` (UTC: at 01:30, Monday through Friday)",
        "`shop_db` Airflow connection",
        "`AIRFLOW_CONN_SHOP_DB`",
        "`raw/shop/<entity>/ingestion_date=<day>/`",
        "| `orders` | One row per order, as the shop stores it. | table `shop_orders`, rows whose `updated_at` is in",
        "| `refunds` | - | table `refunds`, whole (snapshot) | `refund_id` | 1 |",
        "make extract SOURCE=shop",
    ):
        assert expected in doc


def test_a_minimal_dag_section_takes_the_house_defaults(sources):
    text = SHOP.split("dag:")[0] + "entities:" + SHOP.split("entities:")[1]
    (sources / "shop.yml").write_text(text)
    dag = bag(GENERATOR).dags["extract_shop"]
    assert dag.timetable.summary == "0 0 * * *"  # daily: 00:00 UTC over the day before
    assert sorted(dag.tags) == ["extract", "raw", "shop", "sql"]
    assert dag.max_active_runs == 1
    assert {(task.owner, task.retries) for task in dag.tasks} == {(OWNER, EXPECTED_RETRIES)}


def test_a_broken_file_is_an_import_error_of_its_own_and_the_others_stay(sources):
    (sources / "shop.yml").write_text(SHOP)
    (sources / "crm.yml").write_text(
        textwrap.dedent(SHOP)
        .replace("source: shop", "source: crm")
        .replace("  dag_id: extract_web_shop\n", "")
        .replace("retries: 3", "retries: many")
    )
    generated = bag(GENERATOR)
    assert generated.import_errors == {}
    assert sorted(generated.dags) == ["extract_web_shop"]

    check = bag(CHECK)
    assert check.dags == {}
    ((file, error),) = check.import_errors.items()
    assert Path(file).name == "extract_sources_check.py"
    assert (
        f"{sources / 'crm.yml'}: dag.retries: input should be a valid integer, unable to parse string as an integer, "
        "got 'many'"
    ) in error
    assert "1 source config file(s) cannot become an extraction DAG (the other sources' DAGs run as usual)" in error


def test_the_check_file_is_quiet_when_every_config_is_good(sources):
    (sources / "shop.yml").write_text(SHOP)
    check = bag(CHECK)
    assert (check.dags, check.import_errors) == ({}, {})


def test_weekly_is_sundays_at_two(sources):
    (sources / "shop.yml").write_text(SHOP.replace('"30 1 * * 1-5"', "weekly"))
    dag = bag(GENERATOR).dags["extract_web_shop"]
    interval = dag.timetable.infer_manual_data_interval(run_after=datetime(2026, 1, 18, 2, tzinfo=UTC))
    assert (interval.start, interval.end) == (
        datetime(2026, 1, 11, 2, tzinfo=UTC),
        datetime(2026, 1, 18, 2, tzinfo=UTC),
    )
