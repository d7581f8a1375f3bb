"""Source configs: the three new groups parse, and mistakes in a config are named."""

from __future__ import annotations

from datetime import date

import pytest

from medalflow.extract.config import load_source_group, parse_source_group
from medalflow.extract.files import FileEntity
from medalflow.extract.rest import RestEntity, RestSettings
from medalflow.extract.schema import SchemaError


def test_partner_api_entities_are_interval_endpoints():
    group = load_source_group("partner")
    assert (group.kind, group.conn_id) == ("rest", "medalflow_partner_api")
    assert sorted(group.entities) == ["fx_rates", "payments", "shipments"]
    assert all(
        isinstance(entity, RestEntity) and entity.interval_params == ("start", "end")
        for entity in group.entities.values()
    )
    assert group.entity("fx_rates").key == ("rate_date", "base_currency")
    settings = RestSettings.from_options(group.options)
    assert settings.limits.max_bad_ratio == pytest.approx(0.01)
    assert settings.max_attempts >= 2


def test_forecast_children_are_fetched_per_project():
    group = load_source_group("forecast")
    assert group.entity("projects").parent is None
    for name in ("baselines", "scenarios"):
        entity = group.entity(name)
        assert (entity.parent, entity.parent_key, entity.interval_params) == ("projects", "project_id", None)


def test_file_drops_name_their_partners_and_formats():
    entity = load_source_group("files").entity("shipments")
    assert isinstance(entity, FileEntity)
    assert dict(entity.partners) == {"oceanic": "csv", "skyfreight": "parquet"}
    assert entity.inbox_folder("oceanic", date(2026, 1, 12)) == "inbox/oceanic/shipments/2026-01-12"


def document(**entity):
    return {
        "source": "s",
        "kind": "rest",
        "entities": {"e": {"path": "/e", "key": "id", "columns": {"id": "bigint"}, **entity}},
    }


@pytest.mark.parametrize(
    ("entity", "message"),
    [
        ({"parent": "nope", "parent_key": "id", "path": "/p/{id}"}, "has parent 'nope', not an entity"),
        ({"parent": "e"}, "parent and parent_key go together"),
        ({"parent": "e", "parent_key": "id"}, r"must contain \{id\}"),
    ],
)
def test_config_mistakes_are_named(entity, message):
    with pytest.raises(SchemaError, match=message):
        parse_source_group(document(**entity), "test.yml")


def test_a_missing_entity_key_names_the_entity():
    broken = {"source": "s", "kind": "files", "entities": {"drops": {"key": "id", "columns": {"id": "bigint"}}}}
    with pytest.raises(SchemaError, match=r"test\.yml: entity 'drops' is missing key 'partners'"):
        parse_source_group(broken, "test.yml")
