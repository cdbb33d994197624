"""Weight-based checkers on architectures beyond the toy models: LayerNorm scale in qk_positional."""

from __future__ import annotations

import math

import torch
from conftest import make_view
from defcheck_plugins.circuits import PositionalParams, score_qk_positional

from defcheck.engine.context import CheckContext


def _previous_position_ln_view():
    """A LayerNorm model whose residual at layer 0 is W_pos alone (rows centred, of one norm), and whose head
    0.2 turns position i's query towards the key of position i - 1."""
    view = make_view(3, normalization_type="LN")
    d_model, n_ctx = view.d_model, view.n_ctx
    freqs = torch.tensor([1.0, 2.0, 4.0, 8.0]) * 2 * math.pi / n_ctx
    angles = torch.arange(n_ctx, dtype=torch.float32)[:, None] * freqs[None]
    waves = torch.zeros(n_ctx, 8)
    waves[:, 0::2], waves[:, 1::2] = torch.cos(angles), torch.sin(angles)
    positions = torch.zeros(n_ctx, d_model)
    positions[:, :8], positions[:, 8:16] = waves * 0.3, -waves * 0.3  # mean 0, small norm: only LN makes it sharp
    rotate = torch.zeros(d_model, view.d_head)
    for m, w in enumerate(freqs.tolist()):
        c, s = math.cos(w), math.sin(w)
        rotate[2 * m, 2 * m], rotate[2 * m + 1, 2 * m] = c, s
        rotate[2 * m, 2 * m + 1], rotate[2 * m + 1, 2 * m + 1] = -s, c
    identity = torch.zeros(d_model, view.d_head)
    identity[:8, :8] = torch.eye(8)
    with torch.no_grad():
        view.model.W_pos.copy_(positions)
        view.model.W_E.zero_()
        view.model.blocks[0].attn.W_Q[2].copy_(rotate * 3)
        view.model.blocks[0].attn.W_K[2].copy_(identity)
        view.model.blocks[0].attn.b_Q.zero_()
        view.model.blocks[0].attn.b_K.zero_()
    view.forget_weights()
    return view


def test_qk_positional_applies_the_layernorm_scale():
    view = _previous_position_ln_view()
    assert view.normalization == "LN"
    size = 32
    tokens = torch.randint(1, 64, (1, size), generator=torch.Generator().manual_seed(0))
    _, acts = view.run(tokens, ["blocks.0.attn.hook_pattern"])
    pattern = acts["blocks.0.attn.hook_pattern"][0].double()  # [heads, q, k], brute force: the model itself
    queries = torch.arange(1, size)
    expected = pattern[:, queries, queries - 1].mean(-1)
    context = CheckContext(view, PositionalParams(offset=1, max_position=size))
    scores = score_qk_positional(context).values[0].double()
    assert expected[2] > 0.9  # the constructed head does attend to the previous position
    assert scores[2] > 0.9
    assert (scores - expected).abs().max() < 1e-4  # every head of layer 0, not only the built one
