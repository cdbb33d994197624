"""The circuits plugin: OV/QK eigenvalue ratios, positional QK and composition, against TransformerLens and
against hand-built heads whose mechanism is known by construction."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_view
from defcheck_plugins import circuits
from defcheck_plugins.circuits import (
    CompositionParams,
    EigenParams,
    PositionalParams,
    composition_scores,
    random_baseline,
    score_composition,
    score_ov_copying,
    score_qk_eigenvalue,
    score_qk_positional,
)
from transformer_lens import FactoredMatrix
from transformer_lens.utilities import composition_scores as tl_composition_scores

from defcheck.engine.context import CheckContext

COPY, ANTI, PREV, ZERO, READER, MATCH = (0, 1), (0, 4), (0, 2), (0, 6), (1, 5), (1, 3)


def _orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(rows, cols, generator=generator)).Q


def _sinusoid(positions: torch.Tensor) -> torch.Tensor:
    """``[n, 8]`` unit vectors whose dot products peak only at equal positions (within 0..63)."""
    omega = 2 * math.pi * torch.tensor([1.0, 5.0, 13.0, 29.0]) / 128
    angles = positions[:, None].float() * omega[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1) / 2


def build_circuits_view():
    """A 2-layer attn-only model with hand-set heads (d_model 64, 8 heads of d_head 8, vocab 64, n_ctx 64).

    0.1 copies (W_V W_O = 2 U U^T with W_U = W_E^T), 0.4 anti-copies, 0.6 has a zero OV circuit, 0.2 attends to
    the previous position from W_pos alone (one-hot positions) and writes only into the subspace S, 1.5 reads its
    keys from exactly S, and 1.3 has W_K = W_Q (token matching).
    """
    view = make_view(11)
    model = view.model
    first, second = model.blocks[0].attn, model.blocks[1].attn
    basis, written = _orthonormal(64, 8, 1), _orthonormal(64, 8, 2)
    positions = torch.arange(64)
    with torch.no_grad():
        model.W_U.copy_(model.W_E.T)
        first.W_V[COPY[1]].copy_(basis)
        first.W_O[COPY[1]].copy_(2.0 * basis.T)
        first.W_V[ANTI[1]].copy_(basis)
        first.W_O[ANTI[1]].copy_(-2.0 * basis.T)
        first.W_O[ZERO[1]].zero_()
        model.W_pos.copy_(torch.eye(64))
        first.W_Q[PREV[1]].copy_(150.0 * _sinusoid(positions - 1))
        first.W_K[PREV[1]].copy_(_sinusoid(positions))
        first.W_O[PREV[1]].copy_(written.T)
        second.W_K[READER[1]].copy_(written)
        second.W_Q[READER[1]].copy_(first.W_V[PREV[1]])
        second.W_K[MATCH[1]].copy_(second.W_Q[MATCH[1]])
    view.forget_weights()
    return view


@pytest.fixture(scope="module")
def built():
    return build_circuits_view()


def _context(view, params, related=None):
    context = CheckContext(view, params)
    context.related = related or {}
    return context


def _unit(scores, head):
    return scores.values[head].item()


# ---------------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("seed,overrides", [(0, {}), (2, {"n_layers": 3, "n_heads": 4, "d_head": 16})])
def test_composition_scores_match_transformer_lens(seed, overrides):
    view = make_view(seed, **overrides)
    for kind in "KQV":
        ours = composition_scores(view, kind)
        theirs = view.model.all_composition_scores(kind).scores
        assert ours.shape == theirs.shape == (view.n_layers, view.n_heads, view.n_layers, view.n_heads)
        assert (ours - theirs).abs().max().item() < 1e-5, kind
        assert theirs[0, :, 1].min() > 0.01  # a real comparison, not of zeros


def test_composition_scores_fold_ln1_weights():
    view = make_view(1, n_layers=3, attn_only=False, normalization_type="LN", d_mlp=128)
    raw = view.model.all_composition_scores("K").scores
    assert (composition_scores(view, "K") - raw).abs().max() < 1e-5  # ln1 weights start at 1: nothing to fold
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for block in view.model.blocks:
            block.ln1.weight.copy_(0.2 + 2 * torch.rand(64, generator=generator))
    view.forget_weights()
    ln1 = torch.stack([block.ln1.weight.detach() for block in view.model.blocks])[:, None, :, None]
    W_Q, W_K, W_V = (view.weight(name) * ln1 for name in ("W_Q", "W_K", "W_V"))
    left = FactoredMatrix(W_V, view.weight("W_O"))
    right = FactoredMatrix(W_Q, W_K.transpose(-2, -1)).T
    expected = tl_composition_scores(left, right)
    later = torch.arange(3)[:, None, None, None] < torch.arange(3)[None, None, :, None]
    expected = torch.where(later, expected, torch.zeros_like(expected))
    ours = composition_scores(view, "K")
    assert (ours - expected).abs().max() < 1e-5
    assert (ours - view.model.all_composition_scores("K").scores).abs().max() > 1e-2  # TL ignores the LN weights


def _eigen_ratio(fm: FactoredMatrix) -> torch.Tensor:
    eigenvalues = fm.eigenvalues
    return eigenvalues.real.sum(-1) / eigenvalues.abs().sum(-1)


@pytest.mark.parametrize("fixture", ["random_view", "random_view_mlp"])
def test_eigenvalue_ratios_match_factored_matrix(fixture, request):
    view = request.getfixturevalue(fixture)
    W_E, W_U = view.weight("W_E").double(), view.weight("W_U").double()
    W_Q, W_K, W_V, W_O = (view.weight(name).double() for name in ("W_Q", "W_K", "W_V", "W_O"))
    expected = {
        ("ov", "full"): _eigen_ratio(FactoredMatrix(W_E @ W_V, W_O @ W_U)),
        ("ov", "bare"): _eigen_ratio(FactoredMatrix(W_V, W_O)),
        ("qk", "full"): _eigen_ratio(FactoredMatrix(W_E @ W_Q, W_K.transpose(-2, -1) @ W_E.T)),
        ("qk", "bare"): _eigen_ratio(FactoredMatrix(W_Q, W_K.transpose(-2, -1))),
    }
    for (which, circuit), reference in expected.items():
        score = score_ov_copying if which == "ov" else score_qk_eigenvalue
        scores = score(_context(view, EigenParams(circuit=circuit)))
        assert not scores.undefined
        assert (scores.values.double() - reference).abs().max() < 1e-5, (which, circuit)
        assert reference.std() > 0.02  # heads differ, so a wrong head order would fail


def test_ov_copying_folds_layer_norm_weights():
    view = make_view(1, n_layers=3, attn_only=False, normalization_type="LN", d_mlp=128)
    before = score_ov_copying(_context(view, EigenParams())).values
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        view.model.ln_final.weight.fill_(-1.0)  # flips every logit: copying becomes anti-copying
        view.model.blocks[1].ln1.weight.copy_(0.2 + 2 * torch.rand(64, generator=generator))
    view.forget_weights()
    after = score_ov_copying(_context(view, EigenParams())).values
    assert torch.allclose(after[[0, 2]], -before[[0, 2]], atol=1e-6)
    W_V = view.weight("W_V")[1].double() * view.model.blocks[1].ln1.weight.detach().double()[None, :, None]
    W_U = -view.weight("W_U").double()
    reference = _eigen_ratio(FactoredMatrix(view.weight("W_E").double() @ W_V, view.weight("W_O")[1].double() @ W_U))
    assert (after[1].double() - reference).abs().max() < 1e-5
    assert (after[1] + before[1]).abs().max() > 1e-3  # the new ln1 weight changed layer 1 beyond the sign


def test_qk_positional_matches_the_models_own_attention():
    view = make_view(5)
    with torch.no_grad():
        view.model.W_E.zero_()  # the residual stream at layer 0 is then W_pos alone (biases are 0 at init)
        view.model.W_pos.mul_(20.0)  # sharper patterns than at init
    view.forget_weights()
    for offset, size in ((1, 64), (3, 20), (0, 64)):
        tokens = torch.randint(1, 64, (1, size), generator=torch.Generator().manual_seed(0))
        _, acts = view.run(tokens, ["blocks.0.attn.hook_pattern"])
        pattern = acts["blocks.0.attn.hook_pattern"][0].double()  # [heads, q, k]
        queries = torch.arange(max(1, offset), size)
        expected = pattern[:, queries, queries - offset].mean(-1)
        scores = score_qk_positional(_context(view, PositionalParams(offset=offset, max_position=size)))
        assert (scores.values[0].double() - expected).abs().max() < 1e-5
        assert expected.max() - expected.min() > 0.02  # heads differ: a wrong head order would fail


# ---------------------------------------------------------------------------------------------- construction


def test_copying_and_anti_copying_heads(built):
    for circuit in ("full", "bare"):
        scores = score_ov_copying(_context(built, EigenParams(circuit=circuit)))
        assert _unit(scores, COPY) == pytest.approx(1.0, abs=1e-5)
        assert _unit(scores, ANTI) == pytest.approx(-1.0, abs=1e-5)
        others = scores.values.clone()
        others[COPY] = others[ANTI] = 0.0
        assert others.nan_to_num().abs().max() < 0.9


def test_zero_ov_head_is_undefined_with_a_reason_and_not_a_member(built):
    from defcheck.language.thresholds import parse_threshold

    for circuit in ("full", "bare"):
        scores = score_ov_copying(_context(built, EigenParams(circuit=circuit)))
        assert math.isnan(_unit(scores, ZERO))
        assert set(scores.undefined) == {"0.6"}
        assert scores.undefined["0.6"].startswith("undefined: 0/0") and "zero" in scores.undefined["0.6"]
        for rule in ("> -2", "<= 2", {"top_k": 64}):
            assert not parse_threshold(rule).select(scores.values)[ZERO]


def test_ov_writing_where_the_unembedding_never_reads_is_undefined():
    view = make_view(12)
    basis = _orthonormal(64, 16, 5)
    with torch.no_grad():
        view.model.W_U.copy_(view.model.W_U - basis[:, :8] @ (basis[:, :8].T @ view.model.W_U))  # blind to S
        view.model.blocks[1].attn.W_O[2].copy_(basis[:, :8].T)  # head 1.2 writes only into S
    view.forget_weights()
    scores = score_ov_copying(_context(view, EigenParams()))
    assert set(scores.undefined) == {"1.2"}
    assert "subspace the unembedding never reads" in scores.undefined["1.2"]
    assert not math.isnan(score_ov_copying(_context(view, EigenParams(circuit="bare"))).values[1, 2].item())


def test_token_matching_head(built):
    for circuit in ("full", "bare"):
        scores = score_qk_eigenvalue(_context(built, EigenParams(circuit=circuit)))
        assert _unit(scores, MATCH) == pytest.approx(1.0, abs=1e-5)
        assert scores.values.flatten().sort().values[-2] < 0.9


def test_previous_token_head_from_positions(built):
    scores = score_qk_positional(_context(built, PositionalParams()))
    assert _unit(scores, PREV) > 0.99
    assert scores.values.flatten().argmax().item() == PREV[0] * 8 + PREV[1]
    assert scores.values.flatten().sort().values[-2] < 0.3
    other_offset = score_qk_positional(_context(built, PositionalParams(offset=2)))
    assert _unit(other_offset, PREV) < 0.01


def test_rotary_model_is_inapplicable_for_positional_qk():
    view = make_view(0, positional_embedding_type="rotary")
    scores = score_qk_positional(_context(view, PositionalParams()))
    assert scores.not_applicable and "rotary" in scores.not_applicable
    assert torch.isnan(scores.values).all() and scores.values.shape == (2, 8)
    assert not torch.isnan(score_ov_copying(_context(view, EigenParams())).values).any()


def test_k_composition_finds_the_reader_of_the_written_subspace(built):
    first_layer = torch.zeros(2, 8, dtype=torch.bool)
    first_layer[0] = True
    related = {"toy.writers": first_layer}
    scores = score_composition(_context(built, CompositionParams(type="K"), related))
    assert scores.values.flatten().nan_to_num(nan=-1).argmax().item() == READER[0] * 8 + READER[1]
    assert scores.evidence["1.5"]["partner"] == "0.2"
    raw = composition_scores(built, "K")
    baseline = random_baseline(64, 8)
    assert scores.evidence["1.5"]["partner_score"] == pytest.approx(raw[0, 2, 1, 5].item() - baseline, abs=1e-6)
    assert _unit(scores, READER) == pytest.approx(raw[0, 2, 1, 5].item() - baseline, abs=1e-6)
    # layer 0 has no earlier member; the zero-OV head 0.6 is skipped as a partner, not fatal
    assert all(scores.undefined[f"0.{h}"] == "no earlier member of toy.writers" for h in range(8))
    assert torch.isnan(scores.values[0]).all() and not torch.isnan(scores.values[1]).any()
    assert all(scores.evidence[f"1.{h}"]["partner"] != "0.6" for h in range(8))


def test_composition_aggregate_baseline_and_members(built):
    only = torch.zeros(2, 8, dtype=torch.bool)
    only[PREV] = True
    only[ZERO] = True
    related = {"toy.prev": only}
    raw = composition_scores(built, "K")
    plain = score_composition(_context(built, CompositionParams(baseline="none"), related))
    assert torch.allclose(plain.values[1], raw[0, 2, 1].float(), atol=1e-6)  # 0.6's pairs are 0/0 and skipped
    summed = score_composition(_context(built, CompositionParams(baseline="none", aggregate="sum"), related))
    assert torch.allclose(summed.values, plain.values, equal_nan=True)
    everyone = torch.ones(2, 8, dtype=torch.bool)
    summed_all = score_composition(
        _context(built, CompositionParams(aggregate="sum", baseline="none"), {"a.b": everyone})
    )
    max_all = score_composition(_context(built, CompositionParams(baseline="none"), {"a.b": everyone}))
    assert (summed_all.values[1] > max_all.values[1] + 0.1).all()
    only_zero = torch.zeros(2, 8, dtype=torch.bool)
    only_zero[ZERO] = True
    undefined = score_composition(_context(built, CompositionParams(), {"toy.zero": only_zero}))
    assert torch.isnan(undefined.values).all()
    assert "zero OV circuit" in undefined.undefined["1.0"]
    assert not undefined.evidence


def test_random_baseline_is_seeded_and_near_one_over_sqrt_d_model():
    assert random_baseline(64, 8, seed=0) == random_baseline(64, 8, seed=0)
    assert random_baseline(64, 8, seed=0) != random_baseline(64, 8, seed=1)
    for d_model, d_head in ((64, 8), (256, 32)):
        assert random_baseline(d_model, d_head) == pytest.approx(d_model**-0.5, rel=0.05)


def test_composition_types_differ_and_are_shared(built):
    context = _context(built, CompositionParams(type="V"), {"x.y": torch.ones(2, 8, dtype=torch.bool)})
    score_composition(context)
    assert [key for key in context.memo if "composition" in key] == [f"{circuits._SHARED}composition:V:{'1' * 16}"]
    assert not torch.allclose(composition_scores(built, "V"), composition_scores(built, "K"))


# ---------------------------------------------------------------------------------------------- end to end

CONCEPT = """\
concept: toy_circuits
unit: attention_head
summary: Hand-built circuits (a test fixture).
references:
  - Elhage et al. 2021, A Mathematical Framework for Transformer Circuits
