"""Built-in behavior checkers on a head's direct effect on the logits: ``copying`` and ``direct_logit_attribution``.

Both read a head's own output ``o = z[b, q, h] @ W_O[l, h]`` (``hook_z``; TransformerLens 4 has no
``hook_result``) and push it straight to the logits through the final norm, frozen at the probe's cached
``ln_final.hook_scale`` (the usual direct-logit-attribution linearization):

    eff(o) = center(o) / scale[b, q] * w_ln_final      (center only when the final norm is a LayerNorm)
    ell    = eff(o) @ W_U,  then mean-subtracted over the vocabulary        [d_vocab]

The final norm's bias, ``b_O`` and ``b_U`` belong to no head and are left out; an output soft cap, if the model
has one, is not applied (the direct effect is on the pre-cap logits).

``W_U`` is ``[d_model, d_vocab_out]``. Both checkers read a probe's input token ids as output ids (the token
attended to, the next token), so on a model whose output vocabulary is another space (Tracr: ``d_vocab_out !=
d_vocab``, no stated mapping) they are not applicable, as on a model whose unembedding or final norm the
checkpoint lacked (randomly initialised: the scores would be noise).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

from defcheck_plugins.applicability import refuse_untrained
from defcheck_plugins.attention import target_mask
from defcheck_plugins.circuits import refuse_different_vocabularies
from pydantic import BaseModel, ConfigDict, Field

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import CheckContext, Checker, ModelView, Scores, Streamed, hookimpl

Z_HOOK = "blocks.{}.attn.hook_z"
V_HOOK = "blocks.{}.attn.hook_v"
PATTERN_HOOK = "blocks.{}.attn.hook_pattern"
SCALE_HOOK = "ln_final.hook_scale"
# Elements of the per-chunk [d_vocab, positions] logit effect of one head (float32): 2**23 is 32 MiB.
CHUNK_ELEMENTS = 2**23
# A source's effect counts as zero (its shares 0/0) below this fraction of |v| ||circuit||_F sqrt(d_vocab).
ZERO_TOLERANCE = 1e-6

Positions = Literal["all", "targets"]
Normalization = Literal["cosine", "share"]


class CopyingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    positions: Positions = Field(
        "targets",
        description="Query positions averaged over: 'targets' (positions that have a prefix-matching target, "
        "i.e. whose token occurred earlier; in the repeated part of repeated_random_tokens) or 'all'.",
    )
    normalization: Normalization = Field(
        "cosine",
        description="How a source's logit effect is compared with its token: 'cosine' (the cosine between the "
        "effect and the token's centered one-hot, from d_head x d_head Gram matrices, cheap at any vocabulary) or "
        "'share' (the share of the effect's raise, minus the share of its lowering, that goes to the token: an "
        "L1 norm over the vocabulary for every source position, the costliest computation of a run on a "
        "50k-token vocabulary).",
    )


class DLAParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    positions: Positions = Field(
        "targets",
        description="Positions averaged over: 'targets' (positions whose next token an induction step would "
        "predict: some earlier [A][B] with A the current token and B the next token) or 'all' (every position "
        "but the last).",
    )


# --------------------------------------------------------------------------------------------------------------
# The final norm, linearized


def final_norm(view: ModelView) -> tuple[bool, bool, torch.Tensor | None]:
    """``(centers, scales, weight)`` of the model's final norm.

    ``centers``: it subtracts the mean over d_model (LN, LNPre; not RMS, RMSPre, nor ``final_rms`` models);
    ``scales``: it divides by ``ln_final.hook_scale`` (any normalization); ``weight``: its elementwise weight.
    """
    kind = (view.normalization or "").upper()
    rms = bool(getattr(view.cfg, "final_rms", False))
    scales = bool(kind) or rms
    centers = kind in ("LN", "LNPRE") and not rms
    return centers, scales, view.ln_weight(None) if scales else None


def refuse_logits(view: ModelView, what: str, compares: str) -> None:
    """Not applicable where ``what`` cannot be read honestly: the checkpoint lacked the unembedding or the final
    norm, or the output vocabulary is not the input one and ``compares`` (an input id with an output id) has no
    stated mapping."""
    refuse_untrained(view, ("unembed", "ln_final"), what)
    refuse_different_vocabularies(view, compares)


def refuse_copying(view: ModelView) -> None:
    """:func:`refuse_logits` for ``copying``."""
    refuse_logits(view, "copying (a head's direct effect on the logits)", "copying (the logit of the attended token)")


def refuse_dla(view: ModelView) -> None:
    """:func:`refuse_logits` for ``direct_logit_attribution``."""
    refuse_logits(
        view, "direct_logit_attribution (a head's direct effect on the logits)", "the logit of the next input token"
    )


def logit_hooks(view: ModelView, *, pattern: bool) -> list[str]:
    """DLA reads each head's output (``hook_z``) and the final norm's scale; copying reads values and patterns."""
    if pattern:
        return [name.format(layer) for layer in range(view.n_layers) for name in (V_HOOK, PATTERN_HOOK)]
    names = [Z_HOOK.format(layer) for layer in range(view.n_layers)]
    return names + ([SCALE_HOOK] if final_norm(view)[1] else [])


def _to_final(view: ModelView, x: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """Push residual-stream vectors ``x [..., d_model]`` through the frozen final norm (no bias); ``scale``
    (``ln_final.hook_scale`` at those positions) must broadcast against ``x[..., :1]``."""
    centers, _, weight = final_norm(view)
    if centers:
        x = x - x.mean(-1, keepdim=True)
    if weight is not None:
        x = x * weight.to(x)
    if scale is not None:
        x = x / scale.to(x)
    return x


def final_unembed(view: ModelView) -> torch.Tensor:
    """The frozen final norm's linear part (centering, weight) followed by the centered ``W_U``: ``[d_model, V]``.

    Leaves out the norm's positive scale, which a share does not depend on.
    """
    w_u = centered_unembed(view)
    return _to_final(view, torch.eye(view.d_model, dtype=w_u.dtype, device=w_u.device), None) @ w_u


def centered_unembed(view: ModelView) -> torch.Tensor:
    """``W_U`` minus its mean over the vocabulary, float32 ``[d_model, d_vocab]``."""
    w_u = view.weight("W_U").float()
    return w_u - w_u.mean(1, keepdim=True)


def head_logit_effects(context: CheckContext, layer: int, rows: slice) -> torch.Tensor:
    """The direct logit effect ``[b, q, heads, d_vocab]`` of every head of ``layer`` for the sequences ``rows``,
    before mean-centering over the vocabulary (tests use it to check the decomposition sums to the logits)."""
    view = context.model
    z = context.activation(Z_HOOK.format(layer))[rows].float()
    w_o = view.weight("W_O")[layer].to(z)
    out = torch.einsum("bqhd,hdm->bqhm", z, w_o)
    scale = context.activation(SCALE_HOOK)[rows].float()[:, :, None] if final_norm(view)[1] else None
    return _to_final(view, out, scale) @ view.weight("W_U").to(z)


def _chunks(n: int, per_row: int) -> Iterator[slice]:
    size = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


# --------------------------------------------------------------------------------------------------------------
# Positions


def copy_positions(tokens: torch.Tensor, bos: bool, positions: str) -> torch.Tensor:
    """Boolean ``[b, q]``: query positions averaged over by ``copying``."""
    if positions == "all":
        return torch.ones(tokens.shape, dtype=torch.bool)
    return target_mask("prefix_matching", tokens, bos).any(-1)


def predictable_positions(tokens: torch.Tensor, bos: bool, positions: str) -> torch.Tensor:
    """Boolean ``[b, q]``: positions whose next token is scored by ``direct_logit_attribution``.

    ``all``: every position but the last. ``targets``: positions ``q`` with an earlier ``k <= q`` such that
    ``tok[k-1] == tok[q]`` and ``tok[k] == tok[q+1]`` (an induction step from an earlier occurrence predicts it).
    """
    keep = torch.zeros(tokens.shape, dtype=torch.bool)
    keep[:, :-1] = True
    if positions == "all":
        return keep
    targets = target_mask("prefix_matching", tokens, bos)  # [b, q, k]: tok[k-1] == tok[q], k <= q
    following = torch.zeros_like(targets)
    following[:, :-1] = tokens[:, None, :] == tokens[:, 1:, None]  # [b, q, k]: tok[k] == tok[q+1]
    return keep & (targets & following).any(-1)


def _per_sequence(values: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """``values [b, q, H]`` averaged over the selected positions ``[b, q]`` of each sequence (NaN-aware): ``[b, H]``.

    Averaging these over sequences gives the checkers' scores; a streamed run keeps only these per batch."""
    masked = torch.where(selected[:, :, None], values, torch.full_like(values, float("nan")))
    return masked.nanmean(1)


