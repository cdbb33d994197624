"""Tests of the attention_pattern checker (plugins/attention.py)."""

from __future__ import annotations

import math

import pytest
import torch
from defcheck_plugins.attention import (
    PATTERN_HOOK,
    PatternParams,
    pattern_scores,
    score_attention_pattern,
    target_mask,
)
from defcheck_plugins.probes import RepeatedParams, build_repeated
from transformer_lens import head_detector

from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeRequest
from defcheck.models.view import TokenSpace


def _probe(view, **params):
    return build_repeated(ProbeRequest(RepeatedParams(**params), view.tokens, seed=0, n_ctx=view.n_ctx))


def _context(view, probe, **params):
    names = [PATTERN_HOOK.format(layer) for layer in range(view.n_layers)]
    logits, activations = view.run(probe.tokens, names)
    return CheckContext(view, PatternParams(**params), probe=probe, logits=logits, activations=activations)


def test_targets_follow_definitions():
    tokens = torch.tensor([[0, 5, 6, 7, 5, 6]])
    prefix = target_mask("prefix_matching", tokens, bos=True)[0]
    assert prefix[4].nonzero().flatten().tolist() == [2]  # token 5 at 4: the token after the earlier 5
    assert prefix[5].nonzero().flatten().tolist() == [3]
    assert not prefix[:4].any()
    duplicate = target_mask("duplicate_token", tokens, bos=True)[0]
    assert duplicate[4].nonzero().flatten().tolist() == [1]
    assert target_mask("previous_token", tokens, bos=True)[0][3].nonzero().flatten().tolist() == [2]
    assert target_mask("fixed_offset:3", tokens, bos=True)[0][5].nonzero().flatten().tolist() == [2]
    assert target_mask("bos", tokens, bos=True)[0][:, 0].all()


def test_a_perfect_induction_pattern_scores_one_where_detect_head_scores_under_half():
    tokens = torch.tensor([[0, 11, 12, 13, 14, 11, 12, 13, 14]])
    targets = target_mask("prefix_matching", tokens, bos=True)
    pattern = torch.zeros(1, 1, 1, 9, 9)
    pattern[0, 0, 0, :, 0] = 1.0  # rows without a target rest on BOS
    rows = targets[0].any(-1)
    pattern[0, 0, 0, rows] = targets[0][rows].float()
    ours = pattern_scores(pattern, targets, bos=True, exclude_bos=False, exclude_current_token=False)
    theirs = head_detector.compute_head_attention_similarity_score(
        pattern[0, 0, 0],
        detection_pattern=targets[0].float(),
        exclude_bos=False,
        exclude_current_token=False,
        error_measure="mul",
    )
    assert ours.item() == pytest.approx(1.0)
    assert theirs < 0.5


def test_exclusions_remove_targets_and_attention():
    tokens = torch.tensor([[0, 3, 4]])
    targets = target_mask("previous_token", tokens, bos=True)
    pattern = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0.25, 0.5, 0.25]]).reshape(1, 1, 1, 3, 3)
    plain = pattern_scores(pattern, targets, bos=True, exclude_bos=False, exclude_current_token=False)
    assert plain.item() == pytest.approx((0.5 + 0.5) / 2)
    no_bos = pattern_scores(pattern, targets, bos=True, exclude_bos=True, exclude_current_token=False)
    assert no_bos.item() == pytest.approx(0.5 / 0.75)  # row 1's only target is BOS: it no longer counts
    no_self = pattern_scores(pattern, targets, bos=True, exclude_bos=False, exclude_current_token=True)
    assert no_self.item() == pytest.approx((0.5 + 0.5) / (0.5 + 0.75))


@pytest.mark.parametrize(
    ("pattern", "tl_name"),
    [
        ("previous_token", "previous_token_head"),
        ("duplicate_token", "duplicate_token_head"),
        ("prefix_matching", "induction_head"),
    ],
)
def test_parity_with_detect_head_under_the_same_row_convention(random_view, pattern, tl_name):
    """detect_head divides by every query row; ours by the rows that have a target. Rescaled, they agree."""
    probe = _probe(random_view, n=4, length=6, bos=True)
    ours = score_attention_pattern(_context(random_view, probe, pattern=pattern)).values
    model = random_view.model
    expected = torch.zeros_like(ours)
    for row in probe.tokens:
        sequence = row[None]
        model.to_tokens = lambda _seq, _s=sequence, **_: _s  # detect_head needs a tokenizer; this model has none
        try:
            raw = head_detector.detect_head(model, "unused", tl_name)
        finally:
            del model.to_tokens
        detection = getattr(head_detector, f"get_{tl_name}_detection_pattern")(sequence)
        target_rows = int((detection.sum(-1) > 0).sum())
        expected += raw * row.numel() / target_rows
    expected /= probe.tokens.shape[0]
    torch.testing.assert_close(ours, expected.float(), atol=1e-5, rtol=1e-5)