definitions:
  previous_token:
    kind: mechanistic
    source: Elhage et al. 2021
    all:
      - checker: qk_positional
        params: {offset: 1}
        threshold: ">= 0.5"
  copying:
    kind: mechanistic
    source: Elhage et al. 2021
    all:
      - checker: ov_eigenvalue_copying
        threshold: ">= 0.9"
  token_matching:
    kind: mechanistic
    source: Elhage et al. 2021
    all:
      - checker: qk_eigenvalue
        params: {circuit: full}
        threshold: ">= 0.9"
  reads_previous:
    kind: mechanistic
    source: Elhage et al. 2021
    all:
      - checker: composition
        with: previous_token
        params: {type: K, aggregate: max}
        threshold: {top_k: 1}
"""


def test_end_to_end_through_the_registry(tmp_path, built):
    from defcheck.engine.runner import evaluate
    from defcheck.hooks.manager import load_plugins
    from defcheck.language.registry import load_registry

    (tmp_path / "toy_circuits.yaml").write_text(CONCEPT)
    extensions = load_plugins()
    assert extensions.checkers["composition"].relation == "required"
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    assert not registry.errors, registry.errors
    result = evaluate(built, registry, extensions)
    members = {
        key.split(".", 1)[1]: [built.unit_names()[i] for i in torch.nonzero(value.members.flatten()).flatten()]
        for key, value in result.definitions.items()
    }
    assert members == {
        "previous_token": ["0.2"],
        "copying": ["0.1"],
        "token_matching": ["1.3"],
        "reads_previous": ["1.5"],
    }
    composed = result.definitions["toy_circuits.reads_previous"].scores
    assert composed.evidence["1.5"] == {"partner": "0.2", "partner_score": pytest.approx(_unit(composed, READER))}
    assert composed.undefined["0.3"] == "no earlier member of toy_circuits.previous_token"
    assert "0.6" in result.definitions["toy_circuits.copying"].scores.undefined


def test_zero_value_weights_are_zero_ov_everywhere():
    view = make_view(13)
    with torch.no_grad():
        view.model.blocks[0].attn.W_V[3].zero_()
        view.model.blocks[1].attn.W_K[4].zero_()
    view.forget_weights()
    scores = composition_scores(view, "K")
    assert torch.isnan(scores[0, 3, 1]).all() and torch.isnan(scores[0, :, 1, 4]).all()
    assert not torch.isnan(scores[0, :3, 1, :4]).any()
    ov = score_ov_copying(_context(view, EigenParams()))
    assert ov.undefined == {"0.3": "undefined: 0/0, the head's OV circuit W_V W_O is zero"}
    qk = score_qk_eigenvalue(_context(view, EigenParams(circuit="bare")))
    assert set(qk.undefined) == {"1.4"} and qk.undefined["1.4"].startswith("undefined: 0/0")
    composed = score_composition(_context(view, CompositionParams(), {"c.d": torch.ones(2, 8, dtype=torch.bool)}))
    assert composed.undefined["1.4"] == "undefined: 0/0, the head's W_K W_Q^T (K-side matrix) is zero"
    assert composed.evidence["1.0"]["partner"] != "0.3"


def _joint_context(view, members, **params):
    from defcheck_plugins.circuits import CompositionParams

    context = CheckContext(view, CompositionParams(**params))
    context.related = {"x.partners": members}
    return context


def test_joint_composition_is_the_composition_with_the_summed_ov_circuits():
    """Brute force: W_J = sum of the earlier members' W_V W_O, full d_model x d_model products."""
    from conftest import make_view
    from defcheck_plugins.circuits import head_weight, score_composition

    view = make_view(5, n_layers=3, normalization_type="LN")
    members = torch.zeros(3, view.n_heads, dtype=torch.bool)
    members[0, [0, 2]] = True
    members[1, 1] = True
    scores = score_composition(_joint_context(view, members, type="K", aggregate="joint", baseline="none"))
    w_q, w_k, w_v, w_o = (head_weight(view, name).double() for name in ("W_Q", "W_K", "W_V", "W_O"))
    for layer in (1, 2):
        joint = sum(w_v[a, b] @ w_o[a, b] for a, b in torch.nonzero(members).tolist() if a < layer)
        for head in range(view.n_heads):
            m = w_k[layer, head] @ w_q[layer, head].T
            expected = (joint @ m).norm() / (joint.norm() * m.norm())
            assert scores.values[layer, head].item() == pytest.approx(expected.item(), rel=1e-4)
    assert torch.isnan(scores.values[0]).all()  # no earlier member
    assert scores.evidence["2.0"]["partners"] == ["0.0", "0.2", "1.1"]


