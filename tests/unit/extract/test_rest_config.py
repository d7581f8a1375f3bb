"""The REST vocabulary of a source YAML: what parses, and every mistake named by its key path."""

from __future__ import annotations

import pytest

from medalflow.extract.config import parse_source_group
from medalflow.extract.rest import IncrementalSpec, PaginationSpec, RestSettings, parse_rest_entity
from medalflow.extract.rest.spec import INHERIT, AuthSpec
from medalflow.extract.schema import SchemaError


def entity(**overrides):
    return {"path": "/things", "key": "id", "columns": {"id": "bigint"}, **overrides}


def test_a_nested_column_reads_its_path_and_the_key_may_name_that_path():
    parsed = parse_rest_entity(
        "s",
        "orders",
        entity(
            key="customer.id",
            columns={"customer_id": {"path": "customer.id", "type": "bigint"}, "note": "string"},
        ),
    )
    assert parsed.key == ("customer_id",)
    assert dict(parsed.column_paths) == {"customer_id": ("customer", "id"), "note": ("note",)}
    assert dict(parsed.schema.columns) == {"customer_id": "bigint", "note": "string"}
    assert (parsed.auth, parsed.pagination, parsed.incremental) == (INHERIT, INHERIT, INHERIT)


def test_a_parent_field_placeholder_makes_a_child_entity():
    child = parse_rest_entity("f", "baselines", entity(path="/projects/{resources.projects.project_id}/baseline"))
    assert (child.parent, child.parent_key) == ("projects", "project_id")
    assert child.placeholder == "{resources.projects.project_id}"
    in_params = parse_rest_entity("f", "notes", entity(params={"project": "{resources.projects.id}"}))
    assert (in_params.parent, in_params.parent_key) == ("projects", "id")


def test_an_entity_block_overrides_the_sources_and_null_switches_incremental_off():
    settings = RestSettings.from_options(
        {
            "pagination": {"type": "page_number", "page_size": 10},
            "incremental": {"start_param": "from", "end_param": "to"},
            "headers": {"X-Tenant": "a"},
        }
    )
    inherits = parse_rest_entity("s", "a", entity(headers={"X-Version": "2"})).effective(settings)
    assert inherits.pagination.type == "page_number"
    assert inherits.incremental.start_param == "from"
    assert dict(inherits.headers) == {"X-Tenant": "a", "X-Version": "2"}
    own = parse_rest_entity("s", "b", entity(pagination="header_link", incremental=None)).effective(settings)
    assert (own.pagination.type, own.incremental) == ("header_link", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (entity(pagination={"type": "cursr"}), r"^pagination\.type: 'cursr' is not one of single_page, page_number"),
        (entity(pagination={"type": "cursor"}), r"^pagination\.cursor_path: required for pagination type 'cursor'"),
        (entity(pagination={"type": "json_link"}), r"^pagination\.next_url_path: required"),
        (entity(pagination={"type": "offset", "page": 2}), r"^pagination\.page: unknown key .*accepted: limit, "),
        (entity(pagination={"type": "offset", "limit": 0}), r"^pagination\.limit: expected a positive integer"),
        (entity(pagination={"type": "page_number", "total_path": "$"}), r"^pagination\.total_path: must name a field"),
        (entity(data_selector="results..items"), r"^data_selector: 'results\.\.items' is not a JSON path"),
        (
            entity(auth={"type": "api_key", "value": "abc123"}),
            r"^auth\.value: secrets never go in the YAML.*value_from",
        ),
        (entity(auth={"type": "http_basic", "password": "x"}), r"^auth\.password: secrets never go in the YAML"),
        (entity(auth={"type": "bearer", "token_from": "secret"}), r"^auth\.token_from: 'secret' is not a connection"),
        (entity(auth={"type": "oauth2_client_credentials"}), r"^auth\.token_url: required"),
        (entity(auth={"type": "bearer_login", "login_path": None}), r"^auth\.login_path: expected a non-empty name"),
        (entity(pagination={"type": "cursor", "cursor_path": "c", "cursor_param": ""}), r"^pagination\.cursor_param: "),
        (entity(auth={"type": "kerberos"}), r"^auth\.type: 'kerberos' is not one of none, api_key"),
        (entity(headers={"Authorization": "Bearer x"}), r"^headers\.Authorization: looks like a credential"),
        (entity(api_key="x"), r"^api_key: unknown key for a REST entity \(secrets go in the Airflow connection\)"),
        (entity(columns={"customer.id": "bigint"}), r"^columns\.customer\.id: a column name cannot contain dots"),
        (entity(columns={"id": {"path": "a.id"}}), r"^columns\.id\.type: required"),
        (entity(columns={"id": "integer"}), r"^columns\.id: unknown column type 'integer'"),
        (entity(key="nope"), r"^key: 'nope' is not a declared column"),
        (entity(path="/p/{project_id}"), r"^path: '/p/\{project_id\}': a placeholder must read \{resources\."),
        (entity(path="/{resources.a.x}/{resources.b.y}"), r"^path: refers to more than one parent field"),
        (entity(incremental={"end_param": "to"}), r"^incremental\.start_param: required"),
        (entity(incremental={"start_param": "s", "format": "iso"}), r"^incremental\.format: 'iso' is not one of date"),
        (
            entity(incremental={"start_param": "s", "end_param": "e", "end_inclusive": True}),
            r"^incremental\.cursor_field: required when end_inclusive with format 'datetime'",
        ),
        (entity(incremental={"start_param": "since"}), r"^incremental\.cursor_field: required without end_param"),
        ({"key": "id", "columns": {"id": "bigint"}}, r"^path: required"),
    ],
)
def test_entity_mistakes_name_their_key_path(spec, message):
    with pytest.raises(SchemaError, match=message):
        parse_rest_entity("s", "e", spec)


