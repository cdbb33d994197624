"""Tests of the path_ablation checker (plugins/ablation.py), and one end-to-end run of the logit checkers."""

from __future__ import annotations

import textwrap

import pytest
import torch
from conftest import make_view
from defcheck_plugins.ablation import (
    PathAblationParams,
    member_outputs,
    path_ablation_hooks,
    recompute_pattern,
    score_path_ablation,
)
from defcheck_plugins.probes import RepeatedParams, build_repeated
from induction_circuit import induction_view

from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeRequest
from defcheck.engine.runner import evaluate
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry

RESID, PATTERN = "blocks.{}.hook_resid_pre", "blocks.{}.attn.hook_pattern"


def _probe(view, **params):
    return build_repeated(ProbeRequest(RepeatedParams(**params), view.tokens, seed=0, n_ctx=view.n_ctx))


def _context(view, probe, members, **params):
    logits, activations = view.run(probe.tokens, path_ablation_hooks(PathAblationParams(), view))
    return CheckContext(
        view, PathAblationParams(**params), probe=probe, logits=logits, activations=activations, related={"m": members}
    )


def _mask(view, *heads):
    mask = torch.zeros(view.n_layers, view.n_heads, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    return mask


@pytest.fixture(scope="module")
def circuit():
    view = induction_view()
    return view, _probe(view, n=16, length=12)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"n_layers": 3, "attn_only": False, "normalization_type": "LN", "d_mlp": 128},
        {"normalization_type": "RMS", "positional_embedding_type": "rotary"},
        {"normalization_type": "LN", "n_key_value_heads": 2},
    ],
    ids=["none", "LN+mlp", "rotary", "GQA"],
)
def test_recomputed_pattern_equals_the_cached_one(overrides):
    view = make_view(4, **overrides)
    probe = _probe(view, n=4, length=12)
    _, activations = view.run(probe.tokens, path_ablation_hooks(PathAblationParams(), view))
    for layer in range(view.n_layers):
        resid = activations[RESID.format(layer)]
        recomputed = recompute_pattern(view, layer, resid, resid)
        assert (recomputed - activations[PATTERN.format(layer)]).abs().max() < 1e-5


@pytest.mark.parametrize(("path", "ablation"), [("k", "zero"), ("q", "mean")])
def test_the_patched_pattern_equals_a_forward_pass_with_the_patched_input(random_view_mlp, path, ablation):
    """The real intervention: feed ln1(resid_pre - member outputs) to one layer's k (or q) projection only."""
    view = random_view_mlp
    probe = _probe(view, n=4, length=12)
    members = _mask(view, (0, 1), (0, 5), (1, 3))
    context = _context(view, probe, members, path=path, ablation=ablation)
    outputs = member_outputs(context, members, ablation)
    for layer, removed in ((1, outputs[0]), (2, outputs[0] + outputs[1])):
        resid = context.activation(RESID.format(layer))
        patched = resid - removed
        captured = {}

        def replace(activation, hook, patched=patched, layer=layer):
            return view.model.blocks[layer].ln1(patched)

        def keep(activation, hook, captured=captured):
            captured["pattern"] = activation.clone()
            return activation

        hooks = [(f"blocks.{layer}.attn.{path}.hook_in", replace), (PATTERN.format(layer), keep)]
        view.run_with_hooks(probe.tokens, hooks)
        q_in, k_in = (resid, patched) if path == "k" else (patched, resid)
        recomputed = recompute_pattern(view, layer, q_in, k_in)
        assert (recomputed - captured["pattern"]).abs().max() < 1e-5
        assert (recomputed - context.activation(PATTERN.format(layer))).abs().max() > 1e-4  # the patch mattered


def test_on_a_random_model_earlier_heads_matter_and_heads_without_a_path_score_zero(random_view_mlp):
    view = random_view_mlp
    probe = _probe(view, n=8, length=12)
    members = _mask(view, *[(0, head) for head in range(view.n_heads)])
    by_k = score_path_ablation(_context(view, probe, members, ablation="zero"))
    by_q = score_path_ablation(_context(view, probe, members, path="q", ablation="zero"))
    print("random model, layer 0 zero-ablated: k drops", by_k.values[1:], "q drops", by_q.values[1:])
    for scores in (by_k, by_q):
        assert (scores.values[0] == 0).all()
        assert scores.evidence["0.3"]["path"].startswith("none")
        assert scores.evidence["0.3"]["before"] == scores.evidence["0.3"]["after"]
        assert scores.values[1:].abs().max() > 1e-3
        for unit in ("1.2", "2.6"):
            evidence = scores.evidence[unit]
            layer, head = map(int, unit.split("."))
            assert evidence["before"] - evidence["after"] == pytest.approx(scores.values[layer, head].item(), abs=1e-6)
    assert not torch.allclose(by_k.values[1:], by_q.values[1:], atol=1e-4)
    nobody = score_path_ablation(_context(view, probe, _mask(view)))
    assert (nobody.values == 0).all()


