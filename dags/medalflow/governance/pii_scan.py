"""A PII scanner for the raw zone: samples each source entity's latest partitions, detects personal data per column,
and fails on a column that looks personal but is not classified (``meta: {pii: true, pii_type: ...}``) in the dbt
sources (``dbt_project/models/bronze/<source>/_<source>__sources.yml``).

Classification is what makes silver protect a column (a keyed hash, ``dbt_project/macros/pii.sql``): a new column full
of e-mails that nobody flagged would otherwise flow to silver in clear. The scanner is the safety net.

Detectors (pure Python, one value at a time; a column's hit rate is the share of its non-empty sampled text values a
detector accepts):

Sampling: per entity, the latest ``partitions`` partitions that hold rows (default 3), at most ``max_rows`` non-empty
text values per column (default 2000): bounded work however large the lake grows.

* ``tax_id``: a CPF (11 digits) or CNPJ (14 digits), formatted (``123.456.789-09``, ``12.345.678/0001-95``) or digits
  only, with valid check digits (a random 11-digit number passes by chance 1 time in 100).
* ``email``: ``local@domain.tld``.
* ``phone``: E.164 (``+5511912345678``, ``+1 415 555 0100``) and Brazilian formats (``(11) 91234-5678``,
  ``11 91234 5678``, ``+55 11 3456-7890``, ``0800 123 4567``), formatted or digits only.
* ``person_name``: two to five words, each capitalised, the first a Brazilian first name (a list shipped with the
  package, ``first_names_pt_br.txt``), Portuguese particles (da, de, do, dos, das, e) allowed in between, an optional
  title (Sr., Sra., Dr., ...). False-positive profile: companies, streets or places whose first word is a common first
  name ("Vitória Comércio Ltda", "Santa Luzia") hit; names of people with first names missing from the list, or
  written in capitals or lower case, are missed; that is why the threshold is a rate, not a single hit.
* Numeric-looking text is the known weak spot of ``phone``: a 10- to 13-digit code stored as text (an account number)
  reads as a phone. Classify such a column ``pii: false`` in the sources to say it was looked at.

Heavy imports (pyarrow, fsspec, yaml) happen inside functions: nothing costs anything at DAG parse time.
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medalflow.lake import Lake

PII_TYPES = ("tax_id", "email", "phone", "person_name")
# A column is personal when at least this share of its sampled values is detected as one type.
DEFAULT_THRESHOLD = 0.3
DEFAULT_PARTITIONS = 3
DEFAULT_MAX_ROWS = 2000
RAW_ZONE = "raw"

# --- detectors ---------------------------------------------------------------------------------------------------

_NON_DIGITS = re.compile(r"\D")
_CPF_FORMATTED = re.compile(r"^\d{3}\.\d{3}\.\d{3}-\d{2}$")
_CNPJ_FORMATTED = re.compile(r"^\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_PHONE_CHARACTERS = re.compile(r"^\+?[\d\s().-]+$")
_NAME_WORD = re.compile(r"^[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:-[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+)?$")
_NAME_PARTICLES = frozenset({"da", "de", "do", "das", "dos", "e", "di", "del"})
_NAME_TITLES = frozenset({"sr.", "sra.", "srta.", "dr.", "dra.", "prof.", "profa."})


def _check_digit(digits: str, weights: Iterable[int]) -> int:
    remainder = sum(int(digit) * weight for digit, weight in zip(digits, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def is_valid_cpf(digits: str) -> bool:
    """11 digits whose two check digits match (and not one digit repeated, which passes the arithmetic)."""
    if len(digits) != 11 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    first = _check_digit(digits[:9], range(10, 1, -1))
    second = _check_digit(digits[:10], range(11, 1, -1))
    return digits[9:] == f"{first}{second}"


def is_valid_cnpj(digits: str) -> bool:
    """14 digits whose two check digits match (and not one digit repeated)."""
    if len(digits) != 14 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    first = _check_digit(digits[:12], (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2))
    second = _check_digit(digits[:13], (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2))
    return digits[12:] == f"{first}{second}"


def looks_like_tax_id(value: str) -> bool:
    """A CPF or CNPJ with valid check digits, formatted or digits only."""
    text = value.strip()
    if text.isdigit():
        return is_valid_cpf(text) or is_valid_cnpj(text)
    if _CPF_FORMATTED.match(text):
        return is_valid_cpf(_NON_DIGITS.sub("", text))
    if _CNPJ_FORMATTED.match(text):
        return is_valid_cnpj(_NON_DIGITS.sub("", text))
    return False


def looks_like_email(value: str) -> bool:
    return bool(_EMAIL.match(value.strip()))


def looks_like_phone(value: str) -> bool:
    """E.164 or a Brazilian number: area code (DDD) + 8 or 9 digits, with +55 or a 0 trunk prefix, or 0800-style."""
    text = value.strip()
    # CPF/CNPJ-shaped text with wrong check digits is a bad document (or a code), not a phone.
    if not _PHONE_CHARACTERS.match(text) or _CPF_FORMATTED.match(text) or _CNPJ_FORMATTED.match(text):
        return False
    digits = _NON_DIGITS.sub("", text)
    if text.startswith("+"):
        return 8 <= len(digits) <= 15 and digits[0] != "0"
    if digits.startswith("0"):
        # 0800/0300/0500 numbers (11 digits) or a trunk prefix before the area code (0 + 10 or 11 digits).
        return len(digits) in (11, 12)
    if digits.startswith("55") and len(digits) in (12, 13):
        return True
    return len(digits) in (10, 11) and digits[0] != "0"


@functools.cache
def first_names() -> frozenset[str]:
    """The shipped list of Brazilian first names, lower-cased."""
    path = Path(__file__).with_name("first_names_pt_br.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def looks_like_person_name(value: str) -> bool:
    words = value.split()
    if words and words[0].lower() in _NAME_TITLES:
        words = words[1:]
    if not 2 <= len(words) <= 5 or words[0].lower() not in first_names():
        return False
    capitalised = [word for word in words if word not in _NAME_PARTICLES]
    return len(capitalised) >= 2 and all(_NAME_WORD.match(word) for word in capitalised)


# In priority order: a formatted CPF is also made of phone characters, and the first match wins.
DETECTORS = {
    "email": looks_like_email,
    "tax_id": looks_like_tax_id,
    "phone": looks_like_phone,
    "person_name": looks_like_person_name,
}


def detect(value: str) -> str | None:
    """The PII type of one value, or None."""
    for pii_type, detector in DETECTORS.items():
        if detector(value):
            return pii_type
    return None


# --- classification (dbt sources) ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ColumnClassification:
    pii: bool
    pii_type: str | None


def _column_meta(column: Mapping[str, Any]) -> Mapping[str, Any]:
    """dbt 1.10+ puts meta under config; the top-level form is still read."""
    return {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}


def load_source_classification(dbt_project_dir: Path) -> dict[tuple[str, str], dict[str, ColumnClassification]]:
    """(source, table) -> column -> its classification, from every ``_*__sources.yml`` of the dbt project.

    A column with ``pii: true`` is personal (``pii_type`` says what); ``pii: false`` records that it was looked at
    and is not; a column without ``pii`` is unclassified."""
    import yaml

    classification: dict[tuple[str, str], dict[str, ColumnClassification]] = {}
    for path in sorted((dbt_project_dir / "models").rglob("_*__sources.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for source in document.get("sources") or []:
            for table in source.get("tables") or []:
                columns = classification.setdefault((source["name"], table["name"]), {})
                for column in table.get("columns") or []:
                    meta = _column_meta(column)
                    if "pii" in meta:
                        columns[column["name"]] = ColumnClassification(bool(meta["pii"]), meta.get("pii_type"))
    return classification


# --- sampling the lake --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ColumnFinding:
    """One raw column's scan: what was detected in how many of its sampled values, and how it is classified."""

    source: str
    entity: str
    column: str
    sampled: int
    detected_type: str | None
    hits: int
    classification: ColumnClassification | None

    @property
    def hit_rate(self) -> float:
        return self.hits / self.sampled if self.sampled else 0.0

    @property
    def location(self) -> str:
        return f"{self.source}.{self.entity}.{self.column}"

    def looks_personal(self, threshold: float) -> bool:
        return self.detected_type is not None and self.hit_rate >= threshold

    def unclassified_pii(self, threshold: float) -> bool:
        """Looks personal, and the sources do not flag it pii: true (pii: false is a reviewed decision)."""
        return self.looks_personal(threshold) and self.classification is None


