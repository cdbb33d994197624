"""The starter file of `defcheck new`: valid for every concept name, commented, with both kinds of definition."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from defcheck.diagnostics import DefcheckError
from defcheck.hooks.declarations import UNIT_KINDS
from defcheck.language.schema import Concept
from defcheck.language.starter import starter_file
from defcheck.language.yaml_source import parse_yaml

names = st.from_regex(r"\A[a-z][a-z0-9_]{0,40}\Z")


def parsed(text: str) -> Concept:
    document, problems = parse_yaml(text, "starter.yaml")
    assert problems == []
    assert document is not None
    return Concept.model_validate(document.data)


@settings(max_examples=200, deadline=None)
@given(name=names, unit=st.sampled_from(UNIT_KINDS))
def test_every_concept_name_gives_a_valid_file(name, unit):
    concept = parsed(starter_file(name, unit))
    assert concept.concept == name
    assert concept.unit == unit


@pytest.mark.parametrize("name", ["null", "true", "false", "yes", "no", "on", "off", "y", "n"])
def test_names_yaml_reads_as_other_types_come_back_as_strings(name):
    assert parsed(starter_file(name)).concept == name


def test_one_behavioral_and_one_mechanistic_definition_with_sources():
    concept = parsed(starter_file("my_head"))
    assert sorted(d.kind for d in concept.definitions.values()) == ["behavioral", "mechanistic"]
    assert all(d.source for d in concept.definitions.values())
    assert all(d.criteria for d in concept.definitions.values())


def test_header_comments():
    text = starter_file("my_head", file="defs/my_head.yaml", schema="../concept.schema.json")
    first, second, third = text.splitlines()[:3]
    assert first == "# yaml-language-server: $schema=../concept.schema.json"
    assert second.startswith("# ")
    assert "defcheck validate defs/my_head.yaml" in third
    assert starter_file("my_head").splitlines()[0] == "# yaml-language-server: $schema=concept.schema.json"


def test_the_title_reads_as_words():
    assert "what a copy suppression head is" in starter_file("copy_suppression_head")


@pytest.mark.parametrize("name", ["", "Head", "9lives", "_x", "a-b", "a.b", "a b", "x\n", "héad"])
def test_bad_names_are_refused(name):
    with pytest.raises(DefcheckError, match="is not a concept name"):
        starter_file(name)


def test_file_is_yaml_with_the_same_data_as_plain_pyyaml_reads():
    text = starter_file("my_head")
    document, _ = parse_yaml(text, "starter.yaml")
    assert document is not None
    assert document.data == yaml.safe_load(text)
