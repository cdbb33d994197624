"""Built-in MLP-neuron checkers: does a neuron detect one token, by what it does and by how it is built?

``token_selectivity`` (behavior) reads each neuron's activation (``blocks.L.mlp.hook_post``) on a probe and
averages it per current token: ``mu[t]`` is the neuron's mean activation at the positions whose token is ``t``
(the probe's usable ids; BOS and special ids are left out). Its score, by ``measure``:

- ``share`` (default): the top token's share of the neuron's token-dependent response,
  ``(mu[top] - mu[min]) / sum_t (mu[t] - mu[min])``. Measured from the least-responsive token's mean, so that
  activation functions with negative outputs (GELU) need no special case. 1: only one token moves the neuron
  off its floor; ``1 / V`` (V usable tokens): every token moves it alike.
- ``selectivity``: the class selectivity index of Morcos et al. 2018 ("On the importance of single directions
  for generalization", section 2.3) with tokens as classes, ``(mu[top] - mean_{t != top} mu[t]) /
  (mu[top] + mean_{t != top} mu[t])``, here also measured from ``mu[min]`` (Morcos et al. use ReLU units,
  whose floor is 0). In [0, 1]; unlike ``share`` it is also near 1 for a neuron that fires for a few tokens.

A neuron whose mean is the same for every token (dead, or constant) has an undefined score.

``embedding_read`` (mechanism) reads the weights only: how each neuron's input weights ``W_in[L][:, n]`` read
the token embeddings ``W_E`` through the LayerNorm in front of the MLP (``ln2``). The LayerNorm's scale is
folded into ``W_in`` (``w_ln2 * W_in``) and, for LayerNorm (not RMSNorm), both sides are centered over
``d_model`` (LayerNorm subtracts the mean, so only the centered parts meet); the read of token ``t`` is the
cosine of the two. By ``measure``:

- ``share`` (default): the best-read token's share of the squared cosines, ``cos[top]^2 / sum_t cos[t]^2``
  (0 when no token is read positively). 1: the weights read one token's direction and no other; about
  ``2 ln V / V`` for a random direction (0.13 for 63 tokens).
- ``cosine``: the largest cosine, ``max_t cos[t]``: how closely the weights point along one token's embedding.

On a post-LN model (BERT), a layer's MLP reads the output of the norm after its attention (``ln1``): that
norm's scale is the one folded into ``W_in``, and the embedding reaches it through every norm before (the
embedding norm, then ``ln1`` and ``ln2`` of each earlier layer), so the token side is carried through those
(each centres and scales by its weight) before the cosine. With parallel attention and MLP (GPT-NeoX) ``ln2``
still feeds the MLP: nothing changes. On a gated MLP (SwiGLU: act(x W_gate) * (x W_in)) a neuron reads two
directions, and ``embedding_read`` is not applicable, with that reason; ``token_selectivity`` reads
``hook_post``, the product, on every MLP.

This is the **direct path** (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits": the
residual stream carries the embedding to every layer). For layer 0 it is all of a neuron's token-specific
input apart from what attention moves in; for later layers it leaves out what earlier layers write (an MLP0
that re-encodes the token, attention). Later layers are scored by their direct read all the same, and the
report says what that finds. Both checkers evidence the token they pick (``{"token": id}``), so one can see
whether a neuron fires on the token its weights read.

Token detectors in the literature: Voita et al. 2023, "Neurons in Large Language Models: Dead, N-gram,
Positional" (early-layer neurons that fire for a small set of tokens); Gurnee et al. 2023, "Finding Neurons in a
Haystack" (single-token detector neurons found by sparse probing).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import CheckContext, Checker, ModelView, NotApplicable, Scores, Streamed, hookimpl

POST_HOOK = "blocks.{}.mlp.hook_post"
EPS = 1e-6
READ_CHUNK = 4096  # tokens per step of embedding_read (a GPT-2 vocabulary in 13 steps)
RANDOM_DIRECTIONS = 128  # random input directions whose mean read is embedding_read's chance level


class SelectivityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: Literal["share", "selectivity"] = Field(
        "share",
        description="share: the top token's share of the neuron's response above its floor; selectivity: Morcos "
        "et al.'s class selectivity index, tokens as classes.",
    )
    min_count: int = Field(4, ge=1, description="Tokens seen fewer times than this on the probe are left out.")


class ReadParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: Literal["share", "cosine"] = Field(
        "share",
        description="share: the best-read token's share of the squared cosines; cosine: the largest cosine between "
        "the neuron's input weights and a token's embedding.",
    )


# --- behavior: mean activation per current token ---------------------------------------------------------------


def _post_hooks(params: SelectivityParams, model: ModelView) -> list[str]:
    return [POST_HOOK.format(layer) for layer in range(model.n_layers)]


def _usable(context: CheckContext) -> torch.Tensor:
    tokens = getattr(context.model, "tokens", None)
    if tokens is None:
        raise NotApplicable("the model has no token metadata, so the probe's ordinary tokens are unknown")
    return tokens.usable_ids()


def _counted_ids(context: CheckContext, min_count: int) -> torch.Tensor:
    """The usable ids the whole probe holds at least ``min_count`` times, sorted: the only ones whose mean
    activation the scores use, so the only ones accumulated (on a 20k-id vocabulary, a few dozen of them)."""
    probe = context.full_probe or context.probe
    assert probe is not None and probe.tokens is not None
    every = probe.tokens

    def compute() -> torch.Tensor:
        tokens = every.reshape(-1).cpu()
        tokens = tokens[torch.isin(tokens, _usable(context))]
        ids, counts = torch.unique(tokens, return_counts=True)
        return ids[counts >= min_count]

    return context.shared(f"neurons.counted:{probe.key}:{min_count}", compute)


def _selectivity_step(context: CheckContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per batch: the counted ids ``[k]`` (:func:`_counted_ids`), the activation sums per id ``[layers, k,
    d_mlp]`` and the counts ``[k]``. Only the positions of counted ids are read, one layer at a time, so memory
    follows those positions, not the probe or the vocabulary; ``share`` and ``selectivity`` on the same probe
    share the sums. ``hook_post`` is the input of ``W_out``: on a gated MLP the product act(x W_gate) * (x W_in),
    the neuron's activation."""
    params: SelectivityParams = context.params
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    ids = _counted_ids(context, params.min_count)
    whole = context.full_probe or probe
    key = f"neurons.sums:{whole.key}:{params.min_count}:{context.rows}"
    batch_tokens = probe.tokens

    def compute() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model = context.model
        first = context.activation(POST_HOOK.format(0))
        tokens = batch_tokens.reshape(-1).to(first.device)
        counted = ids.to(first.device)
        if counted.numel():
            where = torch.searchsorted(counted, tokens).clamp_max(counted.numel() - 1)
            kept = counted[where] == tokens
        else:
            where, kept = torch.zeros_like(tokens), torch.zeros_like(tokens, dtype=torch.bool)
        index = where[kept]
        sums = torch.zeros(model.n_layers, counted.numel(), first.shape[-1], dtype=torch.float64)
        for layer in range(model.n_layers):
            post = context.activation(POST_HOOK.format(layer))
            rows = post.reshape(-1, post.shape[-1])[kept].double()  # [kept positions, d_mlp]
            sums[layer].index_add_(0, index.cpu(), rows.cpu())
        counts = torch.bincount(index.cpu(), minlength=counted.numel()).to(torch.float64)
        return ids, sums, counts

    return context.shared(key, compute)