def test_joint_composition_with_one_partner_is_the_pairwise_score():
    from conftest import make_view
    from defcheck_plugins.circuits import random_baseline, score_composition

    view = make_view(6, n_layers=2)
    members = torch.zeros(2, view.n_heads, dtype=torch.bool)
    members[0, 3] = True
    for baseline in ("none", "divide"):
        joint = score_composition(_joint_context(view, members, type="Q", aggregate="joint", baseline=baseline))
        best = score_composition(_joint_context(view, members, type="Q", aggregate="max", baseline=baseline))
        assert torch.allclose(joint.values[1], best.values[1], rtol=1e-4)
    assert random_baseline(view.d_model, view.d_head, rank_a=view.d_head) == random_baseline(view.d_model, view.d_head)
    # about 1/sqrt(d_model) whatever the rank of the earlier circuit: a sum of heads is not favoured by chance
    assert random_baseline(64, 8, rank_a=32) == pytest.approx(random_baseline(64, 8), rel=0.05)


def test_weighted_composition_weighs_each_partner_by_its_score():
    """W_J = sum of w_A W_V^A W_O^A, w_A the partner's primary score (negative and NaN count 0)."""
    from conftest import make_view
    from defcheck_plugins.circuits import head_weight, score_composition

    view = make_view(7, n_layers=2)
    members = torch.zeros(2, view.n_heads, dtype=torch.bool)
    members[0, [1, 4, 6]] = True
    primary = torch.full((2, view.n_heads), 0.5)
    primary[0, 1], primary[0, 4], primary[0, 6] = 3.0, 0.25, float("nan")
    context = _joint_context(view, members, type="K", aggregate="weighted", baseline="none")
    context.related_scores = {"x.partners": primary}
    scores = score_composition(context)
    w_q, w_k, w_v, w_o = (head_weight(view, name).double() for name in ("W_Q", "W_K", "W_V", "W_O"))
    joint = 3.0 * w_v[0, 1] @ w_o[0, 1] + 0.25 * w_v[0, 4] @ w_o[0, 4]
    for head in range(view.n_heads):
        m = w_k[1, head] @ w_q[1, head].T
        expected = (joint @ m).norm() / (joint.norm() * m.norm())
        assert scores.values[1, head].item() == pytest.approx(expected.item(), rel=1e-4)
    assert scores.evidence["1.0"] == {"partners": ["0.1", "0.4", "0.6"], "weights": [3.0, 0.25, 0.0], "partner": "0.1"}
    equal = score_composition(_joint_context(view, members, type="K", aggregate="joint", baseline="none"))
    assert not torch.allclose(equal.values[1], scores.values[1])  # the weights changed the scores
