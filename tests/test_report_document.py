"""Tests of the report document's typed shape (defcheck/report/document.py), the overlap object every concept has,
the concept summary and the narrative, unit nouns in the JSON, the read-back of older documents, and the
terminal format on a narrow console."""

from __future__ import annotations

import itertools
import json
import re
import textwrap
from typing import Any

import pytest
from rich.console import Console
from test_report import CONCEPTS, ThirdParty

from defcheck.engine.runner import evaluate
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry
from defcheck.report import Report
from defcheck.report.document import (
    ConceptEntry,
    CriterionEntry,
    DefinitionEntry,
    GridEntry,
    ModelEntry,
    OverlapEntry,
    PairEntry,
    ProbeEntry,
    ReportDocument,
    SensitivityEntry,
)

LONG_DEFINITION = "attends_to_the_token_right_before_it_in_every_single_sequence_of_the_probe"  # wider than 60
NARROW_CONCEPT = f"""
    concept: previous_token_head_with_a_rather_long_name
    summary: Heads that attend from each token to the one before it.
    definitions:
      {LONG_DEFINITION}:
        kind: behavioral
        source: test
        all:
          - checker: attention_pattern
            params: {{pattern: previous_token}}
            probe: {{name: random_tokens, n: 4, length: 12}}
            threshold: {{top_k: 4}}
      weights:
        kind: mechanistic
        source: test
        all:
          - checker: qk_positional
            params: {{offset: 1, max_position: 12}}
            threshold: {{top_k: 4}}
"""


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from conftest import make_view

    folder = tmp_path_factory.mktemp("concepts")
    for name, text in {**CONCEPTS, "narrow.yaml": NARROW_CONCEPT}.items():
        (folder / name).write_text(textwrap.dedent(text))
    extensions = load_plugins(extra=[ThirdParty()])
    registry = load_registry([folder], extensions, include_builtin=False)
    assert not registry.errors, registry.errors
    return make_view(0), registry, extensions


@pytest.fixture(scope="module")
def report(evaluated) -> Report:
    view, registry, extensions = evaluated
    return Report.build(evaluate(view, registry, extensions), registry, {"reference": "random:0"})


def keys(typed: Any) -> set[str]:
    return set(typed.__required_keys__) | set(typed.__optional_keys__)