@dataclasses.dataclass(frozen=True)
class ScanReport:
    findings: tuple[ColumnFinding, ...]
    threshold: float

    def unclassified(self) -> list[ColumnFinding]:
        return [finding for finding in self.findings if finding.unclassified_pii(self.threshold)]

    def lines(self) -> list[str]:
        """One line per scanned column, for a terminal or a task log (counts and rates only, never a value)."""
        rows = []
        for finding in self.findings:
            if finding.classification is None:
                status = "UNCLASSIFIED PII" if finding.unclassified_pii(self.threshold) else "-"
            elif finding.classification.pii:
                status = f"classified pii ({finding.classification.pii_type})"
            else:
                status = "classified not pii"
            detected = finding.detected_type or "-"
            rows.append(
                f"{finding.location:<45} {detected:<12} {finding.hit_rate:>6.1%} of {finding.sampled:>5}  {status}"
            )
        return rows


class UnclassifiedPiiError(RuntimeError):
    """Raw columns look personal but the dbt sources do not classify them."""


def _partitions(lake: Lake, entity_path: str) -> list[str]:
    """The entity's partitions, oldest first."""
    base = lake.path(entity_path)
    lake.fs.invalidate_cache(base)
    if not lake.fs.exists(base):
        return []
    folders = [
        posixpath.basename(path.rstrip("/"))
        for path in lake.fs.ls(base, detail=False)
        if posixpath.basename(path.rstrip("/")).startswith("ingestion_date=")
    ]
    return [posixpath.join(entity_path, folder) for folder in sorted(folders)]


