"""Built-in mechanism checkers computed from weights alone: OV/QK eigenvalue ratios, positional QK, composition.

Every checker scores all heads at once with batched tensor algebra in ``d_head``-sized spaces; nothing of size
``d_vocab x d_vocab`` (and, for composition, nothing ``d_model x d_model`` per pair) is ever formed.

Conventions (TransformerLens's, row vectors): ``W_Q, W_K, W_V`` are ``[L, H, d_model, d_head]``, ``W_O`` is
``[L, H, d_head, d_model]``, a head's OV circuit is ``W_V W_O`` and its QK circuit ``W_Q W_K^T``.

LayerNorm: where a circuit passes through a LayerNorm, its elementwise weight is folded in (the weight of the norm
feeding a head's layer -- ``ln1`` pre-LN; post-LN (BERT) the previous block's ``ln2``, or ``embed_ln`` for layer 0 --
into the rows of its ``W_Q``, ``W_K``, ``W_V``; ``ln_final`` weight into the rows of ``W_U``).
The normalization itself (centering, division by the norm) and every bias (``b_Q``, ``b_K``, ``b_V``, LN bias)
are ignored: these are circuits of the weights, as in Elhage et al. 2021.

Sources: Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits" (OV/QK eigenvalue analysis,
composition scores); ARENA 1.2 ("Intro to Mech Interp", composition) for the random-matrix baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Any, Literal

from defcheck_plugins.applicability import refuse_untrained
from pydantic import BaseModel, ConfigDict, Field

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import (
    CheckContext,
    Checker,
    DefcheckError,
    ModelView,
    NotApplicable,
    Scores,
    hookimpl,
    safe_ratio,
)

Circuit = Literal["full", "bare"]
CompositionType = Literal["K", "Q", "V"]
BASELINE_SAMPLES = 300  # as ARENA 1.2
VOCABULARY_CHUNK = 2**22  # elements per chunk of W_E / W_U in W_U W_E and W_E^T W_E
_SHARED = "circuits:"

# --------------------------------------------------------------------------------------------------------------
# weights (ln-folded, upcast, on the model's device)


def _shared(context: CheckContext | None, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    return compute() if context is None else context.shared(_SHARED + key, compute)


def _expand_heads(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Repeat grouped key/value heads (GQA) so that every query head has its own copy."""
    if weight.shape[1] == n_heads:
        return weight
    return weight.repeat_interleave(n_heads // weight.shape[1], dim=1)


_POST_LN_ARCHITECTURES = ("Bert", "Roberta", "XLMRoberta")


def post_ln(view: ModelView) -> bool:
    """Whether the model normalises AFTER each sublayer (BERT, RoBERTa; OPT/HuBERT configured so), where a
    block's ``ln1`` follows its attention instead of feeding it. TransformerLens 4 has no flag for it: the HF
    config's ``do_layer_norm_before``/``do_stable_layer_norm`` say so where present, else the architecture."""
    cfg = view.cfg
    if getattr(cfg, "do_layer_norm_before", None) is False:
        return True
    if getattr(cfg, "do_stable_layer_norm", None) is False:
        return True
    names = (getattr(cfg, "architecture", None), getattr(cfg, "original_architecture", None))
    return any(str(name or "").startswith(_POST_LN_ARCHITECTURES) for name in names)


def attention_input_norm_weight(view: ModelView, layer: int) -> torch.Tensor | None:
    """The elementwise weight of the norm whose output layer ``layer``'s attention reads: ``ln1`` pre-LN;
    post-LN, block ``layer - 1``'s ``ln2``, or the embedding norm (``embed_ln``) for layer 0. None: no weight."""
    if not post_ln(view):
        return view.ln_weight(layer, "ln1")
    if layer > 0:
        return view.ln_weight(layer - 1, "ln2")
    module = getattr(view.model, "embed_ln", None)
    weight = getattr(module, "weight", None)
    return None if weight is None else weight.detach().clone()


def _ln1_weights(view: ModelView, dtype: torch.dtype) -> torch.Tensor | None:
    """``[L, d_model]``: the weight of the norm feeding each layer's attention (see
    :func:`attention_input_norm_weight`; ones where that layer has none), or None when no layer has one."""
    weights = [attention_input_norm_weight(view, layer) for layer in range(view.n_layers)]
    if all(weight is None for weight in weights):
        return None
    return torch.stack(
        [torch.ones(view.d_model, dtype=dtype) if w is None else w.detach().cpu().to(dtype) for w in weights]
    )


def head_weight(view: ModelView, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``W_Q``/``W_K``/``W_V`` with their layer's input-norm weight folded into the rows, or ``W_O``; in ``dtype``
    (default: float64, as every eigenvalue computation here)."""
    dtype = dtype or torch.float64
    weight = _expand_heads(view.weight(name), view.n_heads).to(dtype)
    if name in ("W_Q", "W_K", "W_V"):
        ln1 = _ln1_weights(view, dtype)
        if ln1 is not None:
            weight = weight * ln1.to(weight.device)[:, None, :, None]
    return weight


def unembedding(view: ModelView, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``W_U`` ``[d_model, d_vocab_out]`` with the ``ln_final`` weight folded into its rows (default: float64)."""
    dtype = dtype or torch.float64
    weight = view.weight("W_U").to(dtype)
    ln_final = view.ln_weight(None)
    return weight if ln_final is None else weight * ln_final.to(weight.device, dtype)[:, None]


def refuse_different_vocabularies(view: ModelView, what: str) -> None:
    """Not applicable where the output vocabulary is not the input one (``d_vocab_out != d_vocab``, as in Tracr
    models): comparing a token in with the same index out then maps between two different spaces."""
    d_vocab, d_vocab_out = view.weight("W_E").shape[0], view.weight("W_U").shape[1]
    if d_vocab_out != d_vocab:
        raise NotApplicable(
            f"the model's output vocabulary (d_vocab_out={d_vocab_out}) is not its input vocabulary "
            f"(d_vocab={d_vocab}), and no mapping between them is stated, so {what} cannot compare a token in "
            "with the same token out"
        )


def _unembed_embed(view: ModelView, context: CheckContext | None) -> torch.Tensor:
    """``W_U W_E`` ``[d_model, d_model]`` (ln_final folded), shared by every full-OV computation."""

    def compute() -> torch.Tensor:
        embed, unembed = view.weight("W_E"), view.weight("W_U")
        refuse_different_vocabularies(view, "the full OV circuit W_E W_V W_O W_U (use circuit: bare)")
        product = _vocabulary_product(unembed.T, embed)
        ln_final = view.ln_weight(None)
        return product if ln_final is None else ln_final.to(product)[:, None] * product

    return _shared(context, "W_U@W_E", compute)


def _embed_gram(view: ModelView, context: CheckContext | None) -> torch.Tensor:
    """``W_E^T W_E`` ``[d_model, d_model]``, shared by every full-QK computation."""

    def compute() -> torch.Tensor:
        embed = view.weight("W_E")
        return _vocabulary_product(embed, embed)

    return _shared(context, "W_E^T@W_E", compute)


def _vocabulary_product(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``left^T right`` (both ``[d_vocab, d_model]``), summed in float64 over chunks of the vocabulary whose
    products are taken in the weights' own precision (float32: ~3.5x faster than float64 here, the largest
    products of a run), so that no float64 copy of a ``d_vocab``-sized matrix is made."""
    out = torch.zeros(left.shape[1], right.shape[1], dtype=torch.float64, device=left.device)
    rows = max(1, VOCABULARY_CHUNK // max(left.shape[1], right.shape[1]))
    dtype = torch.promote_types(torch.promote_types(left.dtype, right.dtype), torch.float32)
    for start in range(0, left.shape[0], rows):
        out += (left[start : start + rows].to(dtype).T @ right[start : start + rows].to(dtype)).to(torch.float64)
    return out


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run LAPACK on small matrices (eigenvalues, SVD, Cholesky of d_head- or d_model-sized ones) on one thread.

    Those routines open many short parallel regions; where the cores are shared, each waits for a descheduled
    thread (measured on 2 busy cores: a 768 x 768 spectral norm took 1-27 s on two threads, 0.27 s on one).
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _frobenius(matrix: torch.Tensor) -> torch.Tensor:
    return matrix.flatten(-2).norm(dim=-1)


# --------------------------------------------------------------------------------------------------------------
# eigenvalue ratios


def eigenvalue_ratio(matrix: torch.Tensor, bound: torch.Tensor, tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``Re(sum lambda) / sum |lambda|`` of each square ``matrix`` ``[..., r, r]``, and a mask of 0/0 entries.

    ``Re(sum lambda)`` is the trace. An entry is 0/0 where ``sum |lambda| <= tolerance * bound``; ``bound`` is an
    upper bound of ``sum |lambda|`` from the factors' norms, so the test is relative to the weights' scale.
    """
    with _one_thread():
        eigenvalues = torch.linalg.eigvals(matrix)
    numerator = eigenvalues.real.sum(-1)
    denominator = eigenvalues.abs().sum(-1)
    scale = torch.where(bound > 0, bound, torch.ones_like(bound))
    ratio, _ = safe_ratio(numerator / scale, denominator / scale, eps=0.0)
    undefined = denominator <= tolerance * bound
    return torch.where(undefined, torch.full_like(ratio, float("nan")), ratio), undefined


def ov_circuit_matrix(
    view: ModelView, circuit: Circuit = "full", context: CheckContext | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[L, H, d_head, d_head]`` matrix whose eigenvalues are the OV circuit's nonzero ones, and a bound.

    full: ``W_O (W_U W_E) W_V`` (the cyclic permutation of ``W_E W_V W_O W_U``; FactoredMatrix's ``BA``);
    bare: ``W_O W_V`` (of ``W_V W_O``). The bound ``sqrt(d_head) ||W_O||_F ||middle||_2 ||W_V||_F`` is at least
    ``sum |lambda|``.
    """
    W_V, W_O = head_weight(view, "W_V"), head_weight(view, "W_O")
    if circuit == "full":
        middle = _unembed_embed(view, context)
        matrix = (W_O @ middle) @ W_V
        with _one_thread():
            middle_norm = torch.linalg.matrix_norm(middle, ord=2)
    else:
        matrix = W_O @ W_V
        middle_norm = torch.ones((), dtype=W_O.dtype, device=W_O.device)
    bound = math.sqrt(view.d_head) * _frobenius(W_O) * middle_norm * _frobenius(W_V)
    return matrix, bound


def qk_circuit_matrix(
    view: ModelView, circuit: Circuit = "full", context: CheckContext | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[L, H, d_head, d_head]`` matrix whose eigenvalues are the QK circuit's nonzero ones, and a bound.

    full: ``W_K^T (W_E^T W_E) W_Q`` (of ``W_E W_Q W_K^T W_E^T``); bare: ``W_K^T W_Q`` (of ``W_Q W_K^T``).
    """
    W_Q, W_K = head_weight(view, "W_Q"), head_weight(view, "W_K")
    W_K_T = W_K.transpose(-2, -1)
    if circuit == "full":
        middle = _embed_gram(view, context)
        matrix = (W_K_T @ middle) @ W_Q
        with _one_thread():
            middle_norm = torch.linalg.matrix_norm(middle, ord=2)
    else:
        matrix = W_K_T @ W_Q
        middle_norm = torch.ones((), dtype=W_Q.dtype, device=W_Q.device)
    bound = math.sqrt(view.d_head) * _frobenius(W_K) * middle_norm * _frobenius(W_Q)
    return matrix, bound


class EigenParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    circuit: Circuit = Field(
        "full",
        description="full: through the token embedding and unembedding (W_E ... W_U for OV, W_E ... W_E^T for QK); "
        "bare: the head's own matrix (W_V W_O, or W_Q W_K^T) on the residual stream.",
    )
    tolerance: float = Field(
        1e-6,
        ge=0.0,
        description="A head's score is undefined (0/0) where the sum of |eigenvalues| is at most this fraction of "
        "its upper bound from the weights' norms.",
    )


def score_ov_copying(context: CheckContext) -> Scores:
    """``Re(sum lambda) / sum |lambda|`` of each head's OV circuit ``W_E W_V W_O W_U`` (or ``W_V W_O``).

    Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", section "Copying / Primarily
    Positive Eigenvalues": 1 for a head whose OV circuit maps each token to itself (copying), -1 for anti-copying.
    The nonzero eigenvalues of ``(W_E W_V)(W_O W_U)`` equal those of ``W_O W_U W_E W_V`` (``d_head x d_head``).
    LN weights are folded (the input norm's, ``ln1`` pre-LN / the previous ``ln2`` post-LN, into ``W_V`` rows,
    ``ln_final`` into ``W_U`` rows).
    """
    params: EigenParams = context.params
    view = context.model
    if params.circuit == "full":
        refuse_untrained(view, ("unembed", "ln_final"), "the full OV circuit W_E W_V W_O W_U (use circuit: bare)")
    matrix, bound = ov_circuit_matrix(view, params.circuit, context)
    ratio, undefined = eigenvalue_ratio(matrix, bound, params.tolerance)
    scores = Scores(ratio.float().cpu())
    if undefined.any():
        W_V, W_O = head_weight(view, "W_V"), head_weight(view, "W_O")
        bare_zero = (_gram_norm(W_V, W_O) <= params.tolerance * _frobenius(W_O) * _frobenius(W_V)).cpu()
        names = view.unit_names()
        zero = undefined.cpu() & bare_zero
        scores.mark_undefined(zero, "undefined: 0/0, the head's OV circuit W_V W_O is zero", names)
        rest = undefined.cpu() & ~bare_zero
        where = (
            "e.g. the head writes only into a subspace the unembedding never reads"
            if params.circuit == "full"
            else "the OV circuit is nilpotent"
        )
        scores.mark_undefined(rest, f"undefined: 0/0, every eigenvalue of the OV circuit is zero ({where})", names)
    return scores


def chance_eigenvalue(context: CheckContext) -> float:
    """0 (exact): for random weights of the same shapes (any distribution symmetric about 0, e.g. i.i.d.
    Gaussian), negating ``W_V`` (or ``W_Q``) negates every eigenvalue, so the ratio's mean is 0."""
    return 0.0


def _gram_norm(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``||left @ right||_F`` for ``left [.., n, r]``, ``right [.., r, m]`` via ``tr(G_left G_right)`` (r x r)."""
    gram_left = left.transpose(-2, -1) @ left
    gram_right = right @ right.transpose(-2, -1)
    return (gram_left * gram_right).sum((-2, -1)).clamp_min(0).sqrt()


def score_qk_eigenvalue(context: CheckContext) -> Scores:
    """``Re(sum lambda) / sum |lambda|`` of each head's QK circuit on tokens ``W_E W_Q W_K^T W_E^T`` (or bare).

    Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits": positive eigenvalues of the full QK
    circuit mean the head attends to tokens equal to (or like) the query token (token matching). Computed as the
    eigenvalues of ``W_K^T W_E^T W_E W_Q`` (``d_head x d_head``); input-norm weights (``ln1``; post-LN the norm
    before the layer) folded into ``W_Q``, ``W_K``.
    """
    params: EigenParams = context.params
    view = context.model
    matrix, bound = qk_circuit_matrix(view, params.circuit, context)
    ratio, undefined = eigenvalue_ratio(matrix, bound, params.tolerance)
    scores = Scores(ratio.float().cpu())
    if undefined.any():
        scores.mark_undefined(
            undefined.cpu(),
            "undefined: 0/0, every eigenvalue of the QK circuit is zero (a zero or nilpotent W_Q W_K^T on these "
            "inputs)",
            view.unit_names(),
        )
    return scores


# --------------------------------------------------------------------------------------------------------------
# positional QK


class PositionalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: int = Field(
        1,
        description="The key position j = i - offset scored for query i (1: previous token; -1: next token, "
        "on bidirectional models only).",
    )
    max_position: int | None = Field(
        None,
        ge=2,
        description="Query positions 0..max_position-1 are used (each attends over j <= i); default min(n_ctx, 64).",
    )


def attention_scale(view: ModelView) -> float:
    """What attention scores are divided by: ``cfg.attn_scale`` if set and used, else ``sqrt(d_head)``."""
    scale = float(getattr(view.cfg, "attn_scale", -1.0) or -1.0)
    use = bool(getattr(view.cfg, "use_attn_scale", True))
    return scale if use and scale > 0 else math.sqrt(view.d_head)


def normed_positions(view: ModelView, max_position: int, device: torch.device) -> torch.Tensor:
    """``[P, d_model]``: ``W_pos`` rows as the pre-attention norm passes them on (without its weight, folded
    elsewhere): centred for LayerNorm, then divided by the RMS of the typical layer-0 residual, i.e. the root of
    the mean over every token and position of ``|centre(W_E[t] + W_pos[p])|^2 / d_model`` (plus the norm's eps).
    Unchanged without a norm. Why: LayerNorm rescales a residual of norm ~11 to ~sqrt(d_model); raw rows
    (~1.3 in GPT-2) would give attention scores ~100 times too small and near-uniform patterns."""
    positions = view.weight("W_pos").to(device, torch.float64)
    kind = view.normalization
    if kind is None:
        return positions[:max_position]
    embed = view.weight("W_E").to(device, torch.float64)
    if kind.startswith("LN"):
        positions = positions - positions.mean(-1, keepdim=True)
        embed = embed - embed.mean(-1, keepdim=True)
    d_model = positions.shape[-1]
    mean_square = (
        embed.pow(2).sum(-1).mean() + positions.pow(2).sum(-1).mean() + 2 * embed.mean(0) @ positions.mean(0)
    ) / d_model
    eps = float(getattr(view.cfg, "eps", 1e-5))
    return positions[:max_position] / torch.sqrt(mean_square + eps)


def positional_patterns(view: ModelView, max_position: int, causal: bool = True) -> torch.Tensor:
    """``[L, H, P, P]`` causal softmax of ``(p_i W_Q)(p_j W_K)^T / sqrt(d_head)`` with ``p`` the normed
    ``W_pos`` rows (:func:`normed_positions`; no biases)."""
    W_Q, W_K = head_weight(view, "W_Q"), head_weight(view, "W_K")
    positions = normed_positions(view, max_position, W_Q.device)
    queries = positions @ W_Q  # [L, H, P, d_head]
    keys = positions @ W_K
    scores = queries @ keys.transpose(-2, -1) / attention_scale(view)
    if not causal:  # a bidirectional encoder: every position sees every other
        return scores.softmax(-1)
    mask = torch.ones(max_position, max_position, dtype=torch.bool, device=scores.device).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


def score_qk_positional(context: CheckContext) -> Scores:
    """Mean attention on key ``i - offset`` from positional embeddings alone, per head.

    ``S[i, j] = (W_pos[i] W_Q)(W_pos[j] W_K)^T / sqrt(d_head)``, causal softmax over ``j <= i`` (over every ``j``
    on a bidirectional model, where a negative offset scores the tokens ahead); the score is the
    mean over query positions ``max(1, offset) <= i < max_position`` of the probability on ``j = i - offset``.
    With a LayerNorm/RMSNorm, ``W_pos`` rows are centred (LayerNorm) and divided by the RMS of the typical
    layer-0 residual (over all tokens and positions; at every layer), and the input norm's weight (``ln1``; post-LN
    the norm before) is folded into
    ``W_Q``/``W_K``; the token embedding's own contribution to the scores and the biases ``b_Q``, ``b_K`` (and
    the norm's bias) are ignored (``b_K`` adds the same amount to a query's every score, so softmax ignores it;
    ``b_Q`` does not). Elhage et al. 2021 (positional QK, previous-token heads). Rotary models have no ``W_pos``:
    inapplicable.
    """
    params: PositionalParams = context.params
    view = context.model
    shape = (view.n_layers, view.n_heads)
    if view.positional != "standard" or not view.has_weight("W_pos"):
        return Scores.inapplicable(
            shape,
            f"the model's positional embedding is '{view.positional}', not learned absolute positions added to "
            "the residual stream (no W_pos), so attention cannot be scored from positional embeddings alone",
        )
    size = params.max_position or min(view.n_ctx, 64)
    if size > view.n_ctx:
        raise DefcheckError(f"max_position {size} exceeds the model's context ({view.n_ctx})")
    causal = getattr(view.cfg, "attention_dir", "causal") != "bidirectional"
    if params.offset < 0 and causal:
        raise NotApplicable(
            f"offset {params.offset} targets a position ahead of the query, and this model's attention is causal "
            "(a head cannot attend ahead)"
        )
    first, last = max(1, params.offset), size + min(0, params.offset)
    if first >= last:
        raise DefcheckError(f"offset {params.offset} leaves no query position below max_position {size}")
    patterns = positional_patterns(view, size, causal)
    queries = torch.arange(first if params.offset >= 0 else 0, last, device=patterns.device)
    on_target = patterns[..., queries, queries - params.offset]  # [L, H, n_queries]
    return Scores(on_target.mean(-1).float().cpu())


def chance_qk_positional(context: CheckContext) -> float | None:
    """Uniform attention (the positional QK circuit of a head that ignores position): the mean over the scored
    query positions ``i`` of ``1 / (i + 1)`` (causal), or ``1 / P`` (bidirectional, ``P`` positions); exact."""
    params: PositionalParams = context.params
    view = context.model
    size = params.max_position or min(view.n_ctx, 64)
    causal = getattr(view.cfg, "attention_dir", "causal") != "bidirectional"
    first, last = max(1, params.offset), size + min(0, params.offset)
    queries = range(first if params.offset >= 0 else 0, last)
    if not queries or size > view.n_ctx:
        return None
    return sum(1 / (i + 1) if causal else 1 / size for i in queries) / len(queries)


# --------------------------------------------------------------------------------------------------------------
# composition


def gram_root(matrix: torch.Tensor) -> torch.Tensor:
    """A square root ``R [.., r, r]`` of the Gram matrix of ``matrix [.., n, r]``: ``R^T R = matrix^T matrix``.

    Then ``||X matrix^T||_F = ||X R^T||_F`` for every ``X`` (both squared are ``tr(X G X^T)``), so a product's
    norm is computed in ``r``-sized space. ``R`` is the Cholesky factor of the Gram matrix plus a jitter of
    ``1e-13 * trace / r`` on the diagonal (so rank-deficient heads factor too; it moves a composition ratio by at
    most ~``sqrt(1e-13)``); a zero matrix gets ``R = 0``; ``eigh`` is the fallback. Use float64.
    """
    gram = matrix.transpose(-2, -1) @ matrix
    size = gram.shape[-1]
    trace = gram.diagonal(dim1=-2, dim2=-1).sum(-1)
    zero = (trace <= 0)[..., None, None]
    eye = torch.eye(size, dtype=gram.dtype, device=gram.device)
    jittered = gram + (1e-13 * trace / size)[..., None, None] * eye
    with _one_thread():
        lower, info = torch.linalg.cholesky_ex(torch.where(zero, eye, jittered))
    if not bool((info == 0).all()):
        with _one_thread():
            values, vectors = torch.linalg.eigh(gram)
        return values.clamp_min(0).sqrt()[..., :, None] * vectors.transpose(-2, -1)
    return torch.where(zero, torch.zeros_like(lower), lower.transpose(-2, -1))


def composition_factors(
    view: ModelView, type: CompositionType
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Small factors with the Frobenius geometry of the full composition matrices (float64).

    Returns ``left [L, H, r, d_model]`` with ``||left_A y||_F = ||W_OV^A y||_F`` for every ``y`` (where
    ``W_OV^A = W_V W_O``), ``right [L, H, d_model, r]`` with ``||x right_B||_F = ||x M_B||_F`` for every ``x``
    (``M_B`` = ``W_Q W_K^T`` for Q, ``W_K W_Q^T`` for K, ``W_V W_O`` for V, as TransformerLens's
    ``all_composition_scores``), and masks of heads whose matrix is zero (relative to its factors' norms).
    For ``X = P M Q``: ``||X||_F^2 = tr(M^T (P^T P) M (Q Q^T))``, with ``r x r`` Gram matrices; ``left`` is
    ``R_V W_O`` with ``R_V^T R_V = W_V^T W_V`` (see :func:`gram_root`), and so on.
    """
    W_V, W_O = head_weight(view, "W_V"), head_weight(view, "W_O")
    left = gram_root(W_V) @ W_O
    left_scale = _frobenius(W_V) * _frobenius(W_O)
    if type == "V":
        right = W_V @ gram_root(W_O.transpose(-2, -1)).transpose(-2, -1)
        right_scale = left_scale
    else:
        W_Q, W_K = head_weight(view, "W_Q"), head_weight(view, "W_K")
        reads, other = (W_Q, W_K) if type == "Q" else (W_K, W_Q)
        right = reads @ gram_root(other).transpose(-2, -1)
        right_scale = _frobenius(W_Q) * _frobenius(W_K)
    tolerance = 1e-6
    left_zero = _frobenius(left) <= tolerance * left_scale
    right_zero = _frobenius(right) <= tolerance * right_scale
    return left, right, left_zero, right_zero


def _composition(
    view: ModelView, type: CompositionType, dtype: torch.dtype, sources: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[L, H, L, H]`` ratios for earlier (l1 < l2) pairs (0 elsewhere, NaN for 0/0), and the zero masks.

    ``sources`` (``[L, H]`` bool) limits the earlier heads computed (the rest stay 0), e.g. to ``with:`` members.
    """
    left, right, left_zero, right_zero = composition_factors(view, type)
    n_layers, n_heads = view.n_layers, view.n_heads
    device = left.device
    if sources is None:
        sources = torch.ones(n_layers, n_heads, dtype=torch.bool)
    sources = sources.to(device)
    norms = _frobenius(left)[:, :, None, None] * _frobenius(right)[None, None]  # [L_A, H_A, L_B, H_B]
    out = torch.zeros(n_layers, n_heads, n_layers, n_heads, dtype=torch.float64, device=device)
    rank_l, rank_r, width = left.shape[-2], right.shape[-1], n_heads * right.shape[-1]
    rows = left.to(dtype)  # [L, H, r, d]
    cols = right.to(dtype).permute(2, 0, 1, 3).reshape(right.shape[2], n_layers * width)  # [d, (L H r)]
    # One GEMM per earlier layer against every later layer at once: the pairs form a triangle, and this bounds
    # memory to [H r, L H r]. Each r x r block of the product is one pair's R_V^A W_O^A (M_B factor).
    for layer in range(n_layers - 1):
        heads = torch.nonzero(sources[layer]).flatten()
        if heads.numel() == 0:
            continue
        block = rows[layer, heads].reshape(-1, rows.shape[-1]) @ cols[:, (layer + 1) * width :]
        block = block.reshape(heads.numel(), rank_l, n_layers - layer - 1, n_heads, rank_r)
        out[layer, heads, layer + 1 :] = block.square().sum((1, 4)).to(torch.float64).sqrt()
    layers = torch.arange(n_layers, device=device)
    later_pair = (layers[:, None] < layers[None, :])[:, None, :, None]
    undefined = (left_zero[:, :, None, None] | right_zero[None, None]) & later_pair
    ratio = out / torch.where(undefined | ~later_pair, torch.ones_like(norms), norms)
    ratio = torch.where(undefined, torch.full_like(ratio, float("nan")), ratio)
    return ratio, left_zero, right_zero


def composition_scores(
    model_view: ModelView, type: CompositionType, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``[L, H, L, H]`` composition scores ``||W_OV^A M_B||_F / (||W_OV^A||_F ||M_B||_F)``, no baseline.

    ``[l1, h1, l2, h2]`` scores earlier head ``(l1, h1)`` into later head ``(l2, h2)``; entries with
    ``l1 >= l2`` are 0 (as TransformerLens's ``all_composition_scores``), 0/0 entries NaN. ``M_B`` is
    ``W_Q W_K^T`` (Q), ``W_K W_Q^T`` (K) or ``W_V W_O`` (V); input-norm weights (``ln1``; post-LN the norm before the
    layer) are folded (a no-op without LN).
    Every pair is an ``r x r`` block of one GEMM per earlier layer in ``dtype`` (default float32; factors in
    float64).
    """
    if type not in ("K", "Q", "V"):
        raise ValueError(f"type must be one of K, Q, V, not {type!r}")
    return _composition(model_view, type, dtype or torch.float32)[0]


def random_baseline(
    d_model: int, d_head: int, samples: int = BASELINE_SAMPLES, seed: int = 0, rank_a: int | None = None
) -> float:
    """The mean composition score of random matrices with a head's shapes (:func:`random_composition_scores`)."""
    return float(random_composition_scores(d_model, d_head, samples, seed, rank_a).mean())


@lru_cache(maxsize=32)
def random_composition_scores(
    d_model: int, d_head: int, samples: int = BASELINE_SAMPLES, seed: int = 0, rank_a: int | None = None
) -> torch.Tensor:
    """The composition scores ``[samples]`` (float64) of random matrices with a head's shapes (SAMPLED, as ARENA
    1.2 does); their mean is the random baseline.

    ``W_A = A_1 A_2^T`` and ``W_B = B_1 B_2^T`` with ``A_i, B_i [d_model, d_head]`` of i.i.d. uniform entries
    (ARENA uses ``kaiming_uniform_``; the ratio does not depend on the scale), ``samples`` draws from a
    generator seeded with ``seed``; the score is the same ratio as :func:`composition_scores`. It is close to
    ``1/sqrt(d_model)`` (the ratio of expectations for Gaussian entries), a little above it for small ``d_model``.
    ``rank_a`` gives ``A_i`` that many columns instead (the sum of ``k`` heads' OV circuits: ``k d_head``).
    """
    generator = torch.Generator().manual_seed(seed)
    a1, a2 = (torch.rand(samples, d_model, rank_a or d_head, generator=generator).mul_(2).sub_(1) for _ in range(2))
    b1, b2 = (torch.rand(samples, d_model, d_head, generator=generator).mul_(2).sub_(1) for _ in range(2))
    # W_A = a1 a2^T, W_B = b1 b2^T. With Gram matrices G = a^T a and C = a2^T b1 (all d_head x d_head):
    # ||W_A W_B||^2 = tr(G_a1 C G_b2 C^T), ||W_A||^2 = tr(G_a1 G_a2), ||W_B||^2 = tr(G_b1 G_b2).
    g_a1, g_a2, g_b1, g_b2 = ((m.transpose(-2, -1) @ m).to(torch.float64) for m in (a1, a2, b1, b2))
    cross = (a2.transpose(-2, -1) @ b1).to(torch.float64)
    product = ((g_a1 @ cross) * (cross @ g_b2)).sum((-2, -1))
    norm_a = (g_a1 * g_a2).sum((-2, -1))
    norm_b = (g_b1 * g_b2).sum((-2, -1))
    return (product / (norm_a * norm_b)).sqrt()


def expected_max(samples: torch.Tensor, k: int) -> float:
    """The mean of the largest of ``k`` draws from the empirical distribution of ``samples`` (exact for it)."""
    ordered = samples.double().sort().values
    n = ordered.numel()
    below = torch.arange(n + 1, dtype=torch.float64) / n
    weights = below[1:].pow(k) - below[:-1].pow(k)  # P(the largest draw is the i-th smallest sample)
    return float((ordered * weights).sum())


# The matrix of the later head that composition reads the earlier head's output through, by type.
READS = {"K": "W_K W_Q^T", "Q": "W_Q W_K^T", "V": "W_V W_O"}


class CompositionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: CompositionType = Field(
        "K",
        description="K: the later head's keys read the earlier head's output (W_OV^A W_K W_Q^T); Q: its queries "
        "(W_OV^A W_Q W_K^T); V: its values (W_OV^A W_V W_O).",
    )
    baseline: Literal["subtract", "divide", "none"] = Field(
        "subtract",
        description="Compare with the mean composition score of random matrices of the same shapes (ARENA's "
        f"baseline; {BASELINE_SAMPLES} seeded samples): subtract it (0 = chance) or divide by it (1 = chance, "
        "comparable across model widths, since the baseline shrinks like 1/sqrt(d_model)); none: the raw ratio.",
    )
    aggregate: Literal["max", "sum", "joint", "weighted"] = Field(
        "max",
        description="How a head's eligible partners count: the best one's score (max), the sum of their scores, "
        "joint: one score against the sum of their OV circuits (what they write together), or weighted: the "
        "same with each partner's OV circuit weighted by its score on the with: definition's first criterion "
        "(a partner that attends to the previous token half the time writes half the signal).",
    )


def score_composition(context: CheckContext) -> Scores:
    """Composition of each head B with the earlier ``with:`` members A (Elhage et al. 2021, section
    "Virtual Weights and Composition"): ``||W_OV^A M_B||_F / (||W_OV^A||_F ||M_B||_F)``, minus (or divided by)
    ARENA's random baseline, aggregated (max or sum) over members A with ``layer(A) < layer(B)``. Evidence names
    the best partner.
    """
    params: CompositionParams = context.params
    view = context.model
    names = view.unit_names()
    shape = (view.n_layers, view.n_heads)
    members = context.related_mask()
    if params.aggregate in ("joint", "weighted"):
        return joint_composition(context, members)
    key = "".join("1" if member else "0" for member in members.flatten().tolist())
    ratio, _, right_zero = context.shared(
        f"{_SHARED}composition:{params.type}:{key}", lambda: _composition(view, params.type, torch.float32, members)
    )
    ratio, right_zero = ratio.cpu(), right_zero.cpu()
    undefined = torch.isnan(ratio)
    if params.baseline != "none":
        baseline = context.shared(
            f"{_SHARED}baseline:{view.d_model}x{view.d_head}:{context.seed}",
            lambda: random_baseline(view.d_model, view.d_head, seed=context.seed),
        )
        ratio = ratio - baseline if params.baseline == "subtract" else ratio / baseline
    layers = torch.arange(view.n_layers)
    earlier = (layers[:, None] < layers[None, :])[:, None, :, None]  # [L, 1, L, 1]: layer(A) < layer(B)
    eligible = (members[:, :, None, None] & earlier).expand(*shape, *shape)  # [L_A, H_A, L_B, H_B]
    usable = eligible & ~undefined
    pairs = ratio.permute(2, 3, 0, 1).reshape(*shape, -1)  # [L_B, H_B, A]
    usable_b = usable.permute(2, 3, 0, 1).reshape(*shape, -1)
    masked = torch.where(usable_b, pairs, torch.full_like(pairs, float("-inf")))
    best_value, best_index = masked.max(-1)
    summed = torch.where(usable_b, pairs, torch.zeros_like(pairs)).sum(-1)
    values = best_value if params.aggregate == "max" else summed
    has_usable = usable_b.any(-1)
    values = torch.where(has_usable, values, torch.full_like(values, float("nan")))
    scores = Scores(values.float())
    has_eligible = eligible.permute(2, 3, 0, 1).reshape(*shape, -1).any(-1)
    definitions = ", ".join(sorted(context.related)) or "the `with:` definitions"
    scores.mark_undefined(~has_eligible, f"no earlier member of {definitions}", names)
    matrix = READS[params.type]
    scores.mark_undefined(
        has_eligible & right_zero, f"undefined: 0/0, the head's {matrix} ({params.type}-side matrix) is zero", names
    )
    scores.mark_undefined(
        has_eligible & ~has_usable,
        f"undefined: 0/0, every earlier member of {definitions} has a zero OV circuit",
        names,
    )
    for index in torch.nonzero(has_usable.flatten()).flatten().tolist():
        partner = int(best_index.flatten()[index])
        scores.evidence[names[index]] = {
            "partner": names[partner],
            "partner_score": float(best_value.flatten()[index]),
        }
    return scores


def chance_composition(context: CheckContext) -> float | None:
    """Random matrices of the same shapes (the random baseline's 300 seeded draws) as head B and its partners,
    aggregated as the scores are, for the head with the most earlier ``with:`` members (``k``): ``max``, the
    mean of the best of ``k`` random scores (0 with ``subtract`` and 1 with ``divide`` for ``k = 1``, above
    for more); ``sum``, ``k`` times the baseline (0 with ``subtract``, ``k`` with ``divide``);
    ``joint``/``weighted``, the baseline of the partners' summed rank (0 / 1). Unknown without an earlier member.

    Subtracting the baseline puts one random partner at 0, dividing by it at 1; ``none`` gives the raw value.
    """
    params: CompositionParams = context.params
    view = context.model
    members = context.related_mask()
    before = members.sum(1).cumsum(0) - members.sum(1)  # members in earlier layers, per layer
    k = int(before.max()) if before.numel() else 0
    if k == 0:
        return None
    if params.aggregate in ("joint", "weighted"):
        rank = min(view.d_model, k * view.d_head)
        raw = random_baseline(view.d_model, view.d_head, seed=context.seed, rank_a=rank)
        baseline = raw
    else:
        samples = random_composition_scores(view.d_model, view.d_head, seed=context.seed)
        baseline = float(samples.mean())
        raw = expected_max(samples, k) if params.aggregate == "max" else k * baseline
    if params.baseline == "none":
        return raw
    partners = 1 if params.aggregate != "sum" else k
    return raw - partners * baseline if params.baseline == "subtract" else raw / baseline


def joint_composition_ratios(
    view: ModelView, type: CompositionType, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[L, H]``: for every head B, ``||W_J M_B||_F / (||W_J||_F ||M_B||_F)`` with ``W_J = sum_A w_A W_V^A W_O^A``
    over the heads A in layers before B's (``weights`` ``[L, H]``, zero for non-partners; norms folded, as
    :func:`composition_factors`); NaN where no partner is earlier, or where either matrix is zero. Also the
    masks of heads whose ``M_B`` is zero (``[L, H]``) and of layers whose ``W_J`` is zero (``[L]``)."""
    _, right, _, right_zero = composition_factors(view, type)
    w_v, w_o = head_weight(view, "W_V"), head_weight(view, "W_O")  # [L, H, d, d_head], [L, H, d_head, d]
    out = torch.full(tuple(weights.shape), float("nan"), dtype=torch.float64)
    joint_zero = torch.zeros(view.n_layers, dtype=torch.bool)
    joint = torch.zeros(w_v.shape[2], w_v.shape[2], dtype=w_v.dtype, device=w_v.device)
    scale = torch.zeros((), dtype=w_v.dtype, device=w_v.device)  # sum of |w_A| ||W_V^A|| ||W_O^A||: the zero tolerance
    for layer in range(1, view.n_layers):  # W_J of layer l: the partners of layers < l
        heads = torch.nonzero(weights[layer - 1]).flatten()
        if heads.numel():  # sum_h w_h W_V^h W_O^h as one product: [d, k d_head] @ [k d_head, d]
            on = heads.to(w_v.device)
            factor = weights[layer - 1, heads].to(w_v)[:, None, None]
            joint = joint + (w_v[layer - 1, on] * factor).permute(1, 0, 2).flatten(1) @ w_o[layer - 1, on].flatten(0, 1)
            scale = (
                scale + (factor.flatten().abs() * _frobenius(w_v[layer - 1, on]) * _frobenius(w_o[layer - 1, on])).sum()
            )
        norm = torch.linalg.matrix_norm(joint)
        if float(norm) <= 1e-6 * float(scale):  # also no partner with a nonzero weight yet: 0 <= 0
            joint_zero[layer] = True
            continue
        right_b = right[layer]  # [H, d, r]
        ratio = torch.linalg.matrix_norm(joint @ right_b) / (norm * torch.linalg.matrix_norm(right_b))
        out[layer] = torch.where(right_zero[layer], torch.full_like(ratio, float("nan")), ratio).cpu()
    return out, right_zero.cpu(), joint_zero


def partner_weights(context: CheckContext, members: torch.Tensor) -> torch.Tensor:
    """``[L, H]`` float: 1 per ``with:`` member (``joint``), or its primary score on the ``with:`` definitions,
    the largest where several, negative and undefined scores counting 0 (``weighted``)."""
    params: CompositionParams = context.params
    if params.aggregate == "joint":
        return members.double()
    scores = [value.double() for value in context.related_scores.values() if tuple(value.shape) == tuple(members.shape)]
    if not scores:
        raise DefcheckError("aggregate: weighted needs the scores of the with: definitions, which were not given")
    best = torch.stack(scores).nan_to_num(0.0).clamp_min(0.0).amax(0)
    return torch.where(members, best, torch.zeros_like(best))


def joint_composition(context: CheckContext, members: torch.Tensor) -> Scores:
    """``aggregate: joint`` / ``weighted``: each head against the earlier ``with:`` members together (the sum of
    their OV circuits, weighted by their scores for ``weighted``), divided by (or minus) the random baseline for a
    circuit of their summed rank."""
    params: CompositionParams = context.params
    view = context.model
    names = view.unit_names()
    weights = partner_weights(context, members)
    key = ",".join(f"{weight:.9g}" for weight in weights.flatten().tolist())
    ratio, right_zero, joint_zero = context.shared(
        f"{_SHARED}joint:{params.type}:{key}", lambda: joint_composition_ratios(view, params.type, weights)
    )
    counts = members.sum(1).cumsum(0) - members.sum(1)  # members in earlier layers, per layer
    values = ratio.clone()
    if params.baseline != "none":
        for layer in range(view.n_layers):
            count = int(counts[layer])
            if count == 0:
                continue
            rank = min(view.d_model, count * view.d_head)
            baseline = context.shared(
                f"{_SHARED}baseline:{view.d_model}x{view.d_head}x{rank}:{context.seed}",
                partial(random_baseline, view.d_model, view.d_head, seed=context.seed, rank_a=rank),
            )
            values[layer] = ratio[layer] - baseline if params.baseline == "subtract" else ratio[layer] / baseline
    scores = Scores(values.float())
    definitions = ", ".join(sorted(context.related)) or "the `with:` definitions"
    shape = (view.n_layers, view.n_heads)
    earlier = (counts > 0)[:, None].expand(*shape)
    scores.mark_undefined(~earlier, f"no earlier member of {definitions}", names)
    weighted = params.aggregate == "weighted"
    zero_partners = earlier & joint_zero[:, None].expand(*shape)
    scores.mark_undefined(
        zero_partners,
        f"undefined: 0/0, every earlier member of {definitions} has a zero OV circuit"
        + (" or a score of 0 or less (its weight)" if weighted else ""),
        names,
    )
    scores.mark_undefined(
        earlier & ~zero_partners & right_zero,
        f"undefined: 0/0, the head's {READS[params.type]} ({params.type}-side matrix) is zero",
        names,
    )
    flat = weights.flatten().tolist()
    member_indices = torch.nonzero(members.flatten()).flatten().tolist()
    for index in torch.nonzero(~torch.isnan(ratio.flatten())).flatten().tolist():
        earlier_members = [i for i in member_indices if i // view.n_heads < index // view.n_heads]
        evidence: dict[str, Any] = {"partners": [names[i] for i in earlier_members]}
        if weighted:
            evidence["weights"] = [round(flat[i], 6) for i in earlier_members]
            evidence["partner"] = names[max(earlier_members, key=lambda i: flat[i])]  # the strongest
        scores.evidence[names[index]] = evidence
    return scores


@hookimpl
def defcheck_checkers() -> list[Checker]:
    source = 'Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"'
    return [
        Checker(
            "ov_eigenvalue_copying",
            "mechanism",
            score_ov_copying,
            summary="Re(sum of eigenvalues) / sum of |eigenvalues| of the head's OV circuit W_E W_V W_O W_U "
            "(1: copying, -1: anti-copying)",
            source=source,
            params=EigenParams,
            chance=chance_eigenvalue,
        ),
        Checker(
            "qk_eigenvalue",
            "mechanism",
            score_qk_eigenvalue,
            summary="Re(sum of eigenvalues) / sum of |eigenvalues| of the head's QK circuit W_E W_Q W_K^T W_E^T "
            "(positive: attends to tokens equal to the query token)",
            source=source,
            params=EigenParams,
            chance=chance_eigenvalue,
        ),
        Checker(
            "qk_positional",
            "mechanism",
            score_qk_positional,
            summary="Mean attention on position i - offset from positional embeddings alone (1: previous token)",
            source=source,
            params=PositionalParams,
            chance=chance_qk_positional,
        ),
        Checker(
            "composition",
            "mechanism",
            score_composition,
            summary="Frobenius composition score (K, Q or V) with the best (or all) earlier `with:` members, "
            "minus a random-matrix baseline",
            source=f"{source}; ARENA 1.2 for the random baseline",
            params=CompositionParams,
            relation="required",
            chance=chance_composition,
        ),
    ]