def test_ablating_the_previous_token_head_breaks_the_induction_head(circuit):
    view, probe = circuit
    drops = {}
    for name, heads, params in [
        ("prev k zero", [(0, 0)], {"ablation": "zero"}),
        ("prev k mean", [(0, 0)], {}),
        ("prev q", [(0, 0)], {"path": "q"}),
        ("unrelated k zero", [(0, 1)], {"ablation": "zero"}),
        ("unrelated k mean", [(0, 1)], {}),
    ]:
        scores = score_path_ablation(_context(view, probe, _mask(view, *heads), **params))
        drops[name] = scores
        print(name, "1.0:", scores.evidence["1.0"], "drop", round(scores.values[1, 0].item(), 4))
    prev = drops["prev k zero"]
    assert prev.evidence["1.0"]["before"] > 0.99 and prev.evidence["1.0"]["after"] < 0.1
    assert prev.values[1, 0] > 0.9 and prev.values[1, 1] > 0.9  # both heads with that QK circuit
    assert prev.values[1, 3].abs() < 0.01  # a random head does not read the previous-token dims
    assert drops["prev k mean"].values[1, 0] > 0.9
    assert drops["prev q"].values[1, 0].abs() < 0.01  # the induction head's queries do not read head 0.0
    assert drops["unrelated k zero"].values[1, 0].abs() < 0.01
    assert drops["unrelated k mean"].values[1, 0].abs() < 0.01
    assert (prev.values[0] == 0).all() and prev.evidence["0.0"]["path"].startswith("none")


def test_params_defaults_and_the_value_path_is_refused():
    params = PathAblationParams()
    assert (params.pattern, params.path, params.ablation) == ("prefix_matching", "k", "mean")
    with pytest.raises(ValueError, match="values do not enter the pattern"):
        PathAblationParams(path="v")
    with pytest.raises(ValueError):
        PathAblationParams(pattern="sideways")
    with pytest.raises(ValueError):
        PathAblationParams(ablation="resample")


def test_end_to_end_through_the_registry_and_runner(tmp_path, circuit):
    view, _ = circuit
    (tmp_path / "induction_demo.yaml").write_text(
        textwrap.dedent(
            """\
            concept: induction_demo
            unit: attention_head
            summary: The hand-built induction circuit, checked end to end.
            references:
              - Olsson et al. 2022, In-context Learning and Induction Heads
            definitions:
              previous_token:
                kind: behavioral
                source: test
                all:
                  - checker: attention_pattern
                    params: {pattern: previous_token}
                    probe: {name: repeated_random_tokens, n: 16, length: 12}
                    threshold: ">= 0.5"
              copies:
                kind: behavioral
                source: Olsson et al. 2022
                all:
                  - checker: copying
                    probe: {name: repeated_random_tokens, n: 16, length: 12}
                    threshold: "> 0.5"
                  - checker: direct_logit_attribution
                    probe: {name: repeated_random_tokens, n: 16, length: 12}
                    threshold: "> 0.3"
              keys_read_previous_token:
                kind: mechanistic
                source: Olsson et al. 2022
                all:
                  - checker: path_ablation
                    with: previous_token
                    params: {ablation: zero}
                    probe: {name: repeated_random_tokens, n: 16, length: 12}
                    threshold: ">= 0.5"
            """
        )
    )
    extensions = load_plugins()
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    assert not registry.errors, registry.errors
    result = evaluate(view, registry, extensions)
    members = {key: value.members for key, value in result.definitions.items()}
    assert all(value.error is None for value in result.definitions.values())

    def heads(mask):
        return [f"{layer}.{head}" for layer, head in mask.nonzero().tolist()]

    assert heads(members["induction_demo.previous_token"]) == ["0.0"]
    assert heads(members["induction_demo.copies"]) == ["1.0"]
    assert heads(members["induction_demo.keys_read_previous_token"]) == ["1.0", "1.1", "1.2"]
    path = result.definitions["induction_demo.keys_read_previous_token"].scores
    assert path.evidence["1.0"]["after"] < 0.1
    copying = result.definitions["induction_demo.copies"].criteria[0].scores
    assert "1.2" in copying.undefined