def test_source_options_refuse_unknown_keys_naming_the_accepted_ones():
    with pytest.raises(
        SchemaError, match=r"^page_sise: unknown key for a REST source; accepted: auth, backoff_seconds"
    ):
        RestSettings.from_options({"page_sise": 100})
    with pytest.raises(SchemaError, match=r"^password: unknown key .*\(secrets go in the Airflow connection\)"):
        RestSettings.from_options({"password": "hunter2"})
    with pytest.raises(SchemaError, match=r"^timeout_seconds: expected a non-negative number"):
        RestSettings.from_options({"timeout_seconds": "soon"})
    with pytest.raises(SchemaError, match=r"^auth\.location: 'cookie' is not one of header, query"):
        RestSettings.from_options({"auth": {"type": "api_key", "location": "cookie"}})


def test_shorthands_and_defaults():
    assert AuthSpec.parse("http_basic").options == {"username_from": "login", "password_from": "password"}
    assert PaginationSpec.parse(None).type == "single_page"
    assert PaginationSpec.parse({"type": "cursor", "cursor_path": "$.meta.next"}).options["cursor_path"] == (
        "meta",
        "next",
    )
    assert IncrementalSpec.parse({"start_param": "since", "cursor_field": "updated_at"}).end_param is None
    settings = RestSettings.from_options({"max_bad_ratio": 0.1, "data_selector": "$"})
    assert (settings.limits.max_bad_ratio, settings.data_selector, settings.max_attempts) == (0.1, (), 6)


def source_document(**top):
    return {
        "source": "s",
        "kind": "rest",
        "conn_id": "c",
        "description": "d",
        "entities": {"e": entity()},
        **top,
    }


def test_the_config_loader_names_the_file_and_entity_of_a_rest_mistake():
    broken = source_document(entities={"e": entity(pagination={"type": "cursr"})})
    with pytest.raises(SchemaError, match=r"^x\.yml: entities\.e\.pagination\.type: 'cursr' is not one of"):
        parse_source_group(broken, "x.yml")


def test_the_config_loader_checks_source_level_blocks_at_parse_time():
    with pytest.raises(SchemaError, match=r"x\.yml: (pagination: )?pagination\.cursor_path: required"):
        parse_source_group(source_document(pagination={"type": "cursor"}), "x.yml")
    group = parse_source_group(source_document(auth={"type": "api_key", "name": "X-Key"}), "x.yml")
    assert RestSettings.from_options(group.options).auth.options["name"] == "X-Key"
