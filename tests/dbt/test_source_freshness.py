"""``dbt source freshness`` on DuckDB, over lakes landed relative to today (dbt compares with the warehouse's clock).

Every source declares ``warn_after`` / ``error_after`` (36 h / 72 h for the daily sources, 192 h / 360 h for the weekly
forecast), measured from the end of its latest ``ingestion_date`` partition (the sources' ``loaded_at_query``):

* every interval up to yesterday landed: every source passes, FX rates included although their last intervals were
  empty partitions (nothing published over a holiday weekend), which the last record's ``_ingested_at`` would have
  called stale;
* a lake that stopped landing: the ERP (landed up to yesterday) passes, the partner API (landed up to three days ago)
  warns, the file drops (five days ago) and an entity that never landed are errors, which fail the command, and the
  forecast, five days old, passes under its weekly thresholds.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import SCALE, SEED, Dbt, land
from raw_lake import (
    PARTNER_SCHEMAS,
    RawLakeBuilder,
    context,
    day_range,
    write_file_drops_day,
    write_forecast_week,
    write_records,
)
from warehouse import query

from medalflow.dbt_commands import run_dbt
from medalflow.settings import get_settings
from medalflow_demo.world import DemoConfig, World, generate

pytestmark = pytest.mark.integration

WINDOW_DAYS = 5
DAILY_SOURCES = (
    "erp.customers", "erp.suppliers", "erp.products", "erp.orders", "partner.payments", "partner.fx_rates",
    "partner.shipments", "files.shipments",
)  # fmt: skip
FORECAST_SOURCES = ("forecast.projects", "forecast.baselines", "forecast.scenarios")
NEVER_LANDED = "0001-01-01T00:00:00+00:00"  # what dbt records when loaded_at_query finds nothing
# The module lands and checks in well under this; closer to midnight UTC, a lake landed for one day would be checked
# on the next, a day older than meant.
MIDNIGHT_MARGIN = timedelta(minutes=3)


@pytest.fixture(scope="module")
def today() -> date:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if midnight - now < MIDNIGHT_MARGIN:
        time.sleep((midnight - now).total_seconds() + 1)
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
def recent_world(today) -> World:
    return generate(DemoConfig(seed=SEED, scale=SCALE, start_date=today - timedelta(days=WINDOW_DAYS), end_date=today))


def interval_end(day: date) -> str:
    """How sources.json writes the end of ``day``'s interval."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).isoformat()


def source_freshness(dbt: Dbt) -> int:
    """`dbt source freshness` on the fixture's lake and warehouse; its exit code (1 when a source is past error_after).
    sources.json goes to the run's target folder."""
    settings = dataclasses.replace(
        get_settings(), lake_uri=dbt.lake_uri, duckdb_path=str(dbt.warehouse), dbt_target="duckdb"
    )
    arguments = ["source", "freshness", "--target-path", str(dbt.work / "target"), "--log-path", str(dbt.work / "logs")]
    return run_dbt(arguments, settings, check=False)


def freshness_results(dbt: Dbt) -> dict[str, dict]:
    results = json.loads((dbt.work / "target" / "sources.json").read_text())["results"]
    return {result["unique_id"].removeprefix("source.medalflow."): result for result in results}


@pytest.fixture(scope="module")
def everything_landed(recent_world, today, tmp_path_factory):
    """Every interval up to yesterday landed, the last ones without FX rates; `dbt source freshness` succeeded."""
    root = tmp_path_factory.mktemp("freshness_landed")
    days = day_range(today - timedelta(days=WINDOW_DAYS), WINDOW_DAYS)
    builder = land(recent_world, root, days)
    builder.close()
    write_forecast_week(builder.lake, recent_world, days[0])
    for day in days[1:]:
        write_records(builder.lake, "partner", "fx_rates", day, PARTNER_SCHEMAS["fx_rates"], [])
    dbt = Dbt(builder.lake.uri, root / "warehouse.duckdb", root)
    assert source_freshness(dbt) == 0
    return dbt, days


@pytest.fixture(scope="module")
def stopped_landing(recent_world, today, tmp_path_factory):
    """Sources that stopped landing at different days; `dbt source freshness` failed (exit code 1)."""
    root = tmp_path_factory.mktemp("freshness_stopped")
    days = day_range(today - timedelta(days=WINDOW_DAYS), WINDOW_DAYS)
    builder = RawLakeBuilder(recent_world, str(root / "lake"), root / "erp.sqlite")
    try:
        for day in days:
            builder.land_erp_day(day)
    finally:
        builder.close()
    partner_day = today - timedelta(days=3)
    payments, fx_rates = recent_world.payment_changes(partner_day), recent_world.fx_rates(partner_day)
    write_records(builder.lake, "partner", "payments", partner_day, PARTNER_SCHEMAS["payments"], payments)
    write_records(builder.lake, "partner", "fx_rates", partner_day, PARTNER_SCHEMAS["fx_rates"], fx_rates)
    write_file_drops_day(builder.lake, recent_world, days[0])
    write_forecast_week(builder.lake, recent_world, days[0])
    dbt = Dbt(builder.lake.uri, root / "warehouse.duckdb", root)
    assert source_freshness(dbt) == 1
    return dbt, days


def test_every_source_is_fresh_when_every_interval_landed(everything_landed):
    dbt, days = everything_landed
    results = freshness_results(dbt)
    assert set(results) == {*DAILY_SOURCES, *FORECAST_SOURCES}
    assert {name: result["status"] for name, result in results.items()} == dict.fromkeys(results, "pass")
    assert {name: results[name]["max_loaded_at"] for name in DAILY_SOURCES} == dict.fromkeys(
        DAILY_SOURCES, interval_end(days[-1])
    )


def test_empty_partitions_count_as_landed(everything_landed):
    dbt, days = everything_landed
    fx_files = f"{dbt.lake_uri}/raw/partner/fx_rates/*/*.parquet"
    ((last_record_ingested_at,),) = query(dbt.warehouse, f"select max(_ingested_at) from read_parquet('{fx_files}')")
    assert last_record_ingested_at == context("partner", days[0]).ingested_at
    assert datetime.now(UTC) - last_record_ingested_at > timedelta(hours=72), "past error_after by its records"
    assert freshness_results(dbt)["partner.fx_rates"]["status"] == "pass"


def test_sources_that_stopped_landing_warn_or_fail_by_their_thresholds(stopped_landing, today):
    dbt, days = stopped_landing
    results = freshness_results(dbt)
    expected = {
        **dict.fromkeys(("erp.customers", "erp.suppliers", "erp.products", "erp.orders"), ("pass", days[-1])),
        "partner.payments": ("warn", today - timedelta(days=3)),
        "partner.fx_rates": ("warn", today - timedelta(days=3)),
        "partner.shipments": ("error", None),
        "files.shipments": ("error", days[0]),
        **dict.fromkeys(FORECAST_SOURCES, ("pass", days[0])),
    }
    assert {name: (result["status"], result["max_loaded_at"]) for name, result in results.items()} == {
        name: (status, interval_end(day) if day else NEVER_LANDED) for name, (status, day) in expected.items()
    }