def old_style(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as defcheck 0.1 wrote it: ``description`` for the concept file's summary, the narrative as the
    concept's ``summary``, ``null`` for an overlap that compares nothing, no unit nouns."""
    old = json.loads(json.dumps(data))
    for concept in old["concepts"].values():
        overlap = concept["overlap"]
        concept["description"] = concept.pop("summary")
        concept["summary"] = overlap.pop("narrative")
        reason = overlap.pop("reason")
        if reason is not None:
            concept["overlap"] = None
        del concept["unit_noun"], concept["unit_plural"]
    return old


# --- the typed shape is the JSON's ---------------------------------------------------------------------------


def test_typed_dicts_name_exactly_the_json_keys(report):
    data = json.loads(report.to_json())
    assert set(data) == set(ReportDocument.__required_keys__)
    assert set(ReportDocument.__optional_keys__) == {"checks", "sweep", "seeds", "bootstrap"}  # --seeds, --bootstrap
    assert set(data["model"]) <= keys(ModelEntry)
    assert all(set(ProbeEntry.__required_keys__) <= set(probe) <= keys(ProbeEntry) for probe in data["probes"].values())
    seen_pairs = seen_rows = 0
    for concept in data["concepts"].values():
        assert set(concept) == keys(ConceptEntry)
        assert concept["grid"] is None or set(concept["grid"]) == keys(GridEntry)
        assert set(OverlapEntry.__required_keys__) <= set(concept["overlap"]) <= keys(OverlapEntry)
        for pair in concept["overlap"]["pairs"]:
            assert set(pair) == keys(PairEntry)
            seen_pairs += 1
        for row in concept["overlap"]["sensitivity"]:
            assert set(row) == keys(SensitivityEntry)
            seen_rows += 1
        for definition in concept["definitions"].values():
            assert set(DefinitionEntry.__required_keys__) <= set(definition) <= keys(DefinitionEntry)
            assert all(
                set(CriterionEntry.__required_keys__) <= set(criterion) <= keys(CriterionEntry)
                for criterion in definition["criteria"]
            )
    assert seen_pairs and seen_rows  # the loops above checked something
    assert report.data == data  # Report.data is the document itself


# --- every concept has an overlap; summary and narrative ------------------------------------------------------


def test_every_concept_has_an_overlap_object(report):
    for concept in report.data["concepts"].values():
        assert isinstance(concept["overlap"], dict)
    bos = report.concepts["bos_head"]
    assert not bos.overlap.compared and bos.overlap.reason == bos.note
    assert bos.overlap.both == [] and bos.overlap.pairs == [] and bos.overlap.neither_count == 0
    assert bos.overlap.behavioral == ["attends_bos"] and bos.overlap.mechanistic == []
    reason = "No overlap: it has no mechanistic definition"
    assert bos.overlap.undefined == dict.fromkeys(("jaccard", "precision", "recall", "spearman"), reason)
    previous = report.concepts["previous_token_head"]
    assert previous.overlap.compared and previous.overlap.reason is None and previous.overlap.pairs


def test_summary_is_the_concept_files_and_the_narrative_has_its_own_name(report):
    concept = report.concepts["previous_token_head"]
    assert concept.summary == "Heads that attend from each token to the one before it."
    assert concept["summary"] == concept.summary and "description" not in concept
    narrative = concept.overlap.narrative
    assert "broken is left out: errored" in narrative and narrative != concept.summary
    assert narrative in report.to_markdown() and f"> {concept.summary}" in report.to_markdown()
    bos = report.concepts["bos_head"]
    assert bos.overlap.narrative.startswith(bos.overlap.reason)
    assert bos.summary == "Heads that attend to the first position."


def test_a_kind_that_was_not_selected_is_named(evaluated):
    view, registry, extensions = evaluated
    run = evaluate(view, registry, extensions, definitions=["previous_token_head.attends_previous"])
    report = Report.build(run, registry)
    overlap = report.concepts["previous_token_head"].overlap
    expected = (
        "No overlap: its mechanistic definitions (positional_qk, broken, needs_tokenizer, half_defined) "
        "were not selected."
    )
    assert overlap.reason == expected and overlap.narrative.startswith(expected)
    assert overlap.behavioral == ["attends_previous"] and overlap.both == []
    assert Report.from_json(report.to_json()).to_json() == report.to_json()


# --- unit nouns travel in the JSON ----------------------------------------------------------------------------


def test_unit_nouns_come_from_the_unit_kind_and_travel_in_the_json(report):
    concept = report.data["concepts"]["previous_token_head"]
    assert (concept["unit_noun"], concept["unit_plural"]) == ("head", "heads")
    data = json.loads(report.to_json())
    data["concepts"]["previous_token_head"].update(unit="cell", unit_noun="cell", unit_plural="cells")
    again = Report.from_json(json.dumps(data))  # a plugin's kind, rendered without the plugin
    markdown = again.to_markdown()
    assert "| overlap | cells |" in markdown and "| overlap | heads |" in markdown  # bos_head is still heads
    assert re.search(r"neither</th><td>\d+ cells<", again.to_html())


# --- documents written before ---------------------------------------------------------------------------------


def test_old_documents_read_back_in_the_current_shape(report):
    current = json.loads(report.to_json())
    old = old_style(current)
    assert old["concepts"]["bos_head"]["overlap"] is None and "description" in old["concepts"]["bos_head"]
    again = Report.from_json(json.dumps(old))
    for name, concept in again.data["concepts"].items():
        expected = dict(current["concepts"][name])
        expected["unit_noun"] = expected["unit_plural"] = expected["unit"]  # old documents: the kind's name
        assert concept == expected, name
    assert again.concepts["bos_head"].overlap.reason == "No overlap: it has no mechanistic definition."
    assert again.concepts["previous_token_head"].summary.startswith("Heads that attend from each token")
    assert "| overlap | attention_head |" in again.to_markdown()


def test_old_baselines_compare_equal(report, tmp_path):
    from defcheck.ci.baseline import diff_reports, load_baseline

    path = tmp_path / "old.json"
    path.write_text(json.dumps(old_style(json.loads(report.to_json()))), encoding="utf-8")
    assert diff_reports(load_baseline(path), report.data) == []


# --- the terminal never breaks a name ---------------------------------------------------------------------------


def split_names(text: str, names: list[str]) -> list[str]:
    """The names that some line ends with the start of, and the next line continues (a name broken mid-word)."""
    lines = [line.strip(" │╭╮╰╯─") for line in text.splitlines()]
    broken = []
    for name in names:
        for first, second in itertools.pairwise(lines):
            for cut in range(1, len(name)):
                if first.endswith(name[:cut]) and second.startswith(name[cut:]):
                    broken.append(f"{name}: {first!r} / {second!r}")
    return broken


@pytest.mark.parametrize("width", [60, 100, 160])
def test_terminal_keeps_names_whole(report, width):
    console = Console(width=width, record=True, color_system=None)
    report.to_terminal(console)
    text = console.export_text()
    shown = [*report.data["concepts"]]
    for concept in report.data["concepts"].values():
        shown += concept["definitions"]
    units = [unit for concept in report.data["concepts"].values() for unit in concept["units"]]
    assert split_names(text, [name for name in [*shown, *units] if len(name) > 1]) == []
    assert all(len(line) <= width for line in text.splitlines())
    for name in shown:  # each name is shown whole, or cut with an ellipsis where it is wider than the line
        assert name in text or any(name.startswith(part) for part in re.findall(r"(\S+)…", text)), name
    assert LONG_DEFINITION in text or "attends_to_the_token_right_before_it" in text


def test_split_names_finds_a_broken_name():
    assert split_names("│ a previous_to │\n│ ken_head b │", ["previous_token_head"])
    assert split_names("│ previous_token_head │\n│ next │", ["previous_token_head"]) == []
