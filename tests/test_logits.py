"""Tests of the copying and direct_logit_attribution checkers (plugins/logits.py)."""

from __future__ import annotations

import pytest
import torch
from conftest import make_view
from defcheck_plugins import logits
from defcheck_plugins.logits import (
    CopyingParams,
    DLAParams,
    head_logit_effects,
    logit_hooks,
    predictable_positions,
    score_copying,
    score_direct_logit_attribution,
)
from defcheck_plugins.probes import RepeatedParams, build_repeated
from induction_circuit import induction_view

from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeBatch, ProbeRequest


def _probe(view, **params):
    return build_repeated(ProbeRequest(RepeatedParams(**params), view.tokens, seed=0, n_ctx=view.n_ctx))


def _context(view, probe, params, extra=()):
    names = set(logit_hooks(view, pattern=True)) | set(logit_hooks(view, pattern=False)) | set(extra)
    logits_, activations = view.run(probe.tokens, sorted(names))
    return CheckContext(view, params, probe=probe, logits=logits_, activations=activations)


@pytest.fixture(scope="module")
def circuit():
    view = induction_view()
    probe = _probe(view, n=16, length=12)
    return view, probe, _context(view, probe, CopyingParams())


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"n_layers": 3, "attn_only": False, "normalization_type": "LN", "d_mlp": 128},
        {"normalization_type": "RMS"},
        {"normalization_type": "LNPre"},
        {"normalization_type": "LN", "final_rms": True},
    ],
    ids=["none", "LN+mlp", "RMS", "LNPre", "LN+final_rms"],
)
def test_head_effects_plus_the_rest_of_the_stream_give_the_logits(overrides):
    view = make_view(3, **overrides)
    probe = _probe(view, n=4, length=8)
    last = f"blocks.{view.n_layers - 1}.hook_resid_post"
    context = _context(view, probe, CopyingParams(), extra=[last])
    heads = sum(head_logit_effects(context, layer, slice(None)).sum(2) for layer in range(view.n_layers))
    outputs = sum(
        torch.einsum("bqhd,hdm->bqm", context.activation(f"blocks.{layer}.attn.hook_z"), view.weight("W_O")[layer])
        for layer in range(view.n_layers)
    )
    scale = context.activation("ln_final.hook_scale") if logits.final_norm(view)[1] else None
    rest = logits._to_final(view, context.activation(last) - outputs, scale) @ view.weight("W_U")
    bias = getattr(view.model.ln_final, "bias", None)
    constant = view.weight("b_U") + (bias.detach() @ view.weight("W_U") if bias is not None else 0)
    assert (heads + rest + constant - context.logits).abs().max() < 1e-4


@pytest.mark.parametrize("normalization", ["cosine", "share"])
def test_copying_on_random_models_is_small_bounded_and_matches_its_evidence(
    random_view, random_view_mlp, normalization
):
    for view in (random_view, random_view_mlp):
        params = CopyingParams(normalization=normalization)
        scores = score_copying(_context(view, _probe(view, n=16, length=16), params))
        values = scores.values
        assert not torch.isnan(values).any() and not scores.undefined
        assert values.abs().max() < 0.2  # random heads neither copy nor suppress
        assert len(scores.evidence) == (view.n_layers * view.n_heads if normalization == "share" else 0)
        for unit, evidence in scores.evidence.items():
            layer, head = map(int, unit.split("."))
            assert 0 <= evidence["down"] <= 1 and 0 <= evidence["up"] <= 1
            assert evidence["up"] - evidence["down"] == pytest.approx(values[layer, head].item(), abs=1e-5)


@pytest.mark.parametrize("normalization", ["cosine", "share"])
def test_copying_equals_its_definition_computed_over_the_whole_vocabulary(random_view_mlp, normalization):
    """Brute force: every source's [V] logit effect from hook_v, W_O and the frozen final norm, then the per-source
    cosine (or share), attention-weighted over the sources and averaged over the target queries."""
    view = random_view_mlp
    probe = _probe(view, n=4, length=8)
    context = _context(view, probe, CopyingParams(normalization=normalization))
    scores = score_copying(context).values
    final = logits.final_unembed(view)  # [d_model, V]
    tokens = probe.tokens
    selected = logits.copy_positions(tokens, probe.bos, "targets")
    expected = torch.zeros(view.n_layers, view.n_heads)
    for layer in range(view.n_layers):
        values = context.activation(f"blocks.{layer}.attn.hook_v")  # [b, k, H, d_head]
        effect = torch.einsum("bkhd,hdm,mv->bkhv", values, view.weight("W_O")[layer], final)
        own = effect.gather(-1, tokens[:, :, None, None].expand(*effect.shape[:3], 1))[..., 0]  # [b, k, H]
        if normalization == "cosine":
            vocabulary = effect.shape[-1]
            per_source = own / (effect.norm(dim=-1) * (1 - 1 / vocabulary) ** 0.5)
        else:
            up = own.clamp_min(0) / effect.clamp_min(0).sum(-1)
            down = (-own).clamp_min(0) / (-effect).clamp_min(0).sum(-1)
            per_source = up - down
        pattern = context.activation(f"blocks.{layer}.attn.hook_pattern")  # [b, H, q, k]
        per_query = torch.einsum("bhqk,bkh->bqh", pattern, per_source) / pattern.sum(-1).transpose(1, 2)
        per_sequence = torch.stack([per_query[b][selected[b]].mean(0) for b in range(tokens.shape[0])])
        expected[layer] = per_sequence.mean(0)
    assert torch.allclose(scores, expected, atol=1e-5), (scores - expected).abs().max()