def sample_text_columns(lake: Lake, entity_path: str, partitions: int, max_rows: int) -> dict[str, list[str]]:
    """Up to ``max_rows`` non-empty text values per column from the entity's latest ``partitions`` that hold rows,
    newest first (a CDC source lands empty partitions on days nothing changed: they are passed over)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    samples: dict[str, list[str]] = {}
    sampled_partitions = 0
    for partition in reversed(_partitions(lake, entity_path)):
        if sampled_partitions == partitions:
            break
        tables = []
        for relative in lake.list_files(partition):
            if relative.endswith(".parquet"):
                with lake.fs.open(lake.path(relative), "rb") as file:
                    tables.append(pq.read_table(file))
        if not any(table.num_rows for table in tables):
            continue
        sampled_partitions += 1
        for table in tables:
            for field in table.schema:
                if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
                    continue
                values = samples.setdefault(field.name, [])
                if (room := max_rows - len(values)) > 0:
                    column = table.column(field.name).to_pylist()
                    values.extend([value for value in column if value and value.strip()][:room])
    return samples


def scan_column(source: str, entity: str, column: str, values: list[str], classification) -> ColumnFinding:
    counts: dict[str, int] = {}
    for value in values:
        if pii_type := detect(value):
            counts[pii_type] = counts.get(pii_type, 0) + 1
    detected, hits = max(counts.items(), key=lambda item: item[1]) if counts else (None, 0)
    return ColumnFinding(source, entity, column, len(values), detected, hits, classification)


def _entities(lake: Lake) -> Iterator[tuple[str, str]]:
    """(source, entity) of every entity folder in the raw zone, sorted."""
    base = lake.path(RAW_ZONE)
    lake.fs.invalidate_cache(base)
    if not lake.fs.exists(base):
        return
    for source_path in sorted(lake.fs.ls(base, detail=False)):
        if not lake.fs.isdir(source_path):
            continue
        for entity_path in sorted(lake.fs.ls(source_path, detail=False)):
            if lake.fs.isdir(entity_path):
                yield posixpath.basename(source_path.rstrip("/")), posixpath.basename(entity_path.rstrip("/"))


def scan_lake(
    lake: Lake,
    dbt_project_dir: Path,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    max_rows: int = DEFAULT_MAX_ROWS,
    threshold: float = DEFAULT_THRESHOLD,
) -> ScanReport:
    """Scan every entity in the lake's raw zone (an entity the sources do not declare has nothing classified)."""
    classification = load_source_classification(dbt_project_dir)
    findings = []
    for source, entity in _entities(lake):
        columns = classification.get((source, entity), {})
        samples = sample_text_columns(lake, posixpath.join(RAW_ZONE, source, entity), partitions, max_rows)
        for column, values in sorted(samples.items()):
            findings.append(scan_column(source, entity, column, values, columns.get(column)))
    return ScanReport(tuple(findings), threshold)


def check_lake(lake: Lake, dbt_project_dir: Path, **options: Any) -> ScanReport:
    """scan_lake, raising UnclassifiedPiiError (naming each column and what to do) when a column looks personal but
    is not classified."""
    report = scan_lake(lake, dbt_project_dir, **options)
    raise_for_unclassified(report)
    return report


def raise_for_unclassified(report: ScanReport) -> None:
    """UnclassifiedPiiError naming each personal-looking unclassified column (never a value) and what to do."""
    if unclassified := report.unclassified():
        described = "; ".join(
            f"{finding.location} looks like {finding.detected_type} in {finding.hit_rate:.0%} of {finding.sampled} "
            "sampled values"
            for finding in unclassified
        )
        raise UnclassifiedPiiError(
            f"Raw columns look personal but are not classified: {described}. Add `config: {{meta: {{pii: true, "
            "pii_type: <type>}}}}` to the column in dbt_project/models/bronze/<source>/_<source>__sources.yml (and "
            "protect it in silver with pii_hash), or `pii: false` if it was reviewed and is not personal data"
        )
