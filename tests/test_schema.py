"""The JSON Schema that `defcheck schema` prints: valid draft 07, and in agreement with the pydantic models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from defcheck.language.schema import Concept, concept_json_schema
from defcheck.language.starter import starter_file

FIXTURE = Path(__file__).parent / "fixtures" / "concepts" / "wide_head.yaml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = concept_json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def base() -> dict[str, Any]:
    return yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))


def test_cli_prints_a_valid_draft7_schema(cli):
    code, out, _ = cli("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert "$defs" not in out  # draft 07 spells it "definitions"
    assert "#/$defs/" not in out


def test_fixture_concept_file_validates(validator):
    errors = [error.message for error in validator.iter_errors(base())]
    assert errors == []


def test_starter_file_validates(validator):
    errors = [error.message for error in validator.iter_errors(yaml.safe_load(starter_file("some_head")))]
    assert errors == []


def criterion(document: dict[str, Any]) -> dict[str, Any]:
    return document["definitions"]["spreads_attention"]["all"][0]


def edit(change) -> dict[str, Any]:
    document = copy.deepcopy(base())
    change(document)
    return document


# Documents both the JSON Schema and the pydantic models accept.
ACCEPTED = {
    "fixture as written": lambda d: None,
    "probe as a plain name": lambda d: criterion(d).update(probe="fixture_tokens"),
    "probe with parameters": lambda d: criterion(d).update(probe={"name": "fixture_tokens", "n": 4, "length": 8}),
    "with as one name": lambda d: criterion(d).update({"with": "large_output"}),
    "with as a list": lambda d: criterion(d).update({"with": ["large_output", "other_concept.some_definition"]}),
    "top_k with min": lambda d: criterion(d).update(threshold={"top_k": 3, "min": 0.1}),
    "negative comparison": lambda d: criterion(d).update(threshold="< -0.2"),
    "comparison without spaces": lambda d: criterion(d).update(threshold=">=1e-3"),
    "unit left to its default": lambda d: d.pop("unit"),
    "no references": lambda d: d.pop("references"),
    "a definition summary": lambda d: d["definitions"]["spreads_attention"].update(summary="Spread out."),
    "extending a built-in concept": lambda d: d.update(builtin="extend"),
    "replacing a built-in concept": lambda d: d.update(builtin="replace"),
}

# Documents both reject.
REJECTED = {
    "no concept": lambda d: d.pop("concept"),
    "no summary": lambda d: d.pop("summary"),
    "no definitions": lambda d: d.update(definitions={}),
    "unknown top-level key": lambda d: d.update(concpet="typo"),
    "concept name with capitals": lambda d: d.update(concept="WideHead"),
    "definition name with a dash": lambda d: d["definitions"].update({"wide-head": d["definitions"]["large_output"]}),
    "kind misspelled": lambda d: d["definitions"]["spreads_attention"].update(kind="behavioural"),
    "both all and any": lambda d: d["definitions"]["spreads_attention"].update(any=[criterion(d)]),
    "neither all nor any": lambda d: d["definitions"]["spreads_attention"].pop("all"),
    "empty all": lambda d: d["definitions"]["spreads_attention"].update(all=[]),
    "unknown criterion key": lambda d: criterion(d).update(checkr="typo"),
    "no threshold": lambda d: criterion(d).pop("threshold"),
    "threshold as a bare number": lambda d: criterion(d).update(threshold=0.4),
    "threshold without a number": lambda d: criterion(d).update(threshold=">= high"),
    "threshold with ==": lambda d: criterion(d).update(threshold="== 1"),
    "top_k of zero": lambda d: criterion(d).update(threshold={"top_k": 0}),
    "top_k with an unknown key": lambda d: criterion(d).update(threshold={"top_k": 2, "max": 1}),
    "probe name with a space": lambda d: criterion(d).update(probe="fixture tokens"),
    "probe without a name": lambda d: criterion(d).update(probe={"n": 4}),
    "with naming three levels": lambda d: criterion(d).update({"with": "a.b.c"}),
    "with as a number": lambda d: criterion(d).update({"with": 3}),
    "references as one string": lambda d: d.update(references="Olsson et al. 2022"),
    "summary as a number": lambda d: d.update(summary=3),
    "builtin rule misspelt": lambda d: d.update(builtin="extends"),
    "builtin as a flag": lambda d: d.update(builtin=True),
}


def pydantic_accepts(document: dict[str, Any]) -> bool:
    try:
        Concept.model_validate(document)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_schema_accepts_what_the_models_accept(validator, case):
    document = edit(ACCEPTED[case])
    assert pydantic_accepts(document), "the case itself is wrong: the pydantic models reject it"
    assert [error.message for error in validator.iter_errors(document)] == []


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_schema_rejects_what_the_models_reject(validator, case):
    assert validator.is_valid(base()), "the unchanged fixture must be valid, or this test proves nothing"
    document = edit(REJECTED[case])
    assert not pydantic_accepts(document), "the case itself is wrong: the pydantic models accept it"
    assert not validator.is_valid(document)


@pytest.mark.parametrize("document", [[], "concept: x", None, 3])
def test_schema_rejects_a_document_that_is_not_a_mapping(validator, document):
    assert not validator.is_valid(document)
