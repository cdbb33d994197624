"""Unit kinds: the built-in ones on real models, a plugin's model that is not a transformer end to end, and the
checks that keep a plugin's unit kind and a checker's scores consistent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import make_view
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

import defcheck
from defcheck import Checker, Probe, UnitKind, hookimpl
from defcheck.diagnostics import DefcheckError
from defcheck.engine.probe_data import ProbeBatch, ProbeRequest, probe_generator
from defcheck.engine.scores import NotApplicable
from defcheck.engine.units import resolve_units
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry
from defcheck.report import Report


@pytest.fixture(scope="module")
def kinds():
    return load_plugins().unit_kinds


def test_the_built_in_unit_kinds_are_registered_through_the_plugin_manager(kinds):
    # the core's four, and the gridworld plugin's policies
    assert sorted(kinds) == ["attention_head", "layer", "mlp_neuron", "model", "policy"]


def test_heads_neurons_layers_and_the_model_of_a_transformer(kinds, random_view_mlp):
    heads = resolve_units(kinds["attention_head"], random_view_mlp)
    assert heads.shape == (3, 8) and heads.names[:3] == ("0.0", "0.1", "0.2") and heads.names[-1] == "2.7"
    assert heads.rows == ("0", "1", "2") and heads.columns == tuple(str(h) for h in range(8))
    neurons = resolve_units(kinds["mlp_neuron"], random_view_mlp)
    assert neurons.shape == (3, 128) and neurons.names[128] == "1.0" and len(neurons.columns) == 128
    layers = resolve_units(kinds["layer"], random_view_mlp)
    assert layers.shape == (3,) and layers.names == ("0", "1", "2") and layers.grid_json() is None
    model = resolve_units(kinds["model"], random_view_mlp)
    assert model.shape == (1,) and model.names == (random_view_mlp.name,)
    assert neurons.shape_text() == "(3, 128) (layers x neurons)"


def test_an_attention_only_model_has_no_neurons(kinds, random_view):
    with pytest.raises(NotApplicable, match=r"has no MLP neurons \(it is attention only"):
        resolve_units(kinds["mlp_neuron"], random_view)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (UnitKind("bad", lambda m: (2, 3), lambda m: ["a"] * 6), "gives two units the same name"),
        (UnitKind("bad", lambda m: (2, 3), lambda m: ["a", "b"]), "names 2 units for a score shape of .2, 3."),
        (UnitKind("bad", lambda m: (4,), lambda m: list("abcd"), lambda m: (["r"], ["x", "y"])), "lays out 1 x 2"),
        (UnitKind("bad", lambda m: 1 / 0, lambda m: []), "failed on this model: ZeroDivisionError"),
    ],
)
def test_a_unit_kind_that_contradicts_itself_is_named(kind, message):
    with pytest.raises(DefcheckError, match=message):
        resolve_units(kind, object())


# --- a model that is not a transformer: a set of three "policies" --------------------------------------------


class PolicySet:
    """What a plugin's loader might return: a name, and the models it stands for."""

    def __init__(self) -> None:
        self.name = "three-policies"
        self.info = {"trained_with": "test"}
        self.model_names = ("p0", "p10", "p50")
        self.skill = torch.tensor([0.9, 0.7, 0.2])  # the "true" competence of each policy


class EpisodeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int = Field(4, ge=1)


def episodes(request: ProbeRequest) -> ProbeBatch:
    """Seeded "episodes": noise added to each policy's skill, one row per episode."""
    assert request.tokens is None and isinstance(request.model, PolicySet)
    generator = probe_generator(request.seed, "fake_episodes", request.params.model_dump())
    noise = torch.randn(request.params.n, 3, generator=generator) * 0.01
    return ProbeBatch("fake_episodes", {}, None, info={"returns": request.model.skill + noise})


def mean_return(context) -> torch.Tensor:
    assert context.activations == {} and context.shape == (3,)
    return context.probe.info["returns"].mean(0)


