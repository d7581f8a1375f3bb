"""The PII scanner's detectors (medalflow.governance.pii_scan), value by value, and a scan of a small lake."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medalflow.governance.pii_scan import (
    ColumnClassification,
    UnclassifiedPiiError,
    check_lake,
    detect,
    is_valid_cnpj,
    is_valid_cpf,
    load_source_classification,
    looks_like_email,
    looks_like_person_name,
    looks_like_phone,
    looks_like_tax_id,
    scan_lake,
)
from medalflow.lake import Lake


@pytest.mark.parametrize("cpf", ["52998224725", "529.982.247-25", "111.444.777-35", "39053344705"])
def test_valid_cpfs(cpf):
    assert looks_like_tax_id(cpf)
    assert detect(cpf) == "tax_id"


@pytest.mark.parametrize("cnpj", ["11222333000181", "11.222.333/0001-81", "45.997.418/0001-53"])
def test_valid_cnpjs(cnpj):
    assert looks_like_tax_id(cnpj)


@pytest.mark.parametrize(
    "text",
    [
        "52998224724",  # second check digit wrong
        "529.982.247-15",  # first check digit wrong
        "111.111.111-11",  # repeated digits pass the arithmetic but are not a CPF
        "11222333000182",
        "11.222.333/0001-91",
        "00000000000000",
        "5299822472",  # too short
        "529.982.24-725",  # misplaced punctuation
    ],
)
def test_invalid_check_digits_or_shapes_are_not_tax_ids(text):
    assert not looks_like_tax_id(text)
    assert detect(text) != "tax_id"


def test_check_digit_functions_take_digits_only():
    assert is_valid_cpf("52998224725")
    assert not is_valid_cpf("529.982.247-25")
    assert is_valid_cnpj("11222333000181")
    assert not is_valid_cnpj("1122233300018")


@pytest.mark.parametrize("email", ["ana.souza@example.com.br", "vendas+pedidos@fornecedor.cn", "O'Neil@mail.co"])
def test_emails(email):
    assert looks_like_email(email)
    assert detect(email) == "email"


@pytest.mark.parametrize("text", ["ana.souza@", "@example.com", "ana souza@example.com", "ana@localhost"])
def test_not_emails(text):
    assert not looks_like_email(text)


@pytest.mark.parametrize(
    "phone",
    [
        "(11) 91234-5678",
        "11 91234 5678",
        "11912345678",
        "+55 11 3456-7890",
        "+55 (011) 3456 7890",
        "+5511912345678",
        "0800 123 4567",
        "0800-123-4567",
        "(011) 3456-7890",
        "+1 415 555 0100",
        "+44 20 7946 0958",
    ],
)
def test_phones(phone):
    assert looks_like_phone(phone)
    assert detect(phone) == "phone"


@pytest.mark.parametrize(
    "text",
    ["2026-01-10", "12345", "123.456.789-00", "ORD-2026-0001", "+0 123 4567", "1234-5678", "R$ 1.234,56", "12:30"],
)
def test_not_phones(text):
    assert not looks_like_phone(text)


@pytest.mark.parametrize(
    "name", ["Ana Gomes", "Benício da Cunha", "Sra. Juliana Silveira", "Maria Eduarda dos Santos", "João Pedro Costa"]
)
def test_person_names(name):
    assert looks_like_person_name(name)
    assert detect(name) == "person_name"


@pytest.mark.parametrize(
    "text",
    [
        "São Paulo",  # a place: its first word is not a first name
        "Porto Alegre",
        "Shenzhen Bright Electronics Co",
        "ana gomes",  # not capitalised: missed by design (documented)
        "Ana",  # one word
        "DHL Express",
        "Ana Gomes Silva Souza Lima Costa",  # six words
    ],
)
def test_not_person_names(text):
    assert not looks_like_person_name(text)


SOURCES_YML = """
version: 2
sources:
  - name: crm
    tables:
      - name: contacts
        columns:
          - name: email
            config:
              meta: {pii: true, pii_type: email}
          - name: account_code
            meta: {pii: false}
          - name: note
"""


def write_partition(lake_root: Path, day: str, table: pa.Table) -> None:
    folder = lake_root / "raw" / "crm" / "contacts" / f"ingestion_date={day}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-00000.parquet")


def test_scan_reports_rates_and_fails_on_unclassified_pii(tmp_path):
    project = tmp_path / "dbt_project"
    (project / "models" / "bronze" / "crm").mkdir(parents=True)
    (project / "models" / "bronze" / "crm" / "_crm__sources.yml").write_text(SOURCES_YML)
    classification = load_source_classification(project)
    assert classification["crm", "contacts"] == {
        "email": ColumnClassification(True, "email"),
        "account_code": ColumnClassification(False, None),
    }
    rows = {
        "email": ["ana@example.com", "bia@example.com", "caio@example.com", "dani@example.com"],
        "account_code": ["11912345678", "11912345679", "11912345670", "11912345671"],  # phone-shaped, reviewed
        "note": ["call 11 91234-5678", "(11) 91234-5678", "529.982.247-25", "ok"],
        "quantity": [1, 2, 3, 4],
    }
    write_partition(tmp_path / "lake", "2026-01-01", pa.table({**rows, "note": ["-", "-", "-", "-"]}))
    write_partition(tmp_path / "lake", "2026-01-02", pa.table(rows))
    lake = Lake(str(tmp_path / "lake"))

    report = scan_lake(lake, project, partitions=1, threshold=0.4)
    by_column = {finding.column: finding for finding in report.findings}
    assert set(by_column) == {"email", "account_code", "note"}, "text columns only"
    assert (by_column["email"].detected_type, by_column["email"].hit_rate) == ("email", 1.0)
    assert by_column["account_code"].detected_type == "phone"
    assert not by_column["account_code"].unclassified_pii(0.4)
    assert (by_column["note"].detected_type, by_column["note"].hits, by_column["note"].sampled) == ("phone", 1, 4)
    assert any("crm.contacts.email" in line and "classified pii (email)" in line for line in report.lines())
    assert all("ana@example.com" not in line for line in report.lines()), "the report never shows a value"

    assert check_lake(lake, project, partitions=1, threshold=0.5).unclassified() == []
    with pytest.raises(UnclassifiedPiiError, match=r"crm\.contacts\.note looks like phone in 25% of 4") as raised:
        check_lake(lake, project, partitions=1, threshold=0.25)
    assert "ana@example.com" not in str(raised.value)
    # Both partitions sampled: the older one's placeholders dilute the rate.
    assert {f.column: f.sampled for f in scan_lake(lake, project, partitions=2).findings}["note"] == 8


def test_cli_pii_scan_exit_code(tmp_path, monkeypatch, capsys):
    import medalflow_cli

    project = tmp_path / "dbt_project"
    (project / "models" / "bronze" / "crm").mkdir(parents=True)
    (project / "models" / "bronze" / "crm" / "_crm__sources.yml").write_text(SOURCES_YML)
    write_partition(
        tmp_path / "lake", "2026-01-02", pa.table({"note": ["(11) 91234-5678", "ok"], "email": ["a@b.co"] * 2})
    )
    monkeypatch.setenv("MEDALFLOW_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("MEDALFLOW_DBT_PROJECT_DIR", str(project))

    assert medalflow_cli.main(["pii-scan", "--threshold", "0.6"]) == 0
    assert "crm.contacts.note" in capsys.readouterr().out
    assert medalflow_cli.main(["pii-scan", "--threshold", "0.5"]) == 1
    assert "crm.contacts.note looks like phone in 50% of 2" in capsys.readouterr().err
