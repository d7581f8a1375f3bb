"""Source configs: the shipped groups parse, and every mistake in a config is named with its file and key path."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from medalflow.extract.config import (
    DagSettings,
    SourceConfigError,
    load_source_group,
    load_sources,
    parse_source_group,
    read_source_file,
)
from medalflow.extract.files import FileEntity

SHOP = """\
source: shop
kind: sql
conn_id: shop_db
description: The web shop's database.
dag:
  schedule: daily
entities:
  orders:
    mode: snapshot
    key: order_id
    columns:
      order_id: bigint
      updated_at: timestamp
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_shipped_groups_declare_their_dags():
    catalogue = load_sources()
    assert catalogue.errors == {}
    assert {name: group.dag_id for name, group in catalogue.groups.items()} == {
        "erp": "extract_erp",
        "files": "extract_file_drops",
        "forecast": "extract_forecast",
        "partner": "extract_partner_api",
    }
    assert catalogue.groups["forecast"].dag.schedule == "weekly"
    assert catalogue.groups["partner"].conn_id == "medalflow_partner_api"


def test_forecast_children_are_fetched_per_project():
    group = load_source_group("forecast")
    assert group.entity("projects").parent is None
    assert {group.entity(name).parent for name in ("baselines", "scenarios")} == {"projects"}


def test_file_drops_name_their_partners_and_formats():
    entity = load_source_group("files").entity("shipments")
    assert isinstance(entity, FileEntity)
    assert dict(entity.partners) == {"oceanic": "csv", "skyfreight": "parquet"}
    assert entity.inbox_folder("oceanic", date(2026, 1, 12)) == "inbox/oceanic/shipments/2026-01-12"


def test_the_sources_folder_can_be_moved(tmp_path, monkeypatch):
    write(tmp_path, "shop.yml", SHOP)
    monkeypatch.setenv("MEDALFLOW_SOURCES_DIR", str(tmp_path))
    group = load_source_group("shop")
    assert (group.name, group.kind, group.dag_id, group.path) == ("shop", "sql", "extract_shop", tmp_path / "shop.yml")
    assert sorted(load_sources().groups) == ["shop"]


def test_a_missing_source_names_the_folder(tmp_path):
    write(tmp_path, "shop.yml", SHOP)
    with pytest.raises(SourceConfigError, match=r"no source config 'crm': expected .*crm\.yml .* it has: shop\)"):
        load_source_group("crm", tmp_path)


def test_an_entity_description_is_kept_for_the_docs_and_not_passed_to_the_kind():
    document = {
        "source": "shop",
        "kind": "sql",
        "conn_id": "shop_db",
        "description": "The shop.",
        "entities": {
            "orders": {
                "description": "One row per order.",
                "mode": "snapshot",
                "key": "id",
                "columns": {"id": "bigint"},
            }
        },
    }
    group = parse_source_group(document, "shop.yml")
    assert group.entity_descriptions == {"orders": "One row per order."}
    assert group.dag == DagSettings()


# --- every broken config gives one exact message: file, key path, what to do ------------------------------------------

