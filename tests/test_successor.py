"""Tests of the successor-head checkers (plugins/successor.py) on a hand-built successor head."""

from __future__ import annotations

import pytest
import torch
from defcheck_plugins.successor import (
    OrdinalParams,
    SuccessorParams,
    build_ordinal,
    ordinal_groups,
    score_ov_successor,
    score_successor_logits,
)

from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeRequest
from defcheck.engine.scores import NotApplicable


class DigitTokenizer:
    """Knows the numbers 1..12 as tokens 1..12 and nothing else."""

    def encode(self, text, add_special_tokens=False):
        word = text.strip()
        if text == word and word.isdigit() and 1 <= int(word) <= 12:
            return [int(word)]
        return [0, 0]


def _successor_view():
    """Head 1.3 attends to the current token and its OV maps token i to the logit of token i + 1."""
    from conftest import make_view

    view = make_view(5, d_model=32, d_vocab=32, n_ctx=16)
    heads, d_head, layer, head = view.n_heads, view.d_head, 1, 3
    embed = torch.zeros(32, 32)
    embed[torch.arange(32), torch.arange(32)] = 1.0
    shift = torch.zeros(32, 32)  # residual direction i raises the logit of i + 1
    shift[torch.arange(31), torch.arange(1, 32)] = 1.0
    with torch.no_grad():
        view.model.W_E.copy_(embed)
        view.model.W_pos.zero_()
        view.model.W_U.copy_(shift)
        for other in range(heads):
            for w in ("W_Q", "W_K", "W_V"):
                getattr(view.model.blocks[layer].attn, w)[other].zero_()
        for block in view.model.blocks:
            block.attn.W_O.mul_(0.01)
            block.attn.b_O.zero_()
        read = torch.zeros(32, d_head)
        read[1:9, :8] = torch.eye(8)  # tokens 1..8 into the head's 8 dimensions
        view.model.blocks[layer].attn.W_Q[head].copy_(read * 20)
        view.model.blocks[layer].attn.W_K[head].copy_(read)
        view.model.blocks[layer].attn.W_V[head].copy_(read)
        view.model.blocks[layer].attn.W_O[head].copy_(read.T * 10)
        for name in ("b_Q", "b_K", "b_V"):
            getattr(view.model.blocks[layer].attn, name).zero_()
    view.model.tokenizer = DigitTokenizer()
    view.forget_weights()
    return view, layer, head


def test_no_tokenizer_means_not_applicable():
    with pytest.raises(NotApplicable, match="no tokenizer"):
        ordinal_groups(None)


def test_groups_come_from_single_token_ordinal_words():
    assert ordinal_groups(DigitTokenizer()) == [list(range(1, 13))]


def test_the_constructed_successor_head_ranks_first_on_both_checkers():
    view, layer, head = _successor_view()
    mechanistic = score_ov_successor(CheckContext(view, SuccessorParams())).values
    assert mechanistic.flatten().argmax().item() == layer * view.n_heads + head
    assert mechanistic[layer, head] == pytest.approx(8 / 11)  # tokens 1..8 map to 2..9; 9..11 are outside its OV
    probe = build_ordinal(ProbeRequest(OrdinalParams(n=16, length=4), view.tokens, 0, view.n_ctx, view.model.tokenizer))
    names = [f"blocks.{i}.attn.hook_z" for i in range(view.n_layers)]
    logits, activations = view.run(probe.tokens, names)
    context = CheckContext(view, SuccessorParams(), probe=probe, logits=logits, activations=activations)
    behavioral = score_successor_logits(context).values
    assert behavioral.flatten().argmax().item() == layer * view.n_heads + head
    assert behavioral[layer, head] > 0.5
