"""attention_pattern at 0/0 and near it: undefined with a reason, and exact ratios for tiny denominators."""

from __future__ import annotations

import math

import pytest
import torch
from defcheck_plugins.attention import PatternParams, finish_attention_pattern, pattern_scores, target_mask
from defcheck_plugins.probes import RepeatedParams, build_repeated

from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeBatch, ProbeRequest


def _brute_force(pattern: torch.Tensor, targets: torch.Tensor, exclude_current: bool) -> float:
    """The ratio for one head of one sequence, by loops over query rows and keys, in Python floats."""
    size = pattern.shape[-1]
    kept = [[bool(targets[q, k]) and not (exclude_current and q == k) for k in range(size)] for q in range(size)]
    numerator = denominator = 0.0
    for q in range(size):
        if not any(kept[q]):
            continue
        for k in range(size):
            if exclude_current and q == k:
                continue
            value = float(pattern[q, k])
            denominator += value
            numerator += value if kept[q][k] else 0.0
    return numerator / denominator if denominator else math.nan


def _self_attending(size: int) -> torch.Tensor:
    return torch.eye(size).reshape(1, 1, 1, size, size)


def test_one_hot_self_attention_without_the_current_token_is_undefined_not_zero():
    tokens = torch.tensor([[0, 3, 4, 5, 6]])
    targets = target_mask("previous_token", tokens, bos=True)
    score = pattern_scores(_self_attending(5), targets, bos=True, exclude_bos=False, exclude_current_token=True)
    assert math.isnan(score.item())
    assert math.isnan(_brute_force(_self_attending(5)[0, 0, 0], targets[0], True))


def test_a_tiny_denominator_gives_the_exact_ratio():
    tokens = torch.tensor([[0, 3, 4, 5, 6]])
    targets = target_mask("previous_token", tokens, bos=True)
    pattern = _self_attending(5)
    for q in range(1, 5):  # almost all on itself; of the rest, most on the previous token
        pattern[0, 0, 0, q, q - 1] = 2e-20
        pattern[0, 0, 0, q, 0 if q > 1 else 2] += 1e-22
    score = pattern_scores(pattern, targets, bos=True, exclude_bos=False, exclude_current_token=True).item()
    expected = _brute_force(pattern[0, 0, 0], targets[0], True)
    assert 0.99 < expected < 1.0
    assert score == pytest.approx(expected, rel=1e-5)


def test_the_report_names_0_over_0_as_the_reason(random_view):
    probe = build_repeated(
        ProbeRequest(RepeatedParams(n=4, length=8), random_view.tokens, seed=0, n_ctx=random_view.n_ctx)
    )
    assert probe.tokens is not None
    n, size = probe.tokens.shape
    heads = random_view.n_heads
    patterns = torch.eye(size).expand(random_view.n_layers, n, heads, size, size).clone()
    patterns[0, :, 1] = torch.tril(torch.ones(size, size)) / torch.arange(1, size + 1)[:, None]  # uniform: defined
    params = PatternParams(pattern="previous_token", exclude_current_token=True)
    targets = target_mask("previous_token", probe.tokens, probe.bos)
    partial = pattern_scores(patterns, targets, bos=probe.bos, exclude_bos=False, exclude_current_token=True)
    context = CheckContext(random_view, params, probe=probe)
    scores = finish_attention_pattern(context, [partial])
    units = random_view.unit_names()
    values = scores.values.flatten()
    defined = units.index("0.1")
    assert not math.isnan(values[defined].item()) and values[defined].item() > 0
    assert "0.1" not in scores.undefined
    for index, unit in enumerate(units):
        if index != defined:
            assert math.isnan(values[index].item())
            assert scores.undefined[unit].startswith("0/0")


def test_negative_offsets_validate_and_target_the_token_ahead():
    tokens = torch.tensor([[0, 3, 4, 5, 6]])
    targets = target_mask("fixed_offset:-1", tokens, bos=True)[0]
    assert [row.nonzero().flatten().tolist() for row in targets] == [[1], [2], [3], [4], []]
    with pytest.raises(ValueError):
        PatternParams(pattern="fixed_offset:x")


def test_a_head_cannot_attend_ahead_on_a_causal_model(random_view):
    from defcheck_plugins.attention import step_attention_pattern

    from defcheck.plugin import NotApplicable

    probe = build_repeated(ProbeRequest(RepeatedParams(n=2, length=4), random_view.tokens, seed=0, n_ctx=64))
    context = CheckContext(random_view, PatternParams(pattern="fixed_offset:-1"), probe=probe)
    with pytest.raises(NotApplicable, match="causal"):
        step_attention_pattern(context)


def test_next_token_attention_on_a_bidirectional_encoder_matches_its_patterns():
    from defcheck_plugins.attention import PATTERN_HOOK, step_attention_pattern
    from test_architectures_circuits import _tiny_bert

    from defcheck.models import ModelView, TokenSpace

    _, bridge = _tiny_bert()
    view = ModelView(bridge, TokenSpace(64, bos_token_id=None), name="tiny-bert")
    tokens = torch.randint(5, 64, (3, 12), generator=torch.Generator().manual_seed(1))
    names = [PATTERN_HOOK.format(layer) for layer in range(view.n_layers)]
    logits, activations = view.run(tokens, names)
    probe = ProbeBatch("given", {}, tokens)
    context = CheckContext(
        view, PatternParams(pattern="fixed_offset:-1"), probe=probe, logits=logits, activations=activations
    )
    scores = step_attention_pattern(context)  # [layers, batch, heads]
    for layer in range(view.n_layers):
        pattern = activations[names[layer]].double()  # [batch, heads, q, k]
        for b in range(3):
            for h in range(view.n_heads):
                expected = sum(float(pattern[b, h, q, q + 1]) for q in range(11)) / sum(
                    float(pattern[b, h, q].sum()) for q in range(11)
                )
                assert abs(scores[layer, b, h].item() - expected) < 1e-5