def test_min_aggregate_takes_the_worst_repeat_length(random_view):
    probe = _probe(random_view, n=4, length=[3, 9], bos=True)
    context = _context(random_view, probe, pattern="prefix_matching", aggregate="min")
    lowest = score_attention_pattern(context).values
    mean = score_attention_pattern(_context(random_view, probe, pattern="prefix_matching")).values
    assert (lowest <= mean + 1e-6).all()
    assert (lowest < mean - 1e-6).any()


def test_a_constructed_previous_token_head_scores_about_one_and_ranks_first(random_view):
    from conftest import make_view

    view = make_view(3)
    d_model = view.d_model
    positions = torch.arange(view.n_ctx, dtype=torch.float32)
    freqs = torch.tensor([1.0, 2.0, 4.0, 8.0]) * 2 * math.pi / view.n_ctx
    angles = positions[:, None] * freqs[None]  # [n_ctx, 4]
    embed = torch.zeros(view.n_ctx, d_model)
    embed[:, 0:8:2] = torch.cos(angles)
    embed[:, 1:8:2] = torch.sin(angles)
    rotate = torch.zeros(d_model, view.d_head)  # query of position i points at position i - 1
    for m, w in enumerate(freqs.tolist()):
        c, s = math.cos(w), math.sin(w)
        rotate[2 * m, 2 * m], rotate[2 * m + 1, 2 * m] = c, s
        rotate[2 * m, 2 * m + 1], rotate[2 * m + 1, 2 * m + 1] = -s, c
    identity = torch.zeros(d_model, view.d_head)
    identity[:8, :8] = torch.eye(8)
    with torch.no_grad():
        view.model.W_pos.copy_(embed)
        view.model.W_E[:, :8] = 0
        view.model.blocks[0].attn.W_Q[2].copy_(rotate * 40)
        view.model.blocks[0].attn.W_K[2].copy_(identity)
        view.model.blocks[0].attn.b_Q[2].zero_()
        view.model.blocks[0].attn.b_K[2].zero_()
    view.forget_weights()
    probe = build_repeated(ProbeRequest(RepeatedParams(n=4, length=10), TokenSpace(64, 0), 0, view.n_ctx))
    scores = score_attention_pattern(_context(view, probe, pattern="previous_token")).values
    assert scores[0, 2] > 0.95
    assert scores.flatten().argmax().item() == 2


def test_chance_is_what_a_uniform_head_scores():
    """relative_to: chance divides by a uniform head's score: (1/2 + 1/3 + 1/4) / 3 for the previous token on
    [BOS] a b c under a causal mask, every key of every row on a bidirectional model."""
    from types import SimpleNamespace

    from defcheck_plugins.attention import PatternParams, chance_scores, target_mask

    tokens = torch.tensor([[9, 1, 2, 3]])
    params = PatternParams(pattern="previous_token", relative_to="chance")
    targets = target_mask("previous_token", tokens, True)
    causal = SimpleNamespace(cfg=SimpleNamespace(attention_dir="causal"))
    assert chance_scores(causal, targets, True, params).item() == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)
    both = SimpleNamespace(cfg=SimpleNamespace(attention_dir="bidirectional"))
    assert chance_scores(both, targets, True, params).item() == pytest.approx(1 / 4)
    no_bos = PatternParams(pattern="previous_token", exclude_bos=True)
    assert chance_scores(causal, targets, True, no_bos).item() == pytest.approx((1 / 3 + 1 / 4) / (2 / 3 + 3 / 4))


def test_relative_to_chance_is_the_raw_score_over_the_uniform_heads(random_view):
    """Per sequence: the raw score over the uniform head's, computed here row by row; then the mean."""
    from defcheck_plugins.attention import pattern_scores, score_attention_pattern

    probe = _probe(random_view, n=4, length=[5, 9])
    relative = score_attention_pattern(
        _context(random_view, probe, pattern="prefix_matching", relative_to="chance")
    ).values
    names = [PATTERN_HOOK.format(layer) for layer in range(random_view.n_layers)]
    _, activations = random_view.run(probe.tokens, names)
    patterns = torch.stack([activations[name] for name in names]).float()
    targets = target_mask("prefix_matching", probe.tokens, probe.bos)
    raw = pattern_scores(patterns, targets, bos=True, exclude_bos=False, exclude_current_token=False)
    chance = []
    for sequence in targets:
        shares = [sequence[q, : q + 1].sum().item() / (q + 1) for q in range(sequence.shape[0]) if sequence[q].any()]
        chance.append(sum(shares) / len(shares))
    expected = (raw / torch.tensor(chance)[None, :, None]).mean(1)
    assert torch.allclose(relative, expected, rtol=1e-4)
    assert (relative - 1).abs().max() < 0.05  # a random model's near-uniform heads are at chance