def decoded(context) -> torch.Tensor:
    return torch.tensor([1.0, 0.2, 0.1])


def wrong_shape(context) -> torch.Tensor:
    return torch.zeros(2, 2)


def layer_norms(context) -> torch.Tensor:
    return torch.stack([context.model.weight("W_O")[layer].norm() for layer in range(context.model.n_layers)])


class PolicyPlugin:
    __name__ = "policy_plugin"

    @hookimpl
    def defcheck_probes(self):
        return [Probe("fake_episodes", episodes, EpisodeParams)]

    @hookimpl
    def defcheck_checkers(self):
        return [
            Checker("fake_return", "behavior", mean_return, unit="model", probe="required"),
            Checker("fake_decoding", "mechanism", decoded, unit="model"),
            Checker("fake_wrong_shape", "mechanism", wrong_shape, unit=("model", "layer")),
            Checker("fake_layer_norm", "mechanism", layer_norms, unit="layer"),
        ]


POLICY_CONCEPT = """\
concept: competent_policy
unit: model
summary: Policies that reach the goal.
definitions:
  high_return:
    kind: behavioral
    source: tests
    all:
      - checker: fake_return
        probe: {name: fake_episodes, n: 8}
        threshold: ">= 0.5"
  decodes_goal:
    kind: mechanistic
    source: tests
    all:
      - {checker: fake_decoding, threshold: ">= 0.15"}
  broken:
    kind: mechanistic
    source: tests
    all:
      - {checker: fake_wrong_shape, threshold: "> 0"}
"""


@pytest.fixture
def policy_report(tmp_path):
    path = tmp_path / "competent_policy.yaml"
    path.write_text(POLICY_CONCEPT, encoding="utf-8")
    return defcheck.check(PolicySet(), paths=[path], plugins=[PolicyPlugin()])


def test_a_set_of_policies_is_checked_end_to_end(policy_report):
    concept = policy_report.concepts["competent_policy"]
    assert concept.unit == "model" and concept.units == ["p0", "p10", "p50"] and concept.grid is None
    assert concept.definitions["high_return"].members == ["p0", "p10"]
    assert concept.definitions["decodes_goal"].members == ["p0", "p10"]
    assert concept.overlap.both == ["p0", "p10"] and concept.overlap.jaccard == 1.0
    assert "2 models meet both the behavioral and the mechanistic definitions" in concept.overlap.narrative
    broken = concept.definitions["broken"]
    assert broken.status == "errored" and "expected (3,) (models) for model units" in broken.error
    assert policy_report.model["model_names"] == ["p0", "p10", "p50"]
    assert policy_report.model["info"] == {"trained_with": "test"}


def test_concepts_of_a_kind_the_model_lacks_are_skipped_with_the_reason(policy_report):
    skipped = policy_report.data["skipped"]
    assert "induction_head" in skipped and "competent_policy" not in skipped
    assert skipped["induction_head"] == "no attention_head units: three-policies has no attention heads"
    heads = "copy_suppression_head, duplicate_token_head, induction_head, positional_head, previous_token_head"
    assert (
        f"Not evaluated on this model: {heads}, successor_head (no attention_head units: three-policies has no "
        "attention heads); " in policy_report.to_markdown()
    )


def test_the_json_of_a_policy_run_is_byte_identical_and_reads_back(tmp_path, policy_report):
    path = tmp_path / "competent_policy.yaml"
    again = defcheck.check(PolicySet(), paths=[path], plugins=[PolicyPlugin()])
    assert again.to_json() == policy_report.to_json()
    assert Report.from_json(policy_report.to_json()).to_html() == policy_report.to_html()


