"""Fixtures of the dbt tests: raw lakes landed from the demo world, and dbt run against them on DuckDB.

Every dbt run goes through ``medalflow.dbt_commands.run_dbt`` (dbt from its own virtualenv) with the settings pointed at
temporary paths; artifacts go to a temporary target path, so the project's ``target/manifest.json`` (which the
Airflow DAGs read) is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest
from raw_lake import RawLakeBuilder, day_range

from medalflow.dbt_commands import run_dbt
from medalflow.intervals import day_interval
from medalflow.settings import get_settings
from medalflow_demo.world import DemoConfig, World, generate

# Thursday to Sunday: weekday and weekend orders (FX as of Friday), and the weekly forecast lands on the Sunday.
FIRST_DAY = date(2026, 1, 8)
DAYS = day_range(FIRST_DAY, 4)
SEED, SCALE = 11, 0.2
# The key of silver's PII hashes in every dbt test (any target); fixed, so tests can recompute hashes with hmac.
TEST_PII_KEY = "medalflow-test-pii-key"


@pytest.fixture(scope="session", autouse=True)
def pii_key():
    """dbt refuses to hash PII without a key off the laptop demo (Athena, Snowflake, an s3:// lake): the tests use a
    fixed one, set before any fixture builds a dbt environment from os.environ."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDALFLOW_PII_KEY", TEST_PII_KEY)
        yield TEST_PII_KEY


@pytest.fixture(scope="session")
def world() -> World:
    return generate(DemoConfig(seed=SEED, scale=SCALE, start_date=DAYS[0], end_date=DAYS[-1] + timedelta(days=1)))


@dataclasses.dataclass
class Dbt:
    """dbt on DuckDB against one lake and one warehouse file."""

    lake_uri: str
    warehouse: Path
    work: Path

    def __call__(self, *arguments: str, interval: date | None = None) -> None:
        settings = dataclasses.replace(
            get_settings(), lake_uri=self.lake_uri, duckdb_path=str(self.warehouse), dbt_target="duckdb"
        )
        extra = ["--target-path", str(self.work / "target"), "--log-path", str(self.work / "logs")]
        if interval is not None:
            extra += ["--vars", json.dumps(day_interval(interval).as_extra())]
        code = run_dbt([*arguments, *extra], settings, check=False)
        assert code == 0, f"dbt {' '.join(arguments)} (interval {interval}) failed with exit code {code}"

    def run_results(self) -> list[dict]:
        return json.loads((self.work / "target" / "run_results.json").read_text())["results"]

    def copy(self, work: Path) -> Dbt:
        """The same lake and a copy of the warehouse, to try a run without changing this one."""
        work.mkdir(parents=True)
        shutil.copy(self.warehouse, work / self.warehouse.name)
        return Dbt(self.lake_uri, work / self.warehouse.name, work)


def land(world: World, root: Path, days: Sequence[date], after_each: Callable[[date], None] | None = None):
    """A raw lake under ``root`` with ``days`` landed in order (calling ``after_each`` after each day)."""
    builder = RawLakeBuilder(world, str(root / "lake"), root / "erp.sqlite")
    try:
        for day in days:
            builder.land_day(day)
            if after_each:
                after_each(day)
    except BaseException:
        builder.close()
        raise
    return builder


@pytest.fixture(scope="session")
def full_refresh(world, tmp_path_factory):
    """All days landed, then one full `dbt build` (every model, snapshot, data test and unit test)."""
    root = tmp_path_factory.mktemp("full_refresh")
    builder = land(world, root, DAYS)
    dbt = Dbt(builder.lake.uri, root / "warehouse.duckdb", root)
    dbt("build", "--full-refresh")
    yield dbt, builder
    builder.close()


@pytest.fixture(scope="session")
def daily(world, tmp_path_factory):
    """As in production: each day lands, then dbt runs for that day's interval (incremental); the last day's run
    also runs the data tests."""
    root = tmp_path_factory.mktemp("daily")
    dbt = Dbt(str(root / "lake"), root / "warehouse.duckdb", root)

    def run_interval(day: date) -> None:
        last = day == DAYS[-1]
        excluded = ["resource_type:unit_test"] if last else ["resource_type:test", "resource_type:unit_test"]
        dbt("build", "--exclude", *excluded, interval=day)

    builder = land(world, root, DAYS, after_each=run_interval)
    yield dbt, builder
    builder.close()