@pytest.mark.parametrize("normalization", ["cosine", "share"])
def test_copying_separates_copying_anti_copying_and_silent_heads(circuit, normalization):
    view, probe, context = circuit
    context = CheckContext(
        view, CopyingParams(normalization=normalization), probe=probe, activations=context.activations
    )
    scores = score_copying(context)
    print("copying on the hand-built circuit:", scores.values)
    assert scores.values[1, 0] > 0.9  # OV copies the attended token
    assert scores.values[1, 1] < -0.9  # same attention, OV negated
    assert scores.values[1, 1] == pytest.approx(-scores.values[1, 0].item(), abs=1e-5)
    assert scores.values[1, 3].abs() < 0.1  # a random head
    # zero output (1.2), and output the unembedding cannot read (0.0 writes only the previous-token dims): 0/0
    assert torch.isnan(scores.values[1, 2]) and torch.isnan(scores.values[0, 0])
    assert "0/0" in scores.undefined["1.2"] and "0/0" in scores.undefined["0.0"]
    everywhere = score_copying(
        CheckContext(
            view,
            CopyingParams(positions="all", normalization=normalization),
            probe=probe,
            activations=context.activations,
        )
    )
    assert 0 < everywhere.values[1, 0] < scores.values[1, 0]  # first-repeat rows have nothing to copy


def test_copying_chunks_give_the_same_scores(circuit, monkeypatch):
    view, probe, context = circuit
    context = CheckContext(view, CopyingParams(normalization="share"), probe=probe, activations=context.activations)
    whole = score_copying(context).values
    monkeypatch.setattr(logits, "CHUNK_ELEMENTS", 1)  # one sequence per chunk
    assert torch.allclose(score_copying(context).values, whole, equal_nan=True, atol=1e-6)


def test_dla_flips_sign_with_the_ov_circuit(circuit):
    view, probe, context = circuit
    scores = score_direct_logit_attribution(
        CheckContext(view, DLAParams(), probe=probe, activations=context.activations)
    ).values
    print("DLA on the hand-built circuit:", scores)
    assert scores[1, 0] > 0.8
    assert scores[1, 1] == pytest.approx(-scores[1, 0].item(), abs=1e-6)
    assert scores[1, 2] == 0 and scores[0, 0] == 0  # nothing reaches the unembedding
    assert scores[1, 3].abs() < 0.05


def test_dla_equals_the_centered_logit_effect_at_the_next_token(random_view_mlp):
    view = random_view_mlp
    probe = _probe(view, n=6, length=10)
    context = _context(view, probe, DLAParams(positions="all"))
    scores = score_direct_logit_attribution(context).values
    following = probe.tokens[:, 1:]
    expected = []
    for layer in range(view.n_layers):
        effect = head_logit_effects(context, layer, slice(None))[:, :-1]  # [b, q, H, V]
        effect = effect - effect.mean(-1, keepdim=True)
        index = following[:, :, None, None].expand(*effect.shape[:3], 1)
        expected.append(effect.gather(-1, index)[..., 0].mean(1).mean(0))
    assert torch.allclose(scores, torch.stack(expected), atol=1e-5)
    assert scores.abs().max() > 1e-3


def test_positions_follow_their_definitions():
    tokens = torch.tensor([[0, 5, 6, 7, 5, 6, 9, 5]])
    # position 4 (token 5): earlier 5 at 1 was followed by 6, and 6 comes next; position 7 is the last
    assert predictable_positions(tokens, True, "targets")[0].nonzero().flatten().tolist() == [4]
    assert predictable_positions(tokens, True, "all")[0].tolist() == [True] * 7 + [False]
    assert logits.copy_positions(tokens, True, "targets")[0].nonzero().flatten().tolist() == [4, 5, 7]


def test_a_probe_without_repeats_is_undefined_with_a_reason(random_view):
    tokens = torch.cat([torch.zeros(2, 1, dtype=torch.long), torch.arange(1, 21).repeat(2, 1)], dim=1)
    probe = ProbeBatch("distinct", {}, tokens, bos=True)
    context = _context(random_view, probe, CopyingParams())
    copying = score_copying(context)
    assert torch.isnan(copying.values).all() and "prefix-matching target" in copying.undefined["1.7"]
    context.params = DLAParams()
    dla = score_direct_logit_attribution(context)
    assert torch.isnan(dla.values).all() and "predictable" in dla.undefined["0.0"]
    context.params = DLAParams(positions="all")
    assert not torch.isnan(score_direct_logit_attribution(context).values).any()


def test_params_have_defaults_and_reject_unknown_values():
    assert CopyingParams().positions == "targets" and DLAParams().positions == "targets"
    assert CopyingParams().normalization == "cosine"
    with pytest.raises(ValueError):
        CopyingParams(normalization="l2")
    with pytest.raises(ValueError):
        CopyingParams(positions="some")
    with pytest.raises(ValueError):
        DLAParams(position="all")


@pytest.mark.parametrize("normalization", ["cosine", "share"])
def test_a_copying_head_that_spreads_its_attention_still_scores_near_one(circuit, normalization):
    """The score is taken per attended source, so spreading attention over n tokens does not divide it by n."""
    view, probe, context = circuit
    context = CheckContext(
        view, CopyingParams(normalization=normalization), probe=probe, activations=context.activations
    )
    activations = dict(context.activations)
    pattern = activations["blocks.1.attn.hook_pattern"]
    size = pattern.shape[-1]
    uniform = torch.tril(torch.ones(size, size))
    uniform = uniform / uniform.sum(-1, keepdim=True)
    activations["blocks.1.attn.hook_pattern"] = uniform.expand_as(pattern).clone()
    spread = score_copying(CheckContext(view, context.params, probe=probe, activations=activations))
    focused = score_copying(context)
    assert spread.values[1, 0] > 0.9
    assert spread.values[1, 0] == pytest.approx(focused.values[1, 0].item(), abs=0.05)
