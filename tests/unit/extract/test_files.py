"""File drops from the inbox into raw: conversion, validation, quarantine, originals kept, reruns, S3 on moto; CSV
options (delimiter, encoding, header), JSON lines, and the declaration of each."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from medalflow.extract.config import load_source_group
from medalflow.extract.files import FileDropError, FileEntity, FileFormat, extract_file_drops, parse_file_entity
from medalflow.extract.metadata import METADATA_COLUMNS, IngestionContext
from medalflow.extract.quarantine import Limits, TooManyBadRecordsError
from medalflow.extract.schema import SchemaError
from medalflow.lake import Lake
from medalflow_demo.files import drop_path, write_file_drops
from medalflow_demo.world import World

DAY = date(2026, 1, 12)
FILES = load_source_group("files")
SHIPMENTS = FILES.entity("shipments")
PARTITION = f"raw/files/shipments/ingestion_date={DAY}"
DECLARED = list(SHIPMENTS.schema.columns)


def limits(max_bad_ratio: float = 0.01) -> Limits:
    return Limits.from_options({**FILES.options, "max_bad_ratio": max_bad_ratio})


def land(lake: Lake, run_id: str = "run-1", max_bad_ratio: float = 0.01) -> dict:
    context = IngestionContext("files", run_id, datetime(2026, 1, 13, 0, 5, tzinfo=UTC))
    return extract_file_drops(SHIPMENTS, lake, DAY, context, limits(max_bad_ratio))


def read(lake: Lake, relative: str) -> list[dict]:
    with lake.fs.open(lake.path(relative), "rb") as handle:
        return pq.read_table(handle).to_pylist()


def quarantined(lake: Lake, run_id: str = "run-1") -> list[dict]:
    path = lake.path(f"quarantine/files/shipments/ingestion_date={DAY}/{run_id}.jsonl")
    with lake.fs.open(path, "rb") as handle:
        return [json.loads(line) for line in handle.read().splitlines()]


def expected(world: World, partner: str) -> list[dict]:
    rows = sorted(world.shipment_changes(DAY, partner), key=lambda r: (r["updated_at"], r["shipment_id"]))
    return [{name: row[name] for name in DECLARED} for row in rows]


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_both_partners_land_as_typed_parquet_with_partner_and_file(lake, world):
    write_file_drops(world, DAY, lake.url("inbox"))
    result = land(lake)
    assert lake.list_files(PARTITION) == [
        f"{PARTITION}/oceanic-oceanic_shipments_20260112.parquet",
        f"{PARTITION}/skyfreight-skyfreight_shipments_20260112.parquet",
    ]
    for partner in ("oceanic", "skyfreight"):
        rows = read(lake, f"{PARTITION}/{partner}-{partner}_shipments_20260112.parquet")
        assert [{name: row[name] for name in DECLARED} for row in rows] == expected(world, partner)
        assert {row["partner"] for row in rows} == {partner}
        assert {row["_file"] for row in rows} == {drop_path(lake.url("inbox"), partner, DAY)}
        assert {(row["_source"], row["_run_id"], row["_op"]) for row in rows} == {("files", "run-1", "U")}
    assert (
        result["rows"] == result["source_total"] == len(expected(world, "oceanic")) + len(expected(world, "skyfreight"))
    )
    schema = pq.read_schema(lake.path(f"{PARTITION}/oceanic-oceanic_shipments_20260112.parquet"))
    assert str(schema.field("shipped_at").type) == "timestamp[us]"
    assert str(schema.field("eta").type) == "date32[day]"
    assert schema.names[-6:] == ["partner", "_file", *METADATA_COLUMNS]


def test_the_originals_stay_in_the_inbox_untouched(lake, world):
    written = write_file_drops(world, DAY, lake.url("inbox"))
    before = {url: lake.fs.cat_file(url) for url in written}
    land(lake)
    assert {url: lake.fs.cat_file(url) for url in written} == before


def test_rerun_replaces_the_same_objects_with_the_same_rows(lake, world):
    write_file_drops(world, DAY, lake.url("inbox"))
    land(lake, "run-1")
    first = {path: read(lake, path) for path in lake.list_files("raw")}
    land(lake, "run-2")
    second = {path: read(lake, path) for path in lake.list_files("raw")}
    assert list(second) == list(first)

    def strip(rows):
        return [{k: v for k, v in row.items() if k not in METADATA_COLUMNS} for row in rows]

    assert {path: strip(rows) for path, rows in second.items()} == {path: strip(rows) for path, rows in first.items()}


@pytest.mark.parametrize(
    ("bad_row", "partner", "where", "field", "reason"),
    [
        ("bad_date", "oceanic", "oceanic_shipments_20260112.csv, line {line}", "shipped_at", "is not an ISO 8601"),
        ("bad_date", "skyfreight", "skyfreight_shipments_20260112.parquet, row {row}", "shipped_at", "plausible"),
        ("missing_required", "oceanic", "oceanic_shipments_20260112.csv, line {line}", "shipment_id", "key field"),
    ],
)
def test_bad_rows_are_quarantined_naming_file_line_and_field(lake, world, bad_row, partner, where, field, reason):
    write_file_drops(world, DAY, lake.url("inbox"), partners=[partner], bad_row=bad_row)
    other = "skyfreight" if partner == "oceanic" else "oceanic"
    write_file_drops(world, DAY, lake.url("inbox"), partners=[other])
    result = land(lake, max_bad_ratio=0.05)
    good = len(expected(world, partner))
    (entry,) = quarantined(lake)
    # The broken row is appended after the good ones: data line good + 2 (after the header), row good + 1.
    assert where.format(line=good + 2, row=good + 1) in entry["reason"]
    assert entry["field"] == field
    assert reason in entry["reason"]
    assert entry["run_id"] == "run-1"
    assert result["quarantined"] == 1
    assert result["rows"] + result["quarantined"] == result["source_total"]
    assert len(read(lake, f"{PARTITION}/{partner}-{partner}_shipments_20260112.parquet")) == good


def test_too_many_bad_rows_fail_the_run_and_publish_nothing(lake, world):
    write_file_drops(world, DAY, lake.url("inbox"), bad_row="bad_date")
    with pytest.raises(TooManyBadRecordsError, match=r"2 of \d+ record\(s\).*oceanic_shipments_20260112.csv, line"):
        land(lake)
    assert not lake.list_files("raw")
    assert len(quarantined(lake)) == 2


def test_a_row_with_the_wrong_number_of_fields_is_quarantined_with_its_line(lake, world):
    write_file_drops(world, DAY, lake.url("inbox"))
    csv_path = lake.path(f"inbox/oceanic/shipments/{DAY}/oceanic_shipments_20260112.csv")
    lines = lake.fs.cat_file(csv_path).decode().splitlines()
    lines.insert(3, "1,2,3")  # becomes line 4
    lake.fs.pipe_file(csv_path, ("\n".join(lines) + "\n").encode())
    result = land(lake, max_bad_ratio=0.05)
    (entry,) = quarantined(lake)
    assert entry["location"].endswith("oceanic_shipments_20260112.csv, line 4")
    assert entry["record"] == "1,2,3"
    rows = read(lake, f"{PARTITION}/oceanic-oceanic_shipments_20260112.parquet")
    assert [row["shipment_id"] for row in rows] == [row["shipment_id"] for row in expected(world, "oceanic")]
    assert result["rows"] + result["quarantined"] == result["source_total"]


def rewrite_csv(lake: Lake, transform) -> None:
    path = lake.path(f"inbox/oceanic/shipments/{DAY}/oceanic_shipments_20260112.csv")
    rows = [line.split(",") for line in lake.fs.cat_file(path).decode().splitlines()]
    lake.fs.pipe_file(path, ("\n".join(",".join(row) for row in transform(rows)) + "\n").encode())


def test_a_missing_column_fails_naming_source_entity_column_and_file(lake, world):
    write_file_drops(world, DAY, lake.url("inbox"))
    position = 2  # carrier

    rewrite_csv(lake, lambda rows: [row[:position] + row[position + 1 :] for row in rows])
    with pytest.raises(
        SchemaError, match=r"oceanic_shipments_20260112.csv: source 'files', entity 'shipments' is missing .* carrier"
    ):
        land(lake)
    assert not lake.list_files("raw")


def test_an_added_column_passes_through_as_text(lake, world):
    write_file_drops(world, DAY, lake.url("inbox"))
    rewrite_csv(lake, lambda rows: [[*rows[0], "customs_ref"]] + [[*row, "CR-7"] for row in rows[1:]])
    land(lake)
    rows = read(lake, f"{PARTITION}/oceanic-oceanic_shipments_20260112.parquet")
    assert {row["customs_ref"] for row in rows} == {"CR-7"}
    assert [{name: row[name] for name in DECLARED} for row in rows] == expected(world, "oceanic")


def test_a_missing_daily_file_fails_naming_partner_and_folder(lake, world):
    write_file_drops(world, DAY, lake.url("inbox"), partners=["oceanic"])
    with pytest.raises(
        FileDropError, match=r"no \.parquet file from partner 'skyfreight' in .*skyfreight/shipments/2026"
    ):
        land(lake)


def test_files_on_s3_go_through_the_same_code(s3_lake_uri, world):
    lake = Lake(s3_lake_uri)
    written = write_file_drops(world, DAY, lake.url("inbox"), bad_row="missing_required")
    result = land(lake, max_bad_ratio=0.05)
    assert result["quarantined"] == 2
    assert lake.list_files(PARTITION) == [
        f"{PARTITION}/oceanic-oceanic_shipments_20260112.parquet",
        f"{PARTITION}/skyfreight-skyfreight_shipments_20260112.parquet",
    ]
    rows = read(lake, f"{PARTITION}/oceanic-oceanic_shipments_20260112.parquet")
    assert rows[0]["_file"] == written[0]
    assert written[0].startswith("s3://")
    assert len(quarantined(lake)) == 2
    assert all(lake.fs.exists(url) for url in written)


# --- formats and their options, declared per entity or per partner ------------------------------------------------

GOODS_COLUMNS = {"item_id": "bigint", "name": "string", "price": "decimal(10,2)", "updated_at": "timestamp"}


def goods(partners: dict, **options) -> FileEntity:
    return parse_file_entity(
        "files", "goods", {"key": "item_id", "columns": GOODS_COLUMNS, "partners": partners, **options}
    )


def drop(lake: Lake, partner: str, name: str, content: bytes) -> str:
    path = f"inbox/{partner}/goods/{DAY}/{name}"
    lake.fs.makedirs(lake.path(path).rsplit("/", 1)[0], exist_ok=True)
    lake.fs.pipe_file(lake.path(path), content)
    return path


def land_goods(lake: Lake, entity: FileEntity, max_bad_ratio: float = 0.75) -> dict:
    context = IngestionContext("files", "run-1", datetime(2026, 1, 13, 0, 5, tzinfo=UTC))
    return extract_file_drops(entity, lake, DAY, context, Limits(max_bad_ratio=max_bad_ratio))


def goods_rows(lake: Lake, partner: str, stem: str) -> list[tuple]:
    rows = read(lake, f"raw/files/goods/ingestion_date={DAY}/{partner}-{stem}.parquet")
    return [(row["item_id"], row["name"], row["price"], row["updated_at"], row["partner"]) for row in rows]


def goods_quarantine(lake: Lake) -> list[dict]:
    path = lake.path(f"quarantine/files/goods/ingestion_date={DAY}/run-1.jsonl")
    with lake.fs.open(path, "rb") as handle:
        return [json.loads(line) for line in handle.read().splitlines()]


def test_csv_with_a_declared_delimiter_and_a_windows_encoding(lake):
    entity = goods({"lojas": {"format": "csv", "delimiter": ";", "encoding": "cp1252"}})
    content = "item_id;name;price;updated_at\n1;Café São João;12,50;2026-01-12T08:00:00\n".replace("12,50", "12.50")
    drop(lake, "lojas", "goods.csv", content.encode("cp1252"))
    result = land_goods(lake, entity)
    assert result["rows"] == 1
    assert goods_rows(lake, "lojas", "goods") == [
        (1, "Café São João", Decimal("12.50"), datetime(2026, 1, 12, 8), "lojas")
    ]


def test_csv_without_a_header_takes_the_declared_column_order(lake):
    entity = goods({"lojas": "csv"}, header=False, delimiter="|", encoding="latin-1")
    lines = ["1|Pão|3.20|2026-01-12T08:00:00", "2|Maçã|1.10", "3|Açaí|7.00|2026-01-12T09:30:00"]
    drop(lake, "lojas", "goods.csv", ("\n".join(lines) + "\n").encode("latin-1"))
    result = land_goods(lake, entity)
    assert [row[:2] for row in goods_rows(lake, "lojas", "goods")] == [(1, "Pão"), (3, "Açaí")]
    (entry,) = goods_quarantine(lake)
    assert entry["location"].endswith("goods.csv, line 2")  # no header: the first line is the first row
    assert "3 field(s) where the file has 4 column(s)" in entry["reason"]
    assert result["rows"] + result["quarantined"] == result["source_total"] == 3


def test_json_lines_land_typed_and_bad_lines_are_quarantined_with_their_line(lake):
    entity = goods({"mercado": "jsonl"})
    lines = [
        '{"item_id": 1, "name": "Arroz", "price": 5.5, "updated_at": "2026-01-12T08:00:00", "origin": "GO"}',
        "",
        '{"item_id": 2, "name": "Feijão", "price": "abc", "updated_at": "2026-01-12T08:00:00"}',
        "{not json",
        "[1, 2]",
        '{"item_id": 3, "name": "Milho", "updated_at": "2026-01-12T10:00:00"}',
    ]
    drop(lake, "mercado", "goods.jsonl", ("\n".join(lines) + "\n").encode())
    result = land_goods(lake, entity)
    rows = read(lake, f"raw/files/goods/ingestion_date={DAY}/mercado-goods.parquet")
    assert [(row["item_id"], row["price"], row["origin"]) for row in rows] == [
        (1, Decimal("5.50"), "GO"),
        (3, None, None),  # a key the object leaves out is null; a key only some objects have passes as text
    ]
    reasons = {entry["location"].rsplit(", ", 1)[1]: entry for entry in goods_quarantine(lake)}
    assert sorted(reasons) == ["line 3 (item_id=2)", "line 4", "line 5"]
    assert reasons["line 3 (item_id=2)"]["field"] == "price"
    assert "not JSON" in reasons["line 4"]["reason"]
    assert "a JSON list, not an object" in reasons["line 5"]["reason"]
    assert result["rows"] + result["quarantined"] == result["source_total"] == 5


@pytest.mark.parametrize(
    ("partner", "name", "content"),
    [
        ("lojas", "goods.csv", "item_id,name,price,updated_at\n1,Café,1.00,2026-01-12T08:00:00\n"),
        ("lojas", "goods.csv", "item_id,descrição,name,price,updated_at\n1,x,Café,1.00,2026-01-12T08:00:00\n"),
        ("mercado", "goods.jsonl", '{"item_id": 1, "name": "Café", "price": 1, "updated_at": "2026-01-12"}\n'),
    ],
    ids=["csv-body", "csv-header", "jsonl"],
)
def test_a_file_in_another_encoding_than_declared_fails_naming_the_file(lake, partner, name, content):
    entity = goods({"lojas": "csv", "mercado": "jsonl"}, require_daily_file=False)
    drop(lake, partner, name, content.encode("cp1252"))
    with pytest.raises(
        FileDropError,
        match=rf"file .*/{partner}/goods/{DAY}/{name} from partner '{partner}' is not "
        r"utf-8 text .*declare the encoding it is written in",
    ):
        land_goods(lake, entity)
    assert not lake.list_files("raw")


def test_partner_options_override_the_entity_defaults(lake):
    entity = goods(
        {"lojas": "csv", "matriz": {"format": "csv", "delimiter": ",", "encoding": "utf-8"}, "web": "parquet"},
        delimiter=";",
        encoding="cp1252",
    )
    assert entity.formats["lojas"] == FileFormat("csv", ";", "cp1252", True)
    assert entity.formats["matriz"] == FileFormat("csv", ",", "utf-8", True)
    assert entity.partners == {"lojas": "csv", "matriz": "csv", "web": "parquet"}


def test_without_require_daily_file_a_missing_file_lands_an_empty_partition(lake):
    result = land_goods(lake, goods({"lojas": "csv"}, require_daily_file=False))
    assert result["rows"] == 0
    assert lake.list_files(f"raw/files/goods/ingestion_date={DAY}") == [
        f"raw/files/goods/ingestion_date={DAY}/empty.parquet"
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"partners": {"lojas": "xml"}}, "partners.lojas.format: 'xml' is not one of csv, parquet, jsonl"),
        ({"partners": {"lojas": {"format": "csv", "delimiter": ";;"}}}, "partners.lojas.delimiter: ';;' must be one"),
        ({"partners": {"lojas": {"format": "csv", "sep": ";"}}}, "partners.lojas.sep: unknown setting"),
        ({"partners": {"web": {"format": "parquet", "header": False}}}, "partners.web.header: only for format csv"),
        ({"encoding": "klingon"}, "encoding: 'klingon' is not a known encoding"),
        ({"header": "no"}, "header: expected true or false"),
        ({"require_daily_file": "yes"}, "require_daily_file: expected true or false"),
        ({"inbox": "inbox/{partner}/{date}"}, "inbox: 'inbox/{partner}/{date}' may only use"),
        ({"formats": {}}, "formats: unknown setting"),
        ({"partners": None}, "partners: expected a mapping"),
    ],
)
def test_declaration_mistakes_name_the_key_first(spec, message):
    with pytest.raises(SchemaError) as raised:
        parse_file_entity(
            "files", "goods", {"key": "item_id", "columns": GOODS_COLUMNS, "partners": {"lojas": "csv"}, **spec}
        )
    assert str(raised.value).startswith(message)