def _selectivity_finish(
    context: CheckContext, partials: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> Scores:
    params: SelectivityParams = context.params
    ids = partials[0][0]
    sums = torch.stack([part[1] for part in partials]).sum(0)
    counts = torch.stack([part[2] for part in partials]).sum(0)
    seen = torch.nonzero(counts >= params.min_count).flatten()
    if seen.numel() < 2:
        raise NotApplicable(
            f"fewer than 2 tokens occur at least {params.min_count} times on the probe; use a longer probe"
        )
    means = (sums[:, seen] / counts[seen][None, :, None]).transpose(1, 2)  # [layers, d_mlp, tokens seen]
    top, best = means.max(-1)
    above = means - means.min(-1, keepdim=True).values  # each token's mean above the neuron's floor
    lift = above.gather(-1, best[..., None])[..., 0]  # the top token's
    total = above.sum(-1)
    if params.measure == "share":
        values = lift / total.clamp_min(EPS)
    else:
        rest = (total - lift) / (above.shape[-1] - 1)
        values = (lift - rest) / (lift + rest).clamp_min(EPS)
    flat_constant = lift <= EPS * top.abs().clamp_min(1.0)
    scores = Scores(values.float(), evidence=_token_evidence(context, ids[seen][best]))
    scores.mark_undefined(
        flat_constant, "undefined: the neuron's mean activation is the same for every token", context.unit_names()
    )
    return scores


def _selectivity_score(context: CheckContext) -> Scores:
    """How much of an MLP neuron's response on the probe is to one current token.

    ``mu[t]``: the neuron's mean activation (blocks.L.mlp.hook_post) over the positions whose token is t (usable
    ids seen at least min_count times; BOS and special ids left out). With ``lift[t] = mu[t] - min_t mu[t]``:
    share = lift[top] / sum_t lift[t] (1: one token moves it, 1/V: all alike); selectivity = (lift[top] - r) /
    (lift[top] + r), r the mean lift of the other tokens (Morcos et al. 2018's index, measured from the floor).
    Undefined where every token gives the same mean. Evidence: the top token's id.
    """
    return _selectivity_finish(context, [_selectivity_step(context)])


# --- mechanism: the direct read of the token embeddings -----------------------------------------------------------


def _direct_read(context: CheckContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Over the usable tokens, each neuron's largest cosine ``[layers, d_mlp]`` between a token's embedding and
    its input weights read through the MLP's LayerNorm (scale folded in, centered for LayerNorm), the token
    with it, the sum of the squared cosines, and the norms of the folded weights. Tokens are taken
    ``READ_CHUNK`` at a time, so memory does not grow with the vocabulary."""
    model = context.model
    refuse_unreadable(model)
    ids = _usable(context)
    w_in = model.weight("W_in").float()  # [layers, d_model, d_mlp]
    chain = _post_ln_chain(model)
    feeding = "ln2" if chain is None else "ln1"  # the norm whose output the MLP reads (post-LN: after attention)
    norm = model.normalization
    if norm in ("LN", "LNPre", "RMS", "RMSPre"):
        scales = [model.ln_weight(layer, feeding) for layer in range(model.n_layers)]
        present = [scale for scale in scales if scale is not None]
        if len(present) == len(scales):
            w_in = w_in * torch.stack(present).float()[:, :, None]
    centered = norm in ("LN", "LNPre")
    if centered:
        w_in = w_in - w_in.mean(1, keepdim=True)
    norms = w_in.norm(dim=1, keepdim=True)  # [layers, 1, d_mlp]
    w_in = w_in / norms.clamp_min(EPS)
    layers, d_model, d_mlp = w_in.shape
    best = torch.full((layers, d_mlp), -2.0, device=w_in.device)
    token = torch.zeros(best.shape, dtype=torch.long, device=w_in.device)
    # sum_t cos[t]^2 = w^T (E^T E) w over the unit token directions E: one [d, d] Gram matrix per layer, no
    # vocabulary-sized product (only the max needs one)
    gram = torch.zeros(layers if chain is not None else 1, d_model, d_model, dtype=torch.float64, device=w_in.device)
    # neurons by rows: each neuron's max runs along a contiguous row (3x faster here than down columns)
    rows = w_in.transpose(1, 2).contiguous()  # [layers, d_mlp, d_model]
    product = torch.empty(d_mlp, min(READ_CHUNK, ids.numel()), device=w_in.device)
    for chunk in ids.to(w_in.device).split(READ_CHUNK):
        embedding = model.weight("W_E")[chunk].float().to(w_in.device)  # [c, d_model]
        if chain is not None:  # post-LN: the token's direction where it meets each MLP's norm [layers, c, d]
            embedding = _through_norms(embedding, chain)
        if centered:
            embedding = embedding - embedding.mean(-1, keepdim=True)
        embedding = embedding / embedding.norm(dim=-1, keepdim=True).clamp_min(EPS)
        shared = embedding if embedding.dim() == 3 else embedding[None]  # [1 or layers, c, d]
        gram += shared.transpose(1, 2).double() @ shared.double()
        per_layer = shared.expand(layers, -1, -1)
        out = product[:, : chunk.numel()]
        for layer in range(layers):  # one [d_mlp, c] product at a time, into one buffer
            torch.mm(rows[layer], per_layer[layer].transpose(0, 1), out=out)
            value, where = out.max(1)
            better = value > best[layer]  # ties keep the earlier token, as one max over all tokens would
            best[layer] = torch.where(better, value, best[layer])
            token[layer] = torch.where(better, chunk[where], token[layer])
    grams = gram.expand(layers, -1, -1)
    squares = torch.stack(
        [(w_in[layer].double() * (grams[layer] @ w_in[layer].double())).sum(0) for layer in range(layers)]
    ).float()
    return best.cpu(), token.cpu(), squares.cpu(), norms[:, 0].cpu()


def refuse_unreadable(model: ModelView) -> None:
    """Not applicable, with the reason, where a neuron's input is not one direction of the residual stream."""
    if model.d_mlp is None:
        raise NotApplicable("the model has no MLPs")
    if getattr(model.cfg, "gated_mlp", False):
        raise NotApplicable(
            "the model's MLPs are gated (e.g. SwiGLU): a neuron's activation act(x W_gate) * (x W_in) reads two "
            "directions of its input, so no single cosine with a token's embedding measures its read"
        )
    if not model.has_weight("W_in"):
        raise NotApplicable("the model's MLPs expose no input weights W_in (e.g. a mixture of experts)")


def _post_ln_chain(model: ModelView) -> list[torch.Tensor | None] | None:
    """On a post-LN model (BERT), the weights of the norms a token's embedding passes through on its direct path:
    the embedding norm, then per layer the norm after attention (``ln1``, which feeds that layer's MLP) and the
    norm after the MLP (``ln2``); None on a pre-LN model."""
    from defcheck_plugins.circuits import post_ln

    if not post_ln(model):
        return None
    embed_ln = getattr(getattr(model.model, "embed_ln", None), "weight", None)
    chain: list[torch.Tensor | None] = [None if embed_ln is None else embed_ln.detach().float()]
    for layer in range(model.n_layers):
        for which in ("ln1", "ln2"):
            weight = model.ln_weight(layer, which)
            chain.append(None if weight is None else weight.float())
    return chain


def _through_norms(embedding: torch.Tensor, chain: list[torch.Tensor | None]) -> torch.Tensor:
    """``[layers, c, d_model]``: each token's direction where it reaches layer L's MLP norm (``ln1``) on a
    post-LN model, i.e. after the embedding norm and ``ln1``, ``ln2`` of every earlier layer. Each norm centres
    its input and scales it by its weight: the division by the standard deviation is a positive factor (no
    change of direction), and the bias adds the same vector for every token (left out, as the pre-LN read
    leaves out ``ln2``'s bias)."""

    def norm(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        return x if weight is None else x * weight.to(x)

    x = norm(embedding, chain[0])
    arriving = []
    for layer in range((len(chain) - 1) // 2):  # sequential by nature: each norm acts on the previous one's output
        arriving.append(x)
        x = norm(norm(x, chain[1 + 2 * layer]), chain[2 + 2 * layer])  # this layer's ln1, then its ln2
    return torch.stack(arriving)


def _embedding_read(context: CheckContext) -> Scores:
    """How much an MLP neuron's input weights read one token's embedding, from the weights (direct path).

    ``w = w_ln2 * W_in[L][:, n]`` (the MLP's LayerNorm scale folded in), ``e_t = W_E[t]``; for LayerNorm both
    are centered over d_model. ``cos[t] = e_t . w / (|e_t| |w|)`` over the usable token ids. share = cos[top]^2
    / sum_t cos[t]^2 (0 when no cosine is positive; about 2 ln V / V for a random direction); cosine =
    max_t cos[t]. Layers after the first are read through the direct path only. Undefined where W_in[:, n] is
    zero. Evidence: the best-read token's id.
    """
    params: ReadParams = context.params
    best, token, squares, norms = context.shared("neurons.direct_read", lambda: _direct_read(context))
    if params.measure == "share":
        values = torch.where(best > 0, best.pow(2) / squares.clamp_min(EPS), torch.zeros_like(best))
    else:
        values = best
    scores = Scores(values.float(), evidence=_token_evidence(context, token))
    scores.mark_undefined(norms <= EPS, "undefined: the neuron's input weights are zero", context.unit_names())
    return scores


def _selectivity_chance(context: CheckContext) -> float | None:
    """A neuron whose response does not depend on the token (every token alike): ``1/V`` for share (V: the
    tokens counted on the probe), 0 for selectivity. Its score itself is undefined (0/0); one with a little
    token-independent noise scores somewhat above this, so treat it as a floor."""
    params: SelectivityParams = context.params
    if params.measure == "selectivity":
        return 0.0
    counted = int(_counted_ids(context, params.min_count).numel())
    return 1.0 / counted if counted >= 2 else None


def _read_chance(context: CheckContext) -> float:
    """The mean score of random input directions (128 i.i.d. Gaussian ones, seeded by the run's
    seed; centered for LayerNorm) against the model's own token embeddings, read as layer 0's MLP reads them:
    about ``2 ln V / V`` for share."""
    params: ReadParams = context.params
    model = context.model
    refuse_unreadable(model)
    ids = _usable(context)
    chain = _post_ln_chain(model)
    centered = model.normalization in ("LN", "LNPre")
    generator = torch.Generator().manual_seed(context.seed)
    directions = torch.randn(RANDOM_DIRECTIONS, model.d_model, generator=generator)
    if centered:
        directions = directions - directions.mean(-1, keepdim=True)
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(EPS)
    best = torch.full((RANDOM_DIRECTIONS,), -2.0)
    squares = torch.zeros(RANDOM_DIRECTIONS, dtype=torch.float64)
    for chunk in ids.split(READ_CHUNK):
        embedding = model.weight("W_E")[chunk.to(model.weight("W_E").device)].float().cpu()
        if chain is not None:  # post-LN: as layer 0's MLP norm receives it
            embedding = _through_norms(embedding, [None if w is None else w.cpu() for w in chain])[0]
        if centered:
            embedding = embedding - embedding.mean(-1, keepdim=True)
        embedding = embedding / embedding.norm(dim=-1, keepdim=True).clamp_min(EPS)
        cosines = directions @ embedding.T  # [directions, c]
        best = torch.maximum(best, cosines.max(-1).values)
        squares += cosines.double().pow(2).sum(-1)
    if params.measure == "cosine":
        return float(best.mean())
    shares = torch.where(best > 0, best.double().pow(2) / squares.clamp_min(EPS), torch.zeros_like(squares))
    return float(shares.mean())


def _token_evidence(context: CheckContext, token: torch.Tensor) -> dict[str, dict[str, Any]]:
    """``{unit: {"token": id}}``: the token each neuron's score is about."""
    names = context.unit_names()
    return {name: {"token": int(t)} for name, t in zip(names, token.flatten().tolist(), strict=True)}


@hookimpl
def defcheck_checkers() -> list[Checker]:
    return [
        Checker(
            "token_selectivity",
            "behavior",
            _selectivity_score,
            unit="mlp_neuron",
            summary="How much of an MLP neuron's response on a probe is to one token (mean activation per token)",
            source="Morcos et al. 2018, section 2.3 (class selectivity index); Voita et al. 2023 (token detectors)",
            params=SelectivityParams,
            probe="required",
            activations=_post_hooks,
            streamed=Streamed(_selectivity_step, _selectivity_finish),
            chance=_selectivity_chance,
        ),
        Checker(
            "embedding_read",
            "mechanism",
            _embedding_read,
            unit="mlp_neuron",
            summary="How much an MLP neuron's input weights read one token's embedding (direct path through ln2)",
            source="Elhage et al. 2021 (direct path); Gurnee et al. 2023 (single-token detector neurons)",
            params=ReadParams,
            chance=_read_chance,
        ),
    ]