# --------------------------------------------------------------------------------------------------------------
# copying


def final_factors(view: ModelView) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(T, m, G)``: :func:`final_unembed` is ``T (W_U - m 1^T)``, with ``T [d_model, d_model]`` the frozen final
    norm's linear part and ``m [d_model]`` the mean of ``W_U`` over the vocabulary; ``G`` is its Gram matrix
    ``final final^T [d_model, d_model]``, summed over chunks of the vocabulary. No ``[d_model, V]`` matrix is
    formed, so a 50k-token vocabulary costs the copying checker no extra copy of ``W_U``."""
    w_u = view.weight("W_U").float()
    transform = _to_final(view, torch.eye(view.d_model, dtype=w_u.dtype, device=w_u.device), None)
    mean = w_u.mean(1)
    gram = torch.zeros(view.d_model, view.d_model, dtype=torch.float64, device=w_u.device)
    step = max(1, CHUNK_ELEMENTS // max(view.d_model, 1))
    for start in range(0, w_u.shape[1], step):
        chunk = w_u[:, start : start + step] - mean[:, None]
        gram += (chunk @ chunk.T).double()
    return transform, mean, (transform.double() @ gram @ transform.double().T).float()


def token_columns(context: CheckContext) -> torch.Tensor:
    """``[d_model, b, k]``: the centered unembedding of each source's own token through the frozen final norm
    (the columns of :func:`final_unembed` for the probe's tokens), the same for every layer."""
    view = context.model
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    transform, mean, _ = context.shared("logits.final_factors", lambda: final_factors(view))
    tokens = probe.tokens.to(transform.device)
    return torch.einsum("mn,nbk->mbk", transform, view.weight("W_U").to(transform)[:, tokens] - mean[:, None, None])


def head_values(context: CheckContext, layer: int) -> torch.Tensor:
    """``[b, k, H, d_head]``: each query head's values; grouped K/V heads (GQA) repeated for the heads that share
    them, as the attention does."""
    values = context.activation(V_HOOK.format(layer))
    heads = context.model.n_heads
    if values.shape[2] != heads:
        values = values.repeat_interleave(heads // values.shape[2], dim=2)
    return values


def source_cosines(context: CheckContext, layer: int, columns: torch.Tensor) -> torch.Tensor:
    """``[b, k, H]``: for every source position ``k`` and head, the cosine between the direct logit effect of the
    head's value, ``ell = v[b, k, h] @ W_O[l, h] @ final`` (vocabulary-centered), and the centered one-hot of the
    token there, ``e_tok - 1/V``: ``ell[tok] / (|ell| sqrt(1 - 1/V))`` (``ell`` sums to zero).

    ``|ell|^2 = v^T G v`` with ``G = W_O final final^T W_O^T`` (``[H, d_head, d_head]``, once per layer and run),
    so no vocabulary-sized product is formed per position. 1 for a head whose effect is the token's own logit, -1
    for one that lowers exactly it, about ``N(0, 1/V)`` for an unrelated one; NaN where the effect is zero.
    """
    view = context.model
    transform, _, final_gram = context.shared("logits.final_factors", lambda: final_factors(view))
    w_o = view.weight("W_O")[layer].to(transform)  # [H, d_head, d_model]
    circuit_gram = context.shared(
        f"logits.ov_gram.{layer}", lambda: w_o @ final_gram @ w_o.transpose(1, 2)
    )  # [H, d_head, d_head]
    values = head_values(context, layer).to(transform)  # [b, k, H, d_head]
    own = torch.einsum("bkhd,hdm,mbk->bkh", values, w_o, columns)
    norm = torch.einsum("bkhd,hde,bkhe->bkh", values, circuit_gram, values).clamp_min(0).sqrt()
    vocabulary = view.weight("W_U").shape[1]
    circuit_norm = torch.diagonal(circuit_gram, dim1=-2, dim2=-1).sum(-1).clamp_min(0).sqrt()  # ||W_O final||_F
    zero = norm <= values.norm(dim=-1) * circuit_norm * ZERO_TOLERANCE
    cosine = own / (norm.clamp_min(1e-30) * math.sqrt(max(1.0 - 1.0 / vocabulary, 1e-30)))
    return torch.where(zero, torch.full_like(cosine, float("nan")), cosine.clamp(-1.0, 1.0)).cpu()


def source_shares(context: CheckContext, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(up, down)`` of shape ``[b, k, H]``: for every source position ``k`` and head, the share of the raise
    (lowering) in the direct logit effect of the head's value ``v[b, k, h] @ W_O[l, h]`` that goes to ``tok[b, k]``.

    The final norm is frozen at a positive scale, which does not change a share, so the shares do not depend on
    the query. NaN where the effect is zero (0/0). Computed in chunks of positions.
    """
    view = context.model
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    final = context.shared("logits.final_unembed", lambda: final_unembed(view))  # [d_model, V]
    tokens = probe.tokens.to(final.device)
    values = head_values(context, layer)  # [b, k, H, d_head]
    # ell = v @ W_O @ final: multiply in d_head space, one [V, d_head] matrix per head, vocabulary-major, so that
    # each chunk's product [V, rows] is a tall GEMM and its |.|_1 a reduction over contiguous columns
    circuits = torch.einsum("hdm,mv->hvd", view.weight("W_O")[layer].to(final), final).contiguous()  # [H, V, d_head]
    flat_values = values.flatten(0, 1).to(circuits)  # [n, H, d_head]
    flat_tokens = tokens.flatten()
    n, vocabulary = flat_values.shape[0], circuits.shape[1]
    own = torch.einsum("nhd,nhd->nh", circuits[:, flat_tokens].transpose(0, 1), flat_values)  # effect on tok[k]
    total = torch.empty(n, view.n_heads, dtype=circuits.dtype, device=circuits.device)
    rows = min(n, max(1, CHUNK_ELEMENTS // vocabulary))
    group = max(1, CHUNK_ELEMENTS // (vocabulary * rows))  # heads per product: all of them for small vocabularies
    for first in range(0, view.n_heads, group):
        heads = slice(first, min(first + group, view.n_heads))
        for items in _chunks(n, vocabulary * group):
            ell = torch.bmm(circuits[heads], flat_values[items, heads].permute(1, 2, 0))  # [heads, V, rows]
            total[items, heads] = (ell.abs_().sum(1) / 2).T  # sum raise == sum lower == |ell|_1 / 2 (ell sums to 0)
            del ell
    # 0/0 where the effect is zero up to rounding: relative to the value's and the circuit's norms
    scale = flat_values.norm(dim=-1) * circuits.flatten(1).norm(dim=-1) * math.sqrt(vocabulary)  # [n, H]
    zero = total <= scale * ZERO_TOLERANCE
    total = torch.where(zero, torch.ones_like(total), total)
    nan = torch.full_like(total, float("nan"))
    up = torch.where(zero, nan, own.clamp_min(0) / total).cpu()
    down = torch.where(zero, nan, (-own).clamp_min(0) / total).cpu()
    shape = (*values.shape[:2], view.n_heads)
    return up.reshape(shape), down.reshape(shape)


def score_copying(context: CheckContext) -> Scores:
    """Olsson et al. 2022's copying, measured on the probe: does a head raise the logits of the tokens it
    attends to?

    For head ``(l, h)`` and every source position ``k`` of a sequence, take the direct logit effect of the
    value the head would move from there, ``ell_k = eff(v[k, h] @ W_O[l, h]) @ W_U`` (see the module docstring),
    minus its mean over the vocabulary, and compare it with the token at ``k``:

        cosine (default): c_k = ell_k[tok_k] / (|ell_k|_2 sqrt(1 - 1/V))   (cosine with tok_k's centered one-hot)
        share:            c_k = ReLU(ell_k)[tok_k] / sum_v ReLU(ell_k)[v] - ReLU(-ell_k)[tok_k] / sum_v ReLU(-ell_k)[v]

    (``share``: the share of the raise that goes to the token at ``k`` minus the share of the lowering that does.)
    For a query position ``q`` with attention ``A[q, :]``: ``score_q = sum_k A[q, k] c_k`` over the sources with a
    defined ``c_k`` (renormalized over them). The score is averaged over the query positions chosen by
    ``positions`` in each sequence, then over sequences; it lies in [-1, 1]: a copying head scores near +1
    however it spreads its attention, a copy-suppression (anti-copying) head near -1, an unrelated head near 0.
    The final norm divides by a positive scale, which changes neither a cosine nor a share, so ``c_k`` does not
    depend on the query. The cosine is dominated by the largest entries of ``ell_k`` (is ``tok_k`` the main
    thing the head writes?), while the share counts every token's small raise, so that it falls as the
    vocabulary grows; the share costs an L1 norm over the vocabulary per source position and head, the cosine
    ``d_head x d_head`` Gram matrices. Where the effect is zero ``c_k`` is undefined (0/0) and left out; a head
    undefined everywhere scores NaN with a reason (a zeroed head is NaN, not 0). Evidence per head (``share``):
    the attention-weighted mean share of the raise ``up`` and of the lowering ``down``.
    """
    return finish_copying(context, [step_copying(context)])


def step_copying(context: CheckContext) -> dict[str, torch.Tensor]:
    """One batch: per-sequence means ``[L, b, H]`` of the per-query score (and, for ``share``, ``up`` and ``down``)."""
    view = context.model
    refuse_copying(view)
    params: CopyingParams = context.params
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    selected = copy_positions(probe.tokens, probe.bos, params.positions)  # [b, q]
    names = ("score", "up", "down") if params.normalization == "share" else ("score",)
    per_layer: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    if not selected.any():  # no query of this batch is averaged over: skip the vocabulary-sized work
        nan = torch.full((view.n_layers, probe.tokens.shape[0], view.n_heads), float("nan"))
        return {name: nan for name in per_layer}
    columns = token_columns(context) if params.normalization == "cosine" else None
    for layer in range(view.n_layers):
        if params.normalization == "share":
            up, down = source_shares(context, layer)  # [b, k, H]
            per_source = {"score": up - down, "up": up, "down": down}
        else:
            assert columns is not None
            per_source = {"score": source_cosines(context, layer, columns)}
        pattern = context.activation(PATTERN_HOOK.format(layer)).float().cpu()  # [b, H, q, k]
        defined = ~torch.isnan(per_source["score"])
        weight = pattern * defined.permute(0, 2, 1)[:, :, None, :]  # attention on sources with a defined value
        mass = weight.sum(-1)  # [b, H, q]
        for name, values in per_source.items():
            summed = torch.einsum("bhqk,bkh->bhq", weight, torch.nan_to_num(values))
            per_query = torch.where(mass > 0, summed / mass.clamp_min(1e-30), torch.full_like(summed, float("nan")))
            per_layer[name].append(_per_sequence(per_query.permute(0, 2, 1), selected))  # [b, H]
    return {name: torch.stack(values) for name, values in per_layer.items()}


def finish_copying(context: CheckContext, partials: list[dict[str, torch.Tensor]]) -> Scores:
    """The whole probe: per-sequence means averaged over sequences, with evidence and reasons."""
    view = context.model
    params: CopyingParams = context.params
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    units = view.unit_names()
    shape = (view.n_layers, view.n_heads)
    if not copy_positions(probe.tokens, probe.bos, params.positions).any():
        scores = Scores(torch.full(shape, float("nan")))
        scores.mark_undefined(
            torch.ones(shape, dtype=torch.bool), "no query position in the probe has a prefix-matching target", units
        )
        return scores
    means = {name: torch.cat([part[name] for part in partials], dim=1).nanmean(1) for name in partials[0]}
    scores = Scores(means["score"])
    for index, unit in enumerate(units):
        layer, head = divmod(index, view.n_heads)
        if "up" in means and not torch.isnan(scores.values[layer, head]):
            scores.evidence[unit] = {"up": float(means["up"][layer, head]), "down": float(means["down"][layer, head])}
    reason = "0/0: the head's direct effect on the logits is zero from every attended position"
    scores.mark_undefined(torch.isnan(scores.values), reason, units)
    return scores


def copying_hooks(params: CopyingParams, model: ModelView) -> list[str]:
    refuse_copying(model)  # before the forward pass: a model it cannot score costs no pass
    return logit_hooks(model, pattern=True)


# --------------------------------------------------------------------------------------------------------------
# direct_logit_attribution


def score_direct_logit_attribution(context: CheckContext) -> Scores:
    """A head's direct contribution to the logit of the probe's actual next token.

    For head ``(l, h)``, sequence ``b`` and position ``q`` (next token ``t = tok[b, q+1]``):

        dla = eff(z[b, q, h] @ W_O[l, h]) . (W_U[:, t] - mean_v W_U[:, v])

    with ``eff`` the frozen final norm (module docstring): the head's direct effect on the logit of ``t``
    relative to the mean logit, in logit units. Positive: the head helps predict the next token. Averaged over
    the positions chosen by ``positions`` in each sequence, then over sequences. NaN (with a reason) only when
    the probe has no such position. Computed without the vocabulary axis (the unembedding column of ``t`` is
    gathered first), so it is cheap for any vocabulary size.
    """
    return finish_direct_logit_attribution(context, [step_direct_logit_attribution(context)])


def step_direct_logit_attribution(context: CheckContext) -> torch.Tensor:
    """One batch: per-sequence means ``[L, b, H]`` over the chosen positions."""
    view = context.model
    refuse_dla(view)
    params: DLAParams = context.params
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    tokens = probe.tokens
    selected = predictable_positions(tokens, probe.bos, params.positions)
    if not selected.any():
        return torch.full((view.n_layers, tokens.shape[0], view.n_heads), float("nan"))
    w_u = context.shared("logits.centered_unembed", lambda: centered_unembed(view))
    following = torch.zeros_like(tokens)
    following[:, :-1] = tokens[:, 1:]
    # eff(o) . u == o . eff*(u) with eff*(u) = center(u * w) / scale: fold the frozen final norm into u
    centers, scales, weight = final_norm(view)
    direction = w_u.T[following.to(w_u.device)]  # [b, q, d_model]
    if weight is not None:
        direction = direction * weight.to(direction)
    if centers:
        direction = direction - direction.mean(-1, keepdim=True)
    if scales:
        direction = direction / context.activation(SCALE_HOOK).float().to(direction)
    values = []
    for layer in range(view.n_layers):  # per layer, so no [L, b, q, H, d_model] copy of the activations
        z = context.activation(Z_HOOK.format(layer)).float()
        w_o = view.weight("W_O")[layer].to(z)
        read = torch.einsum("hdm,bqm->bqhd", w_o, direction.to(z))
        values.append(_per_sequence((z * read).sum(-1).cpu(), selected))
    return torch.stack(values)


def finish_direct_logit_attribution(context: CheckContext, partials: list[torch.Tensor]) -> Scores:
    """The whole probe: per-sequence means averaged over sequences."""
    view = context.model
    params: DLAParams = context.params
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    scores = Scores(torch.cat(partials, dim=1).nanmean(1))
    if not predictable_positions(probe.tokens, probe.bos, params.positions).any():
        scores.mark_undefined(
            torch.ones(scores.values.shape, dtype=torch.bool),
            "no position in the probe has a next token predictable from an earlier occurrence",
            view.unit_names(),
        )
    return scores


def chance_copying(context: CheckContext) -> float:
    """0 (exact): a head whose logit effect from a source is unrelated to that source's token (a shuffled unit:
    the same effects, tokens permuted) scores 0 on average, since the cosines with every token's centered
    one-hot, and the shares of the raise minus those of the lowering, sum to 0 over the vocabulary."""
    return 0.0


def chance_direct_logit_attribution(context: CheckContext) -> float:
    """0 (exact): the effect is centered over the vocabulary, so a head whose effect is unrelated to the next
    token (a shuffled unit), like a zero one, scores 0 on average."""
    return 0.0


def dla_hooks(params: DLAParams, model: ModelView) -> list[str]:
    refuse_dla(model)  # before the forward pass: a model it cannot score costs no pass
    return logit_hooks(model, pattern=False)


@hookimpl
def defcheck_checkers() -> list[Checker]:
    return [
        Checker(
            "copying",
            "behavior",
            score_copying,
            summary="How much a head's direct logit effect from each attended position is that position's own "
            "token (cosine with its one-hot, or share of the raise; +1 copying, -1 copy suppression)",
            source="Olsson et al. 2022, In-context Learning and Induction Heads (copying); direct logit effect "
            "through the frozen final norm",
            params=CopyingParams,
            probe="required",
            activations=copying_hooks,
            streamed=Streamed(step_copying, finish_copying, sequence_axis=1),
            chance=chance_copying,
        ),
        Checker(
            "direct_logit_attribution",
            "behavior",
            score_direct_logit_attribution,
            summary="A head's direct effect on the logit of the actual next token (vocabulary-centered)",
            source="Elhage et al. 2021, A Mathematical Framework for Transformer Circuits (direct path); "
            "Olsson et al. 2022",
            params=DLAParams,
            probe="required",
            activations=dla_hooks,
            streamed=Streamed(step_direct_logit_attribution, finish_direct_logit_attribution, sequence_axis=1),
            chance=chance_direct_logit_attribution,
        ),
    ]