def test_units_without_a_grid_render_as_tables(policy_report):
    markdown = policy_report.to_markdown()
    assert (
        "| unit | broken (mechanistic) | decodes_goal (mechanistic) | high_return (behavioral) | overlap |" in markdown
    )
    assert "| p50 | n/a | 0.1 | 0.2 | neither |" in markdown
    assert "| p0 | n/a | **1** | **0.9** | both |" in markdown
    html = policy_report.to_html()
    assert 'data-grid="table"' in html and 'data-grid="overlap"' not in html.split('id="concept-competent_policy"')[1]
    console = Console(record=True, width=140)
    policy_report.to_terminal(console)
    text = console.export_text()
    assert "primary scores (bold: member)" in text and "p50" in text


def test_a_layer_concept_on_a_transformer(tmp_path, random_view_mlp):
    path = tmp_path / "big_layer.yaml"
    path.write_text(
        "concept: big_layer\nunit: layer\nsummary: Layers with large output weights.\ndefinitions:\n"
        "  big:\n    kind: mechanistic\n    source: tests\n    all:\n"
        "      - {checker: fake_layer_norm, threshold: {top_k: 1}}\n",
        encoding="utf-8",
    )
    report = defcheck.check(random_view_mlp, ["big_layer"], paths=[path], plugins=[PolicyPlugin()])
    concept = report.concepts["big_layer"]
    assert concept.units == ["0", "1", "2"] and len(concept.definitions["big"].members) == 1
    assert "| unit | big (mechanistic) |" in report.to_markdown()


def test_a_checker_of_another_kind_is_a_validation_error_naming_both(tmp_path):
    path = tmp_path / "wrong.yaml"
    path.write_text(
        "concept: wrong\nunit: attention_head\nsummary: s\ndefinitions:\n  d:\n    kind: mechanistic\n"
        "    source: tests\n    all:\n      - {checker: fake_wrong_shape, threshold: '> 0'}\n",
        encoding="utf-8",
    )
    extensions = load_plugins(extra=[PolicyPlugin()])
    registry = load_registry([path], extensions, include_builtin=False)
    (error,) = registry.errors
    assert error.line == 9 and error.code == "unit-mismatch"
    assert error.message == (
        "the checker 'fake_wrong_shape' scores model or layer units, but the concept 'wrong' categorizes "
        "attention_head units"
    )


def test_a_plugin_can_register_its_own_unit_kind(tmp_path):
    class Experts:
        __name__ = "experts"

        @hookimpl
        def defcheck_unit_kinds(self):
            return [UnitKind("expert", lambda m: (2,), lambda m: ["e0", "e1"], singular="expert", plural="experts")]

    extensions = load_plugins(extra=[Experts()])
    assert extensions.unit_kinds["expert"].plural == "experts"
    assert extensions.owner("unit_kinds", "expert") == "experts"
    with pytest.raises(DefcheckError, match="the unit kind 'model' is registered by two plugins"):

        class Clash:
            __name__ = "clash"

            @hookimpl
            def defcheck_unit_kinds(self):
                return [UnitKind("model", lambda m: (1,), lambda m: ["m"])]

        load_plugins(extra=[Clash()])


def test_mlp_concepts_are_skipped_on_attention_only_models(tmp_path):
    path = Path(tmp_path / "neuronish.yaml")
    path.write_text(
        "concept: neuronish\nunit: mlp_neuron\nsummary: s\ndefinitions:\n  d:\n    kind: mechanistic\n"
        "    source: tests\n    all:\n      - {checker: fake_layer_neuron, threshold: '> 0'}\n",
        encoding="utf-8",
    )

    class Neurons:
        __name__ = "test_neuron_plugin"

        @hookimpl
        def defcheck_checkers(self):
            return [Checker("fake_layer_neuron", "mechanism", lambda c: torch.ones(c.shape), unit="mlp_neuron")]

    report = defcheck.check(make_view(0), ["neuronish"], paths=[path], plugins=[Neurons()])
    assert report.data["concepts"] == {}
    assert report.data["skipped"] == {
        "neuronish": "no mlp_neuron units: random-0 has no MLP neurons (it is attention only)"
    }
