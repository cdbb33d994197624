"""The kind lint: a mechanistic definition must look at mechanism; warnings never fail validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from defcheck.hooks.manager import load_plugins
from defcheck.language.concept_file import load_concept_file
from defcheck.language.lint import lint_kinds

ENTROPY = "      - checker: attention_entropy\n        probe: fixture_tokens\n        threshold: '>= 0.5'\n"
NORM = "      - checker: head_norm\n        threshold: {top_k: 2}\n"


@pytest.fixture
def extensions():
    return load_plugins(modules=["fixture_plugin", "defcheck_plugins.unit_kinds"], entry_points=[])


def _file(tmp_path: Path, kind: str, criteria: str, *, source: bool = True, combinator: str = "all") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        "concept: c\nsummary: For the lint tests.\ndefinitions:\n  d:\n"
        f"    kind: {kind}\n"
        + ("    source: Some et al. 2024\n" if source else "")
        + f"    {combinator}:\n"
        + criteria,
        encoding="utf-8",
    )
    return path


def _lint(path: Path, extensions) -> list[str]:
    file, problems = load_concept_file(path, "c.yaml")
    assert problems == []
    return [f"{d.severity} {d.code} {d}" for d in lint_kinds(file, extensions)]


def test_a_mechanistic_definition_that_only_observes_behavior_is_an_error(tmp_path, extensions):
    assert _lint(_file(tmp_path, "mechanistic", ENTROPY + ENTROPY, combinator="any"), extensions) == [
        "error kind-mismatch c.yaml:5:11: definitions.d.kind: a mechanistic definition needs a checker that observes "
        "mechanism, but attention_entropy observe(s) only behavior; use kind: behavioral, or add a mechanism checker"
    ]


def test_a_mechanistic_definition_with_one_mechanism_checker_is_fine(tmp_path, extensions):
    assert _lint(_file(tmp_path, "mechanistic", ENTROPY + NORM), extensions) == []
    assert _lint(_file(tmp_path, "mechanistic", NORM), extensions) == []


def test_a_definition_with_an_unknown_checker_is_left_to_the_unknown_checker_error(tmp_path, extensions):
    unknown = "      - checker: not_registered\n        threshold: '> 0'\n"
    assert _lint(_file(tmp_path, "mechanistic", ENTROPY + unknown), extensions) == []


def test_a_behavioral_definition_using_a_mechanism_checker_is_a_warning(tmp_path, extensions):
    assert _lint(_file(tmp_path, "behavioral", ENTROPY + NORM), extensions) == [
        "warning kind-mixed c.yaml:11:18: definitions.d.all[1].checker: warning: a behavioral definition uses "
        "'head_norm', which observes mechanism (weights or interventions); is this definition mechanistic?"
    ]


def test_a_definition_without_a_source_is_a_warning(tmp_path, extensions):
    assert _lint(_file(tmp_path, "behavioral", ENTROPY, source=False), extensions) == [
        "warning missing-source c.yaml:4:3: definitions.d: warning: the definition has no source; say where it "
        "comes from (paper, section)"
    ]


def test_warnings_do_not_fail_validation(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    _file(tmp_path, "behavioral", ENTROPY + NORM, source=False)
    code, out, err = cli("-p", "fixture_plugin", "validate", "--no-builtin", "c.yaml")
    assert code == 0, out + err
    assert "c.yaml:4:3: definitions.d: warning: the definition has no source" in out
    assert "c.yaml:10:18: definitions.d.all[1].checker: warning: a behavioral definition uses 'head_norm'" in out
    assert "1 concept(s), 1 definition(s): 0 error(s), 2 warning(s)" in out


def test_quiet_validation_prints_no_warnings(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    _file(tmp_path, "behavioral", ENTROPY, source=False)
    code, out, _ = cli("--quiet", "-p", "fixture_plugin", "validate", "--no-builtin", "c.yaml")
    assert code == 0
    assert "c.yaml" not in out


def test_the_kind_error_fails_validation(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    _file(tmp_path, "mechanistic", ENTROPY)
    code, out, _ = cli("-p", "fixture_plugin", "validate", "--no-builtin", "c.yaml")
    assert code == 1
    assert "c.yaml:5:11: definitions.d.kind: a mechanistic definition needs a checker that observes mechanism" in out
