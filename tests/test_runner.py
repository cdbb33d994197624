"""Tests of the runner (defcheck/engine/runner.py): shared probes, reference order, isolation of failures."""

from __future__ import annotations

import textwrap

import pytest
import torch

from defcheck import Checker, hookimpl
from defcheck.diagnostics import DefcheckError
from defcheck.engine.runner import evaluate
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry

CONCEPT = """
concept: probe_sharing
summary: Two definitions on the same probe, one on another, one broken checker.
definitions:
  previous:
    kind: behavioral
    source: test
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: repeated_random_tokens, n: 4, length: 6}
        threshold: {top_k: 2}
  prefix:
    kind: behavioral
    source: test
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching}
        probe: {name: repeated_random_tokens, length: 6, n: 4}
        threshold: ">= 0.0"
  other_probe:
    kind: behavioral
    source: test
    any:
      - checker: attention_pattern
        params: {pattern: bos}
        probe: {name: random_tokens, n: 2, length: 8}
        threshold: ">= 2"
  broken:
    kind: behavioral
    source: test
    all:
      - checker: always_fails
        threshold: "> 0"
  after_broken:
    kind: behavioral
    source: test
    all:
      - checker: uses_members
        with: broken
        threshold: "> 0"
"""


class Failing:
    """A third-party plugin with a checker that raises and one that depends on it."""

    @hookimpl
    def defcheck_checkers(self):
        def fail(context):
            raise RuntimeError("boom")

        def members(context):
            return context.related_mask().float()

        return [
            Checker("always_fails", "behavior", fail),
            Checker("uses_members", "behavior", members, relation="required"),
        ]


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "concept.yaml").write_text(textwrap.dedent(CONCEPT))
    extensions = load_plugins(extra=[Failing()])
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    assert not registry.errors, registry.errors
    return registry, extensions


def test_one_forward_pass_per_distinct_probe(setup, random_view, monkeypatch):
    registry, extensions = setup
    calls = []
    original = type(random_view).run_batches

    def counting(self, tokens, names=(), batch_size=None, **options):
        calls.append(tuple(tokens.shape))
        return original(self, tokens, names, batch_size, **options)

    monkeypatch.setattr(type(random_view), "run_batches", counting)
    result = evaluate(random_view, registry, extensions)
    assert len(calls) == 2  # the two spellings of the repeated probe are one probe
    assert len(result.probes) == 2


def test_a_failing_checker_keeps_every_other_result(setup, random_view):
    registry, extensions = setup
    result = evaluate(random_view, registry, extensions)
    broken = result.definitions["probe_sharing.broken"]
    assert broken.members is None and "RuntimeError: boom" in broken.error
    assert "always_fails" in broken.error
    dependent = result.definitions["probe_sharing.after_broken"]
    assert dependent.members is None and "probe_sharing.broken" in dependent.error
    previous = result.definitions["probe_sharing.previous"]
    assert previous.error is None and int(previous.members.sum()) == 2
    assert result.definitions["probe_sharing.other_probe"].members.sum() == 0  # a share is never >= 2


def test_scores_are_deterministic(setup, random_view):
    registry, extensions = setup
    first = evaluate(random_view, registry, extensions, seed=3)
    second = evaluate(random_view, registry, extensions, seed=3)
    for key, result in first.definitions.items():
        if result.scores is not None:
            assert torch.equal(result.scores.values, second.definitions[key].scores.values)


def test_batches_give_the_same_scores(setup, random_view):
    registry, extensions = setup
    whole = evaluate(random_view, registry, extensions)
    batched = evaluate(random_view, registry, extensions, batch_size=1)
    torch.testing.assert_close(
        whole.definitions["probe_sharing.prefix"].scores.values,
        batched.definitions["probe_sharing.prefix"].scores.values,
    )


def test_selected_definitions_bring_their_references(setup, random_view):
    registry, extensions = setup
    result = evaluate(random_view, registry, extensions, definitions=["probe_sharing.after_broken"])
    assert list(result.definitions) == ["probe_sharing.broken", "probe_sharing.after_broken"]
    with pytest.raises(DefcheckError, match="unknown concept or definition: nope"):
        evaluate(random_view, registry, extensions, definitions=["nope"])


def test_a_model_without_token_metadata_stops_probes_with_a_clear_error(setup, random_view):
    from defcheck.models import ModelView

    registry, extensions = setup
    bare = ModelView(random_view.model, None, name="bare")
    result = evaluate(bare, registry, extensions)
    assert "no token metadata" in result.definitions["probe_sharing.previous"].error


def test_the_fixture_plugin_concept_runs_end_to_end(fixture_extensions, random_view):
    from pathlib import Path

    folder = Path(__file__).parent / "fixtures" / "concepts"
    registry = load_registry([folder], fixture_extensions, include_builtin=False)
    result = evaluate(random_view, registry, fixture_extensions)
    spreads = result.definitions["wide_head.spreads_attention"]
    assert spreads.error is None and spreads.scores.values.shape == (2, 8)
    large = result.definitions["wide_head.large_output"]
    assert large.error is None and int(large.criteria[0].passed.sum()) == 2  # top_k: 2


def _same(first, second):
    for key, expected in first.definitions.items():
        got = second.definitions[key]
        assert (expected.error is None) == (got.error is None), (key, expected.error, got.error)
        for a, b in zip(expected.criteria, got.criteria, strict=True):
            if a.scores is not None:
                torch.testing.assert_close(a.scores.values, b.scores.values, atol=1e-5, rtol=1e-4, equal_nan=True)
                assert a.scores.undefined.keys() == b.scores.undefined.keys()
        if expected.members is not None:
            assert torch.equal(expected.members, got.members), key


@pytest.mark.parametrize("name", ["induction", "induction-ln", "successor"])
def test_streamed_batches_give_the_whole_probes_scores_for_every_builtin_definition(name):
    """Every built-in checker is scored batch by batch (copying, DLA, path ablation with its mean pass...)."""
    from defcheck_plugins.constructed import load_constructed

    view = load_constructed(name)
    extensions = load_plugins()
    registry = load_registry([], extensions)
    whole = evaluate(view, registry, extensions)
    if name.startswith("induction"):  # previous-token members: the mean-ablation pass runs, and matters
        ablation = whole.definitions["induction_head.previous_token_path"]
        assert ablation.error is None and ablation.criteria[0].scores.values.abs().max() > 0.1
    _same(whole, evaluate(view, registry, extensions, batch_size=7))


def test_identical_criteria_are_scored_once(random_view, tmp_path):
    concept = textwrap.dedent(CONCEPT).split("  other_probe:")[0].replace("probe_sharing", "twice")
    (tmp_path / "a.yaml").write_text(concept)
    (tmp_path / "b.yaml").write_text(concept.replace("concept: twice", "concept: again"))
    extensions = load_plugins()
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    result = evaluate(random_view, registry, extensions)
    first, second = result.definitions["twice.previous"], result.definitions["again.previous"]
    assert torch.equal(first.scores.values, second.scores.values)
    assert first.criteria[0].seconds > 0 and second.criteria[0].seconds == 0  # computed once, counted once
    assert int(second.members.sum()) == 2  # each keeps its own threshold (top_k: 2)
