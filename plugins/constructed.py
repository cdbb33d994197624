"""Hand-built models whose mechanism is known because we wrote the weights: ground truth for the checkers.

Every model here is an ordinary TransformerLens 4 ``TransformerBridge`` (built from a config with
:func:`~defcheck.models.build_bridge`), whose weights are then set by hand so that named heads implement
named mechanisms. ``CONSTRUCTED`` maps a name to a builder returning a :class:`ModelView`;
``defcheck run --model builtin:NAME`` resolves these names when no shipped weights have that name.

The residual stream
-------------------
The residual stream is cut into **one-hot subspaces**, so a head's job can be read off its weights:

========  ==========================  ========================================================================
name      size                        holds
========  ==========================  ========================================================================
TOK       ``d_vocab``                 the current token: ``W_E[t] = e_TOK(t)``
PREV      ``d_vocab``                 the previous token, written by a previous-token head
OUT       ``d_vocab``                 what the model predicts: ``W_U`` reads it and nothing else
                                      (``W_U[OUT(t), t] = 1``), and no head reads it
POS       ``n_ctx``                   the position: ``W_pos[p] = e_POS(p)``
QPOS      ``n_ctx``                   "the position after an earlier copy of my token" (Q-composition model)
SCRATCH   8                           a subspace nothing reads (degenerate heads write here)
BAL       1 (LayerNorm models only)   minus the sum of every written vector's other coordinates
========  ==========================  ========================================================================

Heads read and write these through identity blocks, so ``W_Q``, ``W_K`` (``[d_model, d_head]``) are
permutations of one-hot codes scaled by ``a = sqrt(SHARP * sqrt(d_head))``: a query that matches a key scores
``a * a / sqrt(d_head) = SHARP`` (12) and every other key 0, so the softmax puts ``e^12 / (e^12 + n - 1) >
0.9997`` of the attention on a unique match among ``n <= 48`` keys, and attends uniformly where nothing
matches. ``d_head = max(d_vocab, n_ctx)`` so one head can carry a whole one-hot code.

The distractors
---------------
Every model has the three heads below somewhere; they are what a checker must *not* rank first:

- **uniform**: ``W_Q = W_K = 0``, so every score is 0 and it attends uniformly to ``0..i``;
- **BOS-attending**: its query maps every position to one vector ``u`` (``W_Q[POS(p)] = a u``), its key maps
  the BOS token to ``u`` (``W_K[TOK(BOS)] = a u``): the score is ``SHARP`` on the BOS position only;
- **current-token**: query and key both read POS through the identity: the score is ``SHARP`` on ``j = i``.

Their OV circuits are small seeded random maps TOK -> OUT (``0.3 R``, ``R`` Gaussian with variance
``1/d_vocab``): they change the logits a little, in no particular direction, and touch no subspace a head
reads, so they never disturb the circuits above them.

LayerNorm and MLPs (``induction-ln``)
-------------------------------------
LayerNorm centers a vector (subtracts the mean of its coordinates) and divides it by its RMS. With the BAL
coordinate every vector written into the residual stream (``W_E`` and ``W_pos`` rows, every head's ``W_O``
row and ``b_O``, every MLP's ``W_out`` row) has coordinate sum 0, so the sum of the residual stream is 0 and
centering is the identity. Dividing by the RMS rescales each position's query or key by a positive number:
a matching key still scores highest (the scores are bilinear), only sharper. So every derivation above
holds through LayerNorm. The MLPs are bigram tables: neuron ``t`` reads ``TOK(t)`` (``W_in = I``, no bias,
so the ReLU passes only the current token's neuron) and writes ``OUT(pi(t))`` with weight 0.5, raising
the logit of a fixed other token ``pi(t)``: the model's predictions change, the heads' do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import ModelView, TokenSpace, build_bridge

__all__ = [
    "CONSTRUCTED",
    "IMPOSTOR_LENGTH",
    "Layout",
    "NumberTokenizer",
    "anti_induction",
    "build",
    "constructed_names",
    "degenerate",
    "impostor",
    "induction",
    "induction_ln",
    "load_constructed",
    "near_threshold",
    "q_composition",
    "successor",
]

VOCAB = 32
N_CTX = 48
SCRATCH = 8
SHARP = 12.0  # the attention score of a matching key, after the division by sqrt(d_head)
DISTRACTOR_OV = 0.3
BIGRAM = 0.5
IMPOSTOR_LENGTH = 13
NEAR_MEMBERS = 11  # near_threshold_head: the tokens after which it attends to the previous position ...
NEAR_EDGE = 15.0  # ... and how much of it the next token gets (calibrated: a mean score of 0.3991)
BOS = 0


# --------------------------------------------------------------------------------------------------------------
# the residual stream


@dataclass(frozen=True)
class Layout:
    """Where each one-hot subspace lives in the residual stream (see the module docstring)."""

    d_vocab: int = VOCAB
    n_ctx: int = N_CTX
    balance: bool = False

    def _span(self, start: int, size: int) -> slice:
        return slice(start, start + size)

    @property
    def tok(self) -> slice:
        return self._span(0, self.d_vocab)

    @property
    def prev(self) -> slice:
        return self._span(self.d_vocab, self.d_vocab)

    @property
    def out(self) -> slice:
        return self._span(2 * self.d_vocab, self.d_vocab)

    @property
    def pos(self) -> slice:
        return self._span(3 * self.d_vocab, self.n_ctx)

    @property
    def qpos(self) -> slice:
        return self._span(3 * self.d_vocab + self.n_ctx, self.n_ctx)

    @property
    def scratch(self) -> slice:
        return self._span(3 * self.d_vocab + 2 * self.n_ctx, SCRATCH)

    @property
    def bal(self) -> int | None:
        return 3 * self.d_vocab + 2 * self.n_ctx + SCRATCH if self.balance else None

    @property
    def d_model(self) -> int:
        return 3 * self.d_vocab + 2 * self.n_ctx + SCRATCH + int(self.balance)

    @property
    def d_head(self) -> int:
        return max(self.d_vocab, self.n_ctx)

    @property
    def strength(self) -> float:
        """``a``: a query entry times a key entry, over ``sqrt(d_head)``, is ``SHARP``."""
        return math.sqrt(SHARP * math.sqrt(self.d_head))

    def to_dict(self) -> dict[str, Any]:
        def span(s: slice) -> list[int]:
            return [s.start, s.stop]

        out: dict[str, Any] = {
            "TOK": span(self.tok),
            "PREV": span(self.prev),
            "OUT": span(self.out),
            "POS": span(self.pos),
            "QPOS": span(self.qpos),
            "SCRATCH": span(self.scratch),
        }
        if self.bal is not None:
            out["BAL"] = [self.bal, self.bal + 1]
        return out


class NumberTokenizer:
    """A tokenizer for the constructed vocabulary: id 0 is ``<bos>``, id ``t`` (1..d_vocab-1) is the number
    ``t``. It lets the successor checkers find ordinal tokens (``1 2 3 ...``) in these models."""

    def __init__(self, d_vocab: int):
        self.d_vocab = d_vocab
        self.bos_token_id = BOS
        self.all_special_ids = [BOS]
        self._ids = {"<bos>": BOS, **{str(t): t for t in range(1, d_vocab)}}

    def __len__(self) -> int:
        return self.d_vocab

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """The ids of space-separated known tokens (``"3 4"`` -> ``[3, 4]``); ``[]`` if any word is unknown."""
        words = text.split(" ")
        return [self._ids[word] for word in words] if all(word in self._ids for word in words) else []

    def decode(self, ids: Any) -> str:
        values = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return " ".join("<bos>" if int(t) == BOS else str(int(t)) for t in values)


# --------------------------------------------------------------------------------------------------------------
# heads: each recipe fills one head's W_Q, W_K, W_V, W_O ([d_model, d_head] / [d_head, d_model])


@dataclass
class Head:
    """One head's weights in TransformerLens's convention, and what it is, in words."""

    role: str
    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor


def _zeros(layout: Layout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    d, h = layout.d_model, layout.d_head
    return torch.zeros(d, h), torch.zeros(d, h), torch.zeros(d, h), torch.zeros(h, d)


def _eye(n: int) -> torch.Tensor:
    return torch.eye(n)


def _shift(n: int, offset: int) -> torch.Tensor:
    """``[n, n]`` with ``S[p, p - offset] = 1`` where ``p - offset`` is in range (row p maps to p - offset)."""
    matrix = torch.zeros(n, n)
    rows = torch.arange(max(0, offset), min(n, n + offset))
    matrix[rows, rows - offset] = 1.0
    return matrix


def _copy_ov(layout: Layout, W_V: torch.Tensor, W_O: torch.Tensor, sign: float = 1.0) -> None:
    """OV: TOK(t) -> OUT(t) times ``sign``: the head raises (or lowers) the logit of the token it attends to."""
    n = layout.d_vocab
    W_V[layout.tok, :n] = _eye(n)
    W_O[:n, layout.out] = sign * _eye(n)


def _random_ov(layout: Layout, W_V: torch.Tensor, W_O: torch.Tensor, generator: torch.Generator) -> None:
    n = layout.d_vocab
    W_V[layout.tok, :n] = _eye(n)
    W_O[:n, layout.out] = DISTRACTOR_OV * torch.randn(n, n, generator=generator) / math.sqrt(n)


def previous_token_head(layout: Layout, generator: torch.Generator, *, ov: str = "prev") -> Head:
    """Attends from position ``i`` to ``i - 1`` from positional embeddings alone, and writes the token it
    attends to into PREV.

    QK: ``W_Q[POS(p)] = a f_{p-1}`` and ``W_K[POS(j)] = a f_j`` (``f`` the head-space basis), so the score of
    key ``j`` for query ``i`` is ``SHARP`` if ``j = i - 1`` and 0 otherwise: whatever the tokens, almost all
    the attention goes to the previous position (position 0 has only itself). OV: ``W_V[TOK(t)] = f_t``,
    ``W_O[f_t] = e_PREV(t)``, so position ``i`` receives ``e_PREV(tok[i-1])``. ``ov="zero"`` leaves the OV
    circuit zero (the same attention, nothing written).
    """
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n = layout.strength, layout.n_ctx
    W_Q[layout.pos, :n] = a * _shift(n, 1)
    W_K[layout.pos, :n] = a * _eye(n)
    role = "previous-token head (QK on positions: i attends to i-1; OV: token -> PREV)"
    if ov == "prev":
        W_V[layout.tok, : layout.d_vocab] = _eye(layout.d_vocab)
        W_O[: layout.d_vocab, layout.prev] = _eye(layout.d_vocab)
    else:
        role = "previous-token head with a zero OV circuit (attends to i-1, writes nothing)"
    return Head(role, W_Q, W_K, W_V, W_O)


def induction_head(layout: Layout, generator: torch.Generator, *, sign: float = 1.0, ov: str = "out") -> Head:
    """The induction head of a K-composition circuit (Elhage et al. 2021).

    QK: the query reads the current token, ``W_Q[TOK(t)] = a f_t``; the key reads what the previous-token head
    wrote, ``W_K[PREV(t)] = a f_t``. Key ``j`` holds ``e_PREV(tok[j-1])``, so the score is ``SHARP`` exactly where
    ``tok[j-1] = tok[i]``: the head attends to the token *after* an earlier copy of the current token (prefix
    matching), and only through the previous-token head's output (K-composition: ``W_OV^prev W_K W_Q^T`` maps
    TOK to TOK as the identity). OV: TOK(t) -> OUT(t), so it raises the logit of the token it attends to, the
    [B] of [A][B] ... [A] (copying; the full OV circuit ``W_E W_V W_O W_U`` is the identity, every eigenvalue
    1). ``sign=-1`` negates the OV (anti-induction: the same attention, lowering [B]); ``ov="scratch"`` writes
    into SCRATCH instead, which the unembedding never reads (full OV circuit zero).
    """
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n = layout.strength, layout.d_vocab
    W_Q[layout.tok, :n] = a * _eye(n)
    W_K[layout.prev, :n] = a * _eye(n)
    if ov == "scratch":
        W_V[layout.tok, :SCRATCH] = torch.eye(n, SCRATCH)
        W_O[:SCRATCH, layout.scratch] = _eye(SCRATCH)
        role = "prefix-matching head whose OV writes only into SCRATCH, which the unembedding never reads"
    else:
        _copy_ov(layout, W_V, W_O, sign)
        role = (
            "induction head (K-composition: keys read PREV; OV copies)"
            if sign > 0
            else "anti-induction head (induction QK, negated OV: lowers the token it attends to)"
        )
    return Head(role, W_Q, W_K, W_V, W_O)


def near_threshold_head(
    layout: Layout, generator: torch.Generator, *, members: int = NEAR_MEMBERS, edge: float = NEAR_EDGE
) -> Head:
    """A previous-token head for some previous tokens only, made to score at the built-in ``attends_previous``
    threshold (0.4) on random tokens, so that the probe's draw decides its membership.

    QK: the previous-token head's positional shift (score ``SHARP`` on ``j = i - 1``), plus a penalty on the key
    by its token, the same for every query: ``W_K[TOK(t)] = -(c_t a / SHARP) sum_p f_p`` gives every key with
    token ``t`` the score ``-c_t``. ``c = 0`` for BOS and the first ``members`` tokens after it, ``2 SHARP`` for the
    others, and ``2 SHARP - edge`` for the next one: the head attends to the previous position when the previous
    token is one of the ``members`` (score ``SHARP`` against 0), and elsewhere (to the keys of those tokens, or
    BOS) when it is not. So its score is about the share of queries whose previous token is a member: with 11 of
    the 31 drawn tokens and ``edge`` 15 for the twelfth, a mean of 0.3991 over 20 seeds of the 256 x 32 random-token
    probe, seed-to-seed sd 0.0052 (measured; in seeds 0-9 it passes in 6). From positional embeddings alone its
    QK circuit is a perfect previous-token head (``qk_positional`` 1). OV: a distractor's small random map.
    """
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n = layout.strength, layout.n_ctx
    W_Q[layout.pos, :n] = a * _shift(n, 1)
    W_K[layout.pos, :n] = a * _eye(n)
    penalty = torch.full((layout.d_vocab,), 2 * SHARP)
    penalty[BOS] = 0.0
    penalty[1 : 1 + members] = 0.0
    penalty[1 + members] = 2 * SHARP - edge
    W_K[layout.tok, :n] = -(penalty * a / SHARP)[:, None].expand(-1, n)  # scores are divided by sqrt(d_head)
    _random_ov(layout, W_V, W_O, generator)
    role = (
        f"near-threshold previous-token head (attends to i-1 when the previous token is one of {members} tokens: "
        "scores about 0.4 on random tokens)"
    )
    return Head(role, W_Q, W_K, W_V, W_O)


def fixed_offset_head(layout: Layout, generator: torch.Generator, *, offset: int) -> Head:
    """Attends ``offset`` positions back from positional embeddings alone, and copies.

    QK: ``W_Q[POS(p)] = a f_{p-offset}``, ``W_K[POS(j)] = a f_j``: score ``SHARP`` on ``j = i - offset`` whatever the
    tokens (uniform for ``i < offset``). OV: TOK(t) -> OUT(t). On ``R + R`` with a block ``R`` of length
    ``L = offset + 1``, the token after the earlier copy of ``tok[i]`` is at ``i - L + 1 = i - offset``, so the
    head looks exactly like an induction head there; at any other length it attends to an unrelated token.
    It reads no earlier head's output: no composition at all.
    """
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n = layout.strength, layout.n_ctx
    W_Q[layout.pos, :n] = a * _shift(n, offset)
    W_K[layout.pos, :n] = a * _eye(n)
    _copy_ov(layout, W_V, W_O)
    return Head(f"fixed-offset impostor (attends {offset} back from positions alone; OV copies)", W_Q, W_K, W_V, W_O)


def duplicate_position_head(layout: Layout, generator: torch.Generator) -> Head:
    """The first head of a Q-composition induction circuit: attends to copies of the current token and writes
    the position after the copy it attends to into QPOS.

    QK: ``W_Q[TOK(t)] = W_K[TOK(t)] = a f_t``: score ``SHARP`` on every position holding the current token,
    itself included (a duplicate-token head). OV: ``W_V[POS(j)] = f_j``, ``W_O[f_j] = e_QPOS(j+1)``: it writes
    the position *after* each copy it attends to. With one earlier copy at ``j`` it splits its attention
    between ``j`` and ``i`` and writes ``(e_QPOS(j+1) + e_QPOS(i+1)) / 2``; without one it writes
    ``e_QPOS(i+1)``, a position no key ``<= i`` has.
    """
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n = layout.strength, layout.d_vocab
    W_Q[layout.tok, :n] = a * _eye(n)
    W_K[layout.tok, :n] = a * _eye(n)
    W_V[layout.pos, : layout.n_ctx] = _eye(layout.n_ctx)
    W_O[: layout.n_ctx, layout.qpos] = _shift(layout.n_ctx, -1)  # row j -> column j + 1
    return Head(
        "duplicate-token head (QK on tokens; OV writes the position after the copy into QPOS)", W_Q, W_K, W_V, W_O
    )


def q_induction_head(layout: Layout, generator: torch.Generator) -> Head:
    """The second head of a Q-composition induction circuit: its query reads QPOS, its key reads POS.

    QK: ``W_Q[QPOS(p)] = 2a f_p``, ``W_K[POS(j)] = a f_j``. The query of position ``i`` is what the duplicate
    head wrote, ``(e_QPOS(j+1) + e_QPOS(i+1)) / 2`` after an earlier copy at ``j``: the score is ``SHARP`` on key
    ``j + 1`` (the token after the earlier copy: prefix matching) and ``SHARP`` on ``i + 1``, which the causal
    mask hides. Without an earlier copy only ``i + 1`` scores, so it attends uniformly. The position it needs
    comes through its *queries* (Q-composition: ``W_OV^dup W_Q W_K^T`` maps POS(j) to POS(j+1)); its keys read
    only positional embeddings, so it has no K-composition at all. OV: TOK(t) -> OUT(t) (copying).
    """
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n = layout.strength, layout.n_ctx
    W_Q[layout.qpos, :n] = 2 * a * _eye(n)
    W_K[layout.pos, :n] = a * _eye(n)
    _copy_ov(layout, W_V, W_O)
    return Head("induction head by Q-composition (queries read QPOS, keys read POS; OV copies)", W_Q, W_K, W_V, W_O)


def successor_head(layout: Layout, generator: torch.Generator) -> Head:
    """Attends to the current token and raises the logit of its successor.

    QK: the current-token pattern (query and key read POS through the identity). OV: ``TOK(t) -> OUT(t+1)``
    for the numbers ``t = 1..d_vocab-2`` and ``OUT(1)`` for the last one (a cycle, so the full OV circuit is a
    permutation with trace 0: neither copying nor anti-copying), nothing for BOS.
    """
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n, v = layout.strength, layout.n_ctx, layout.d_vocab
    W_Q[layout.pos, :n] = a * _eye(n)
    W_K[layout.pos, :n] = a * _eye(n)
    W_V[layout.tok, :v] = _eye(v)
    targets = [0] + [t + 1 if t + 1 < v else 1 for t in range(1, v)]
    for t in range(1, v):
        W_O[t, layout.out.start + targets[t]] = 1.0
    return Head("successor head (attends to itself; OV maps the number t to t+1)", W_Q, W_K, W_V, W_O)


def uniform_head(layout: Layout, generator: torch.Generator) -> Head:
    """Distractor: ``W_Q = W_K = 0``, uniform attention; a small random OV (TOK -> OUT)."""
    W_Q, W_K, W_V, W_O = _zeros(layout)
    _random_ov(layout, W_V, W_O, generator)
    return Head("distractor: uniform attention, small random OV", W_Q, W_K, W_V, W_O)


def bos_head(layout: Layout, generator: torch.Generator) -> Head:
    """Distractor: every query is ``a f_0`` (from any position), only the BOS token's key is ``a f_0``: it attends
    to BOS; a small random OV (TOK -> OUT)."""
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a = layout.strength
    W_Q[layout.pos, 0] = a
    W_K[layout.tok.start + BOS, 0] = a
    _random_ov(layout, W_V, W_O, generator)
    return Head("distractor: attends to BOS, small random OV", W_Q, W_K, W_V, W_O)


def current_token_head(layout: Layout, generator: torch.Generator) -> Head:
    """Distractor: query and key read POS through the identity: it attends to its own position; small random OV."""
    W_Q, W_K, W_V, W_O = _zeros(layout)
    a, n = layout.strength, layout.n_ctx
    W_Q[layout.pos, :n] = a * _eye(n)
    W_K[layout.pos, :n] = a * _eye(n)
    _random_ov(layout, W_V, W_O, generator)
    return Head("distractor: attends to the current token, small random OV", W_Q, W_K, W_V, W_O)


Recipe: TypeAlias = "Callable[[Layout, torch.Generator], Head]"  # a string: torch is imported on first use


# --------------------------------------------------------------------------------------------------------------
# assembling a model


@dataclass
class Spec:
    """A constructed model: its layers of head recipes, and whether it has LayerNorm and MLPs."""

    name: str
    summary: str
    layers: list[list[Recipe]]
    d_vocab: int = VOCAB
    n_ctx: int = N_CTX
    ln_mlp: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _bigram(v: int) -> list[int]:
    """``pi(t)``: the token the bigram MLP raises after ``t`` (a fixed permutation of 1..v-1, not the successor)."""
    return [0] + [1 + (5 * (t - 1) + 3) % (v - 1) for t in range(1, v)]


def build(spec: Spec, seed: int = 0) -> ModelView:
    """Build the model ``spec`` describes (weights set by hand, a seeded generator for the distractors' OV)."""
    layout = Layout(spec.d_vocab, spec.n_ctx, balance=spec.ln_mlp)
    n_layers = len(spec.layers)
    n_heads = len(spec.layers[0])
    if any(len(layer) != n_heads for layer in spec.layers):
        raise ValueError("every layer needs the same number of heads")
    d, dh, v = layout.d_model, layout.d_head, layout.d_vocab
    config: dict[str, Any] = {
        "n_layers": n_layers,
        "d_model": d,
        "n_heads": n_heads,
        "d_head": dh,
        "d_vocab": v,
        "n_ctx": layout.n_ctx,
        "attn_only": not spec.ln_mlp,
        "normalization_type": "LN" if spec.ln_mlp else None,
    }
    if spec.ln_mlp:
        config.update(d_mlp=v, act_fn="relu")
    model = build_bridge(config, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    heads = [[recipe(layout, generator) for recipe in layer] for layer in spec.layers]

    W_E = torch.zeros(v, d)
    W_E[:, layout.tok] = _eye(v)
    W_pos = torch.zeros(layout.n_ctx, d)
    W_pos[:, layout.pos] = _eye(layout.n_ctx)
    W_U = torch.zeros(d, v)
    W_U[layout.out, :] = _eye(v)
    state: dict[str, torch.Tensor] = {
        "embed.weight": _balanced(layout, W_E),
        "pos_embed.weight": _balanced(layout, W_pos),
        "unembed.weight": W_U.T.contiguous(),
        "unembed.bias": torch.zeros(v),
    }
    for layer, layer_heads in enumerate(heads):
        prefix = f"blocks.{layer}."
        for name in ("q", "k", "v"):
            matrix = torch.cat([getattr(head, f"W_{name.upper()}") for head in layer_heads], dim=1)  # [d, H*dh]
            state[f"{prefix}attn.{name}.weight"] = matrix.T.contiguous()
            state[f"{prefix}attn.{name}.bias"] = torch.zeros(n_heads * dh)
        W_O = torch.cat([_balanced(layout, head.W_O) for head in layer_heads], dim=0)  # [H*dh, d]
        state[f"{prefix}attn.o.weight"] = W_O.T.contiguous()
        state[f"{prefix}attn.o.bias"] = torch.zeros(d)
        if spec.ln_mlp:
            for norm in ("ln1", "ln2"):
                state[f"{prefix}{norm}.weight"] = torch.ones(d)
                state[f"{prefix}{norm}.bias"] = torch.zeros(d)
            W_in = torch.zeros(d, v)
            W_in[layout.tok, :] = _eye(v)
            W_out = torch.zeros(v, d)
            for t, target in enumerate(_bigram(v)):
                if t != BOS:
                    W_out[t, layout.out.start + target] = BIGRAM
            state[f"{prefix}mlp.in.weight"] = W_in.T.contiguous()
            state[f"{prefix}mlp.in.bias"] = torch.zeros(v)
            state[f"{prefix}mlp.out.weight"] = _balanced(layout, W_out).T.contiguous()
            state[f"{prefix}mlp.out.bias"] = torch.zeros(d)
    if spec.ln_mlp:
        state["ln_final.weight"] = torch.ones(d)
        state["ln_final.bias"] = torch.zeros(d)
    model.load_state_dict(state, strict=True)
    model.eval()
    model.tokenizer = NumberTokenizer(v)
    roles = {f"{layer}.{index}": head.role for layer, row in enumerate(heads) for index, head in enumerate(row)}
    info = {
        "loader": "constructed",
        "construction": spec.name,
        "summary": spec.summary,
        "heads": roles,
        "layout": layout.to_dict(),
        **spec.extra,
    }
    return ModelView(model, TokenSpace(v, BOS, (), (1, v)), name=f"builtin:{spec.name}", info=info)


def _balanced(layout: Layout, rows: torch.Tensor) -> torch.Tensor:
    """With a BAL coordinate: each row's BAL entry set to minus the sum of its other entries (sum 0)."""
    if layout.bal is None:
        return rows
    out = rows.clone()
    out[:, layout.bal] = 0.0
    out[:, layout.bal] = -out.sum(1)
    return out


def _with(recipe: Callable[..., Head], **kwargs: Any) -> Recipe:
    def bound(layout: Layout, generator: torch.Generator) -> Head:
        return recipe(layout, generator, **kwargs)

    return bound


DISTRACTORS: list[Recipe] = [uniform_head, bos_head, current_token_head]


# --------------------------------------------------------------------------------------------------------------
# the models


def induction(d_vocab: int = VOCAB, *, seed: int = 0) -> ModelView:
    """**A true induction circuit** (K-composition). Heads:

    - 0.0 previous-token head: position ``i`` receives ``e_PREV(tok[i-1])`` (:func:`previous_token_head`);
    - 1.0 induction head: queries read TOK, keys read PREV, so it attends where ``tok[j-1] = tok[i]`` and
      copies ``tok[j]`` to the logits (:func:`induction_head`). Its partner is 0.0: without 0.0's output its
      keys are empty and it attends uniformly;
    - 0.1, 0.2, 0.3 and 1.1, 1.2, 1.3: uniform, BOS-attending and current-token distractors.

    ``d_vocab`` changes the size of the one-hot token subspaces (and so the rank of the circuit, which bounds
    its composition score: ``1/sqrt(d_vocab)``).
    """
    return build(
        Spec(
            "induction",
            "A true induction circuit: 0.0 is a previous-token head, 1.0 an induction head whose keys read 0.0's "
            "output (K-composition) and whose OV copies.",
            [[previous_token_head, *DISTRACTORS], [induction_head, *DISTRACTORS]],
            d_vocab=d_vocab,
        ),
        seed,
    )


def impostor(length: int = IMPOSTOR_LENGTH, *, seed: int = 0) -> ModelView:
    """**A fixed-offset impostor**: 1.0 attends ``length - 1`` positions back from positional embeddings alone
    and copies (:func:`fixed_offset_head`). On repeated random tokens with repeat length ``length`` it is a
    perfect induction head by behavior; at any other length its prefix matching is near 0; and it reads no
    earlier head's output. 0.0 is a real previous-token head that nothing reads; 0.1-0.3 and 1.1-1.3 are the
    uniform, BOS-attending and current-token distractors.
    """
    if not 2 <= length <= N_CTX // 2:
        raise ValueError(f"length must be in 2..{N_CTX // 2}")
    return build(
        Spec(
            "impostor",
            f"A fixed-offset impostor: 1.0 attends {length - 1} positions back by position alone and copies, "
            f"which looks exactly like induction on blocks of length {length} repeated, and like nothing at other "
            "lengths. 0.0 is a previous-token head nothing reads.",
            [[previous_token_head, *DISTRACTORS], [_with(fixed_offset_head, offset=length - 1), *DISTRACTORS]],
            extra={"repeat_length": length},
        ),
        seed,
    )


def anti_induction(*, seed: int = 0) -> ModelView:
    """**Anti-induction (copy suppression)**: the circuit of :func:`induction` with 1.0's OV negated
    (:func:`induction_head` with ``sign=-1``): it attends to the token after an earlier copy of the current
    token, exactly as an induction head does, and lowers that token's logit (full OV circuit ``-I``, every
    eigenvalue -1). Prefix matching passes, copying fails.
    """
    return build(
        Spec(
            "anti-induction",
            "Anti-induction: 1.0 has the induction head's attention (K-composition with the previous-token head "
            "0.0) and a negated OV circuit, so it lowers the token it attends to.",
            [[previous_token_head, *DISTRACTORS], [_with(induction_head, sign=-1.0), *DISTRACTORS]],
        ),
        seed,
    )


def q_composition(*, seed: int = 0) -> ModelView:
    """**Induction by Q-composition**: the same behavior as :func:`induction` by another mechanism.

    - 0.1 duplicate-token head: attends to the copies of the current token and writes the position after each
      into QPOS (:func:`duplicate_position_head`);
    - 1.0 induction head: its *query* reads QPOS and its key reads POS, so it attends to ``j + 1`` for an
      earlier copy ``j`` of the current token, and copies (:func:`q_induction_head`);
    - 0.0 a previous-token head that nothing reads (so a K-composition definition has a partner to look for);
    - 0.2 BOS-attending, 0.3 current-token, 1.1 uniform, 1.2 BOS-attending, 1.3 current-token distractors.

    Elhage et al. 2021 define induction heads by either Q- or K-composition; the built-in mechanistic
    definitions look for K-composition only, so this head is an induction head by behavior that they miss.
    """
    return build(
        Spec(
            "q-composition",
            "Induction by Q-composition: 0.1 is a duplicate-token head that writes the position after the earlier "
            "copy; 1.0's queries read it and its keys read positions, and it copies. 0.0 is a previous-token head "
            "nothing reads.",
            [
                [previous_token_head, duplicate_position_head, bos_head, current_token_head],
                [q_induction_head, *DISTRACTORS],
            ],
        ),
        seed,
    )


def degenerate(*, seed: int = 0) -> ModelView:
    """**Degenerate heads**, whose scores are 0/0 by construction:

    - 0.0 attends to the previous token but its OV circuit is zero (``previous_token_head(ov="zero")``): it
      is a previous-token head by behavior, and every composition score with it as the earlier head is
      ``0 / (0 * ||M_B||)``;
    - 1.0 has the induction head's weights (queries TOK, keys PREV, OV copies), but PREV stays empty, so it
      attends uniformly; its K-composition with 0.0 is 0/0;
    - 1.1 has the same attention and an OV that writes only into SCRATCH, which ``W_U`` never reads: its full
      OV circuit ``W_E W_V W_O W_U`` is zero, every eigenvalue 0, the eigenvalue ratio 0/0;
    - 0.1 uniform, 0.2 BOS-attending, 0.3 current-token, 1.2 uniform, 1.3 BOS-attending distractors.
    """
    return build(
        Spec(
            "degenerate",
            "Degenerate heads: 0.0 attends to the previous token with a zero OV circuit; 1.0 is an induction head "
            "whose partner writes nothing (K-composition 0/0); 1.1 writes only into a subspace the unembedding "
            "never reads (OV eigenvalues 0/0).",
            [
                [_with(previous_token_head, ov="zero"), *DISTRACTORS],
                [induction_head, _with(induction_head, ov="scratch"), uniform_head, bos_head],
            ],
        ),
        seed,
    )


def successor(*, seed: int = 0) -> ModelView:
    """**A successor head** (one layer): 0.0 attends to the current token and maps the number ``t`` to ``t + 1``
    (:func:`successor_head`); 0.1-0.3 are the uniform, BOS-attending and current-token distractors. The
    vocabulary's tokens are the numbers 1..31 (:class:`NumberTokenizer`), so the successor checkers apply."""
    return build(
        Spec(
            "successor",
            "A successor head: 0.0 attends to the current token and raises the logit of the next number.",
            [[successor_head, *DISTRACTORS]],
        ),
        seed,
    )


def near_threshold(*, seed: int = 0) -> ModelView:
    """**A head at its threshold**: :func:`induction`'s circuit (0.0 previous-token head, 1.0 induction head) with
    0.1 a previous-token head for some previous tokens only (:func:`near_threshold_head`), whose score on the
    built-in random-token probe sits at ``attends_previous``'s 0.4: which seed the probe is drawn with decides
    whether it is a member (``--seeds K`` reports it unstable, with a margin under 1 sd). Its QK circuit reads
    position exactly as 0.0's does. 0.2 uniform, 0.3 BOS-attending; 1.1-1.3 the distractors.
    """
    return build(
        Spec(
            "near-threshold",
            "A head at its threshold: 0.1 attends to the previous token after 11 of the 31 tokens, so it scores "
            "about 0.4 on random tokens, the built-in attends_previous cut-off; 0.0 and 1.0 are the induction "
            "circuit's previous-token and induction heads.",
            [[previous_token_head, near_threshold_head, uniform_head, bos_head], [induction_head, *DISTRACTORS]],
        ),
        seed,
    )


def induction_ln(*, seed: int = 0) -> ModelView:
    """**The induction circuit with LayerNorm and MLPs**: :func:`induction`'s heads in a model with ``LN`` before
    every attention layer, MLP and the unembedding, and a bigram MLP in each block. The BAL coordinate makes
    LayerNorm's centering the identity; its scaling only sharpens attention (module docstring), so 0.0 and 1.0
    are the same previous-token and induction heads."""
    return build(
        Spec(
            "induction-ln",
            "The induction circuit (0.0 previous-token head, 1.0 induction head) with LayerNorm and a bigram MLP in "
            "each block.",
            [[previous_token_head, *DISTRACTORS], [induction_head, *DISTRACTORS]],
            ln_mlp=True,
        ),
        seed,
    )


CONSTRUCTED: dict[str, Callable[[], ModelView]] = {
    "induction": induction,
    "impostor": impostor,
    "anti-induction": anti_induction,
    "q-composition": q_composition,
    "degenerate": degenerate,
    "successor": successor,
    "induction-ln": induction_ln,
    "near-threshold": near_threshold,
}
"""Builders of the hand-built models, by name (``defcheck run --model builtin:NAME``)."""


def constructed_names() -> list[str]:
    """The names of the hand-built models, in registry order."""
    return list(CONSTRUCTED)


def load_constructed(name: str) -> ModelView:
    """The hand-built model ``name`` (a ``KeyError`` naming the known ones if there is none)."""
    try:
        builder = CONSTRUCTED[name]
    except KeyError:
        raise KeyError(f"no constructed model '{name}' (known: {', '.join(CONSTRUCTED)})") from None
    return builder()
