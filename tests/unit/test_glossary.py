"""The business glossary (dbt_project/glossary.yml) is kept true: every term, in English and in Portuguese, is in the
description of every model (and key column) it names, and every silver and gold model speaks at least one term."""

from __future__ import annotations

import pytest
import yaml

from medalflow.governance.catalog import GLOSSARY_PATH, folded, load_glossary

MODELS_DIR = GLOSSARY_PATH.parent / "models"
MODEL_FILES = [MODELS_DIR / "silver" / "_silver__models.yml", MODELS_DIR / "gold" / "_gold__models.yml"]
GLOSSARY = load_glossary()


def documented_models() -> dict[str, dict]:
    models = {}
    for path in MODEL_FILES:
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            models[model["name"]] = model
    return models


MODELS = documented_models()


@pytest.mark.parametrize("entry", GLOSSARY, ids=[entry["term"] for entry in GLOSSARY])
def test_every_term_is_in_the_descriptions_of_the_models_it_names(entry):
    assert entry["definition"].strip(), f"{entry['term']}: needs a definition"
    assert entry["models"], f"{entry['term']}: needs the models that speak it"
    for model_name in entry["models"]:
        assert model_name in MODELS, f"glossary term {entry['term']!r} names unknown model {model_name}"
        description = folded(MODELS[model_name]["description"])
        for form in (entry["term"], entry["pt"]):
            assert folded(form) in description, f"{model_name}'s description lacks {form!r} ({entry['term']})"


@pytest.mark.parametrize("entry", [e for e in GLOSSARY if e.get("columns")], ids=lambda entry: entry["term"])
def test_every_term_is_in_the_descriptions_of_its_key_columns(entry):
    for qualified in entry["columns"]:
        model_name, column_name = qualified.split(".")
        columns = {column["name"]: column for column in MODELS[model_name]["columns"]}
        description = folded(columns[column_name]["description"])
        assert folded(entry["pt"]) in description, f"{qualified}'s description lacks {entry['pt']!r}"


def test_every_silver_and_gold_model_speaks_the_glossary():
    named = {model for entry in GLOSSARY for model in entry["models"]}
    assert sorted(set(MODELS) - named) == []


def test_the_terms_the_business_asked_for_are_there():
    pairs = {(entry["term"], folded(entry["pt"])) for entry in GLOSSARY}
    for pair in [
        ("forecast", "previsao"),
        ("FX risk", "risco cambial"),
        ("cash flow", "fluxo de caixa"),
        ("order", "pedido"),
        ("customer", "cliente"),
        ("supplier", "fornecedor"),
        ("payment", "pagamento"),
        ("shipment", "embarque"),
        ("Core Domain", "dominio central"),
    ]:
        assert pair in pairs


def test_folding_ignores_case_and_accents():
    assert folded("Previsão  de\nCaixa") == "previsao de caixa"
