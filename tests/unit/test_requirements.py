"""requirements/requirements.txt is what MWAA installs: it must resolve under MWAA's Airflow 3.3.1 constraints for
Python 3.12 on x86_64 Linux and never override the pins MWAA treats as essential."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = PROJECT_ROOT / "requirements"
CONSTRAINTS = REQUIREMENTS / "constraints"
SHARED_MWAA = PROJECT_ROOT.parent / "shared" / "mwaa" / "airflow-3.3.1"
UV = PROJECT_ROOT / ".venv" / "uv" / "bin" / "uv"
MWAA_CONSTRAINT_LINE = (
    '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (extras and markers dropped)."""
    found = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)", line.strip()):
            found[canonical(match.group(1))] = match.group(2)
    return found


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict[str, str]:
    """Resolve requirements.txt exactly as MWAA would, with the offline copy of its constraint file."""
    work = tmp_path_factory.mktemp("mwaa-resolution")
    local = work / "requirements.txt"
    text = (REQUIREMENTS / "requirements.txt").read_text()
    local.write_text(text.replace(MWAA_CONSTRAINT_LINE, f'--constraint "{CONSTRAINTS / "airflow_constraints.txt"}"'))
    output = work / "resolved.txt"
    command = [str(UV), "pip", "compile", "--quiet", "--python-version", "3.12"]
    command += ["--python-platform", "x86_64-manylinux_2_28", str(local), "-o", str(output)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return pins(output)


def test_requirements_start_with_mwaa_constraint_line():
    first = (REQUIREMENTS / "requirements.txt").read_text().splitlines()[0]
    assert first == MWAA_CONSTRAINT_LINE


def test_offline_constraints_are_mwaa_copies():
    if not SHARED_MWAA.exists():
        pytest.skip(f"{SHARED_MWAA} is not beside this clone")
    for name in ("airflow_constraints.txt", "mwaa_essential_constraints.txt"):
        assert (CONSTRAINTS / name).read_bytes() == (SHARED_MWAA / name).read_bytes(), name


def test_requirements_resolve_within_mwaa_constraints(resolved):
    constraints = pins(CONSTRAINTS / "airflow_constraints.txt")
    assert resolved["apache-airflow"] == "3.3.1"
    assert resolved["astronomer-cosmos"].startswith("1.15.")
    off_constraint = {
        name: (version, constraints[name])
        for name, version in resolved.items()
        if name in constraints and constraints[name] != version
    }
    assert off_constraint == {}


def test_nothing_overrides_mwaa_essential_constraints(resolved):
    essential = pins(CONSTRAINTS / "mwaa_essential_constraints.txt")
    assert essential, "the essential constraints file lists no pins"
    overridden = {
        name: (resolved[name], version)
        for name, version in essential.items()
        if name in resolved and resolved[name] != version
    }
    assert overridden == {}
    named = {
        canonical(re.split(r"[\[=<>!~ ;]", line.strip())[0])
        for line in (REQUIREMENTS / "requirements.txt").read_text().splitlines()
        if line.strip() and line[0].isalnum()
    }
    for name in named & set(essential):
        line = next(
            line
            for line in (REQUIREMENTS / "requirements.txt").read_text().splitlines()
            if canonical(re.split(r"[\[=<>!~ ;]", line.strip())[0]) == name
        )
        assert line.strip() in (name, f"{name}=={essential[name]}"), f"requirements.txt re-pins {line!r}"


def test_local_lock_agrees_with_mwaa_constraints():
    constraints = pins(CONSTRAINTS / "airflow_constraints.txt")
    locked = pins(REQUIREMENTS / "lock" / "airflow.lock.txt")
    disagreements = {
        name: (version, constraints[name])
        for name, version in locked.items()
        if name in constraints and constraints[name] != version
    }
    assert disagreements == {}


def test_dbt_stays_on_1_11_in_every_lock():
    for lock in ("dbt.lock.txt", "dbt-dev.lock.txt"):
        assert pins(REQUIREMENTS / "lock" / lock)["dbt-core"].startswith("1.11."), lock


def test_production_dbt_lock_is_within_dev_lock():
    production, development = (pins(REQUIREMENTS / "lock" / name) for name in ("dbt.lock.txt", "dbt-dev.lock.txt"))
    assert {name: v for name, v in production.items() if development.get(name) != v} == {}