BROKEN = {
    "missing group key": (
        SHOP.replace("description: The web shop's database.\n", ""),
        "{file}: description: required; add it",
    ),
    "wrong type": (
        SHOP.replace("  schedule: daily\n", "  schedule: daily\n  retries: two\n"),
        "{file}: dag.retries: input should be a valid integer, unable to parse string as an integer, got 'two'",
    ),
    "unknown dag key": (
        SHOP.replace("  schedule: daily\n", "  scheduel: daily\n"),
        "{file}: dag.scheduel: unknown key; remove it or fix its spelling "
        "(known here: dag_id, schedule, owner, tags, retries, max_active_runs, start_date)",
    ),
    "unknown top-level key": (
        SHOP.replace("kind: sql\n", "kind: sql\nmax_bad_ration: 0.1\n"),
        "{file}: max_bad_ration: unknown key; remove it or fix its spelling "
        "(known here: source, kind, conn_id, description, dag, entities, max_bad_ratio, plausible_dates)",
    ),
    "unknown kind": (
        SHOP.replace("kind: sql", "kind: ftp"),
        "{file}: kind: input should be 'sql', 'rest' or 'files', got 'ftp'",
    ),
    "unknown schedule": (
        SHOP.replace("schedule: daily", "schedule: hourly"),
        "{file}: dag.schedule: must be daily, weekly or a five-field cron expression in UTC, e.g. '30 1 * * *', "
        "got 'hourly'",
    ),
    "option out of range": (
        SHOP.replace("kind: sql\n", "kind: sql\nmax_bad_ratio: 5\n"),
        "{file}: max_bad_ratio: input should be less than or equal to 1, got 5",
    ),
    "no connection": (
        SHOP.replace("conn_id: shop_db\n", ""),
        "{file}: conn_id: required for a sql source; name the Airflow connection with its credentials",
    ),
    "bad entity name": (
        SHOP.replace("  orders:", "  Orders:"),
        "{file}: entities.Orders.[key]: 'Orders' is not a valid name: use lower-case letters, digits and _ "
        "(it names folders)",
    ),
    "file named otherwise": (
        SHOP.replace("source: shop", "source: store"),
        "{file}: source: 'store' must be the file's name; rename the file store.yml",
    ),
    "bad YAML": (
        SHOP.replace("  schedule: daily\n", "  schedule: [daily\n"),
        "{file}: line 7, column 9: not valid YAML (expected ',' or ']', but got ':'); "
        "check the indentation, colons and quotes",
    ),
    "not a mapping": (
        "- source: shop\n",
        "{file}: expected a mapping with the keys source, kind, conn_id, description, dag, entities, got list",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_config_names_file_and_key_path(tmp_path, case):
    text, expected = BROKEN[case]
    path = write(tmp_path, "shop.yml", text)
    with pytest.raises(SourceConfigError) as raised:
        read_source_file(path)
    assert str(raised.value) == expected.format(file=path)


def test_several_problems_of_a_file_are_all_named(tmp_path):
    text = SHOP.replace("kind: sql\n", "kind: sql\nmax_bad_ratio: -1\n").replace("schedule: daily", "schedule: 1 2")
    path = write(tmp_path, "shop.yml", text)
    with pytest.raises(SourceConfigError) as raised:
        read_source_file(path)
    assert str(raised.value).splitlines() == [
        f"{path}: dag.schedule: must be daily, weekly or a five-field cron expression in UTC, e.g. '30 1 * * *', "
        "got '1 2'",
        f"{path}: max_bad_ratio: input should be greater than or equal to 0, got -1",
    ]


def test_an_entity_problem_is_prefixed_with_file_and_entity(tmp_path):
    """The kind's parser names the key inside the entity; the group loader says which file and entity."""
    path = write(tmp_path, "shop.yml", SHOP.replace("    columns:\n      order_id: bigint\n", "    colums:\n"))
    path.write_text(path.read_text().replace("      updated_at: timestamp\n", ""))
    with pytest.raises(SourceConfigError) as raised:
        read_source_file(path)
    assert str(raised.value).startswith(f"{path}: entities.orders.colums: ")


def test_a_parent_that_is_not_an_entity_is_named(tmp_path):
    document = {
        "source": "api",
        "kind": "rest",
        "conn_id": "api",
        "description": "An API.",
        "entities": {
            "items": {
                "path": "/p/{resources.nope.id}",
                "parent": "nope",
                "key": "id",
                "columns": {"id": "bigint"},
            }
        },
    }
    with pytest.raises(SourceConfigError, match=r"^api\.yml: entities\.items\.(parent|path)"):
        parse_source_group(document, "api.yml")


def test_one_broken_file_does_not_hide_the_others_and_dag_ids_are_unique(tmp_path):
    write(tmp_path, "crm.yml", SHOP.replace("source: shop", "source: crm").replace("dag:\n", "dag:\n  dag_id: x\n"))
    write(tmp_path, "shop.yml", SHOP.replace("dag:\n", "dag:\n  dag_id: x\n"))
    write(tmp_path, "web.yml", SHOP.replace("source: shop", "source: web").replace("kind: sql", "kind: ftp"))
    write(tmp_path, "zoo.yml", SHOP.replace("source: shop", "source: zoo"))
    catalogue = load_sources(tmp_path)
    assert sorted(catalogue.groups) == ["crm", "zoo"]
    assert {path.name: str(error) for path, error in catalogue.errors.items()} == {
        "shop.yml": f"{tmp_path / 'shop.yml'}: dag.dag_id: 'x' is already the DAG of {tmp_path / 'crm.yml'}; "
        "give this source another dag_id",
        "web.yml": f"{tmp_path / 'web.yml'}: kind: input should be 'sql', 'rest' or 'files', got 'ftp'",
    }


def test_a_changed_file_is_read_again(tmp_path):
    path = write(tmp_path, "shop.yml", SHOP)
    assert read_source_file(path).dag.schedule == "daily"
    path.write_text(SHOP.replace("schedule: daily", "schedule: '15 3 * * *'  # later"))
    assert read_source_file(path).dag.schedule == "15 3 * * *"
