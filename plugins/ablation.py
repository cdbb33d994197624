"""Built-in mechanism checker ``path_ablation``: does a head's attention behavior depend on the ``with:`` heads'
output reaching its keys (or queries)?

A causal check, computed from one cached forward pass: for every later layer the attention pattern is
recomputed with the member heads' output removed from the key (or query) input only, and scored with the same
attention-pattern score as ``attention_pattern`` (``plugins/attention.py``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from defcheck_plugins.attention import PatternParams, aggregate, pattern_scores, target_mask
from pydantic import Field, field_validator

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import CheckContext, Checker, ModelView, NotApplicable, Scores, Streamed, hookimpl

RESID_HOOK = "blocks.{}.hook_resid_pre"
Z_HOOK = "blocks.{}.attn.hook_z"
PATTERN_HOOK = "blocks.{}.attn.hook_pattern"
# A Hugging Face rotary model's cos/sin tables, as its attention applied them (TransformerLens 4 bridges).
COS_HOOK, SIN_HOOK = "blocks.{}.attn.hook_cos", "blocks.{}.attn.hook_sin"
_POSITIONAL = ("standard", "rotary")  # the position encodings the recomputation reproduces


class PathAblationParams(PatternParams):
    pattern: str = Field(
        "prefix_matching",
        description="The attention-pattern score whose drop is measured: previous_token, duplicate_token, "
        "prefix_matching, bos, or fixed_offset:K (as in attention_pattern).",
    )
    path: Literal["k", "q"] = Field(
        "k",
        description="Which input of the candidate head loses the member heads' output: k (its keys: "
        "K-composition) or q (its queries: Q-composition).",
    )
    ablation: Literal["mean", "zero"] = Field(
        "mean",
        description="What replaces each member head's output on that path: mean (its output averaged over the "
        "probe's sequences and positions) or zero.",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _no_value_path(cls, value: Any) -> Any:
        if value == "v":
            raise ValueError(
                "path 'v' cannot change an attention pattern (values do not enter the pattern), so its drop "
                "would always be 0; use k or q"
            )
        return value


def _dtype_tolerance(dtype: torch.dtype) -> float:
    return 1e-3 if dtype in (torch.float32, torch.float64) else 5e-2


def attention_scale(view: ModelView) -> float:
    """What attention scores are divided by (TransformerLens: ``attn_scale`` if set, else sqrt(d_head))."""
    cfg = view.cfg
    scale = float(getattr(cfg, "attn_scale", -1.0) or -1.0)
    if getattr(cfg, "use_attn_scale", True) and scale > 0:
        return scale
    return math.sqrt(view.d_head)


def _native_rope(view: ModelView) -> Any:
    """A native TransformerLens rotary model's ``apply_rope``, if it has one."""
    rotary = getattr(getattr(view.model, "original_model", None), "rotary", None)
    return rotary if rotary is not None and hasattr(rotary, "apply_rope") else None


def _hooked_rope(view: ModelView) -> bool:
    """Whether the model's attention reports the cos/sin tables it rotates by (a Hugging Face rotary bridge)."""
    return COS_HOOK.format(0) in getattr(view.model, "hook_dict", {})


def unsupported(view: ModelView) -> str | None:
    """Why the attention pattern cannot be recomputed from the residual stream as path_ablation does (None: it
    can): each feature named is one the recomputation is known not to reproduce."""
    from defcheck_plugins.circuits import post_ln

    cfg = view.cfg
    if post_ln(view):
        return (
            "this model normalises after each sublayer (post-LN, e.g. BERT): a head's output reaches later layers "
            "only through the norms in between, not as a term of their input that can be subtracted"
        )
    if view.positional not in _POSITIONAL:
        return f"its position encoding ({view.positional}) enters the attention scores in a way not recomputed here"
    if view.positional == "rotary" and _native_rope(view) is None and not _hooked_rope(view):
        return "its rotary position encoding is not exposed (no apply_rope, no cos/sin hooks) to be reapplied"
    if getattr(cfg, "use_local_attn", False) or getattr(cfg, "window_size", None):
        return "it has sliding-window (local) attention, whose mask is not recomputed here"
    if getattr(cfg, "use_qk_norm", False):
        return "it normalises queries and keys per head (QK norm), which is not recomputed here"
    return None


def refuse_unsupported(view: ModelView) -> None:
    """Not applicable, with the feature, before any work, where the recomputation is known not to match."""
    reason = unsupported(view)
    if reason is not None:
        raise NotApplicable(f"path_ablation recomputes attention patterns from a patched input, and {reason}")


def _bias(view: ModelView, which: str, layer: int, shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """``b_Q``/``b_K`` of ``layer`` ``[heads, d_head]``; zeros for a model without biases (e.g. Llama)."""
    if not view.has_weight(f"b_{which}"):
        return torch.zeros(shape).to(like)
    return view.weight(f"b_{which}")[layer].to(like)


def _project(view: ModelView, layer: int, resid: torch.Tensor, which: str) -> torch.Tensor:
    """``ln1(resid) @ W + b`` for ``which`` in Q/K, as ``[b, heads, pos, d_head]`` (KV groups expanded: each
    query head uses its own group's weights, as grouped-query attention shares them)."""
    ln1 = view.model.blocks[layer].ln1
    dtype = view.model.W_E.dtype
    x = ln1(resid.to(dtype)).float()
    weight = view.weight(f"W_{which}")[layer].to(x)
    bias = _bias(view, which, layer, (weight.shape[0], weight.shape[2]), x)
    out = torch.einsum("bpm,hmd->bhpd", x, weight) + bias[None, :, None, :]
    if out.shape[1] != view.n_heads:  # grouped-query attention: repeat each K head over its group
        out = out.repeat_interleave(view.n_heads // out.shape[1], dim=1)
    return out


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Hugging Face's rotary embedding (rotate-half) on the first ``cos.shape[-1]`` dimensions of ``x``
    ``[b, heads, pos, d_head]`` (the rest, e.g. GPT-NeoX's partial rotary, pass through)."""
    size = cos.shape[-1]
    rotated, rest = x[..., :size], x[..., size:]
    half = size // 2
    turned = torch.cat([-rotated[..., half:], rotated[..., :half]], dim=-1)
    return torch.cat([rotated * cos + turned * sin, rest], dim=-1)


def recompute_pattern(
    view: ModelView,
    layer: int,
    q_resid: torch.Tensor,
    k_resid: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The attention pattern ``[b, heads, q, k]`` of every head of ``layer``, with queries computed from the
    residual stream ``q_resid`` and keys from ``k_resid`` (both ``[b, pos, d_model]``, before ``ln1``).

    As in TransformerLens 4: ``ln1``, ``W_Q``/``W_K`` with biases, RoPE on rotary models (``apply_rope`` of a
    native model, else ``rope``: the cos/sin tables the layer's attention reported), scores divided by the
    attention scale, soft cap if configured, causal mask (none on a bidirectional model), softmax.
    """
    with torch.no_grad():
        q = _project(view, layer, q_resid, "Q")
        k = _project(view, layer, k_resid, "K")
        if view.positional == "rotary":
            native = _native_rope(view)
            if native is not None:
                q, k = native.apply_rope(q, k)
            elif rope is not None:
                cos, sin = (table.float().to(q.device) for table in rope)
                cos, sin = (cos[:, None], sin[:, None]) if cos.dim() == 3 else (cos, sin)  # [b|1, 1, pos, rot]
                q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            else:
                raise NotApplicable(f"path_ablation needs layer {layer}'s rotary cos/sin tables to recompute it")
        scores = q @ k.transpose(-1, -2) / attention_scale(view)
        cap = float(getattr(view.cfg, "attn_scores_soft_cap", -1.0) or -1.0)
        if cap > 0:
            scores = cap * torch.tanh(scores / cap)
        size = scores.shape[-1]
        if view.causal:
            mask = torch.triu(torch.ones(size, size, dtype=torch.bool, device=scores.device), diagonal=1)
            scores = scores.masked_fill(mask, float("-inf"))
            return torch.softmax(scores, dim=-1).masked_fill(mask, 0.0)
        return torch.softmax(scores, dim=-1)


def member_outputs(
    context: CheckContext, members: torch.Tensor, ablation: str, means: list[torch.Tensor | None] | None = None
) -> list[torch.Tensor | None]:
    """Per layer, the summed output deviation ``[b, pos, d_model]`` of that layer's member heads (None if it has
    none): ``z @ W_O`` of the members, minus their mean over sequences and positions for mean ablation (``means``:
    that mean per layer over the whole probe, when ``context`` holds only one batch of it)."""
    view = context.model
    outputs: list[torch.Tensor | None] = []
    for layer in range(view.n_layers):  # only member layers do any work; shapes are per layer
        heads = members[layer]
        if not heads.any():
            outputs.append(None)
            continue
        out = _member_output(context, heads, layer)
        if ablation == "mean":
            mean = means[layer] if means is not None else None
            out = out - (out.mean((0, 1), keepdim=True) if mean is None else mean.to(out))
        outputs.append(out)
    return outputs


def _member_output(context: CheckContext, heads: torch.Tensor, layer: int) -> torch.Tensor:
    z = context.activation(Z_HOOK.format(layer)).float()
    w_o = context.model.weight("W_O")[layer].to(z)
    return torch.einsum("bphd,hdm->bpm", z * heads.to(z)[None, None, :, None], w_o)


def score_path_ablation(context: CheckContext) -> Scores:
    """The drop in a head's attention-pattern score when the ``with:`` heads' output is ablated on the path
    into its keys (``path: k``) or queries (``path: q``) only.

    Let M be the member heads (the union of the ``with:`` definitions' members) and, for a member ``m`` in layer
    ``l_m``, ``o_m = z_m @ W_O[m]`` its output at every position (``hook_z``). Its deviation is
    ``d_m = o_m`` (``ablation: zero``) or ``o_m - mean_{b,pos}(o_m)`` (``ablation: mean``). For every layer
    ``l`` and every head of it, with ``x = resid_pre[l]`` from the cached forward pass:

        x'     = x - sum_{m in M, l_m < l} d_m                       (only members of earlier layers reach l)
        A      = softmax(causal(q(x) k(x)^T / scale))                 (recomputed; equals hook_pattern)
        A'     = softmax(causal(q(x) k(x')^T / scale))                (path k; path q patches q instead)
        score  = S(A) - S(A')

    where ``q(x) = ln1(x) W_Q + b_Q`` (RoPE applied on rotary models; ``ln1`` recomputed on x', so the patched
    input is renormalized) and S is ``attention_pattern``'s score (params ``pattern``, ``exclude_bos``,
    ``exclude_current_token``, ``aggregate``). Only the direct path is ablated: MLPs and other heads still see
    the members' output, and the candidate's values are untouched. Positive: the behavior depends on the
    members' output through that input. Heads with no member in an earlier layer score 0 (evidence
    ``path: none``). Evidence per head: ``before`` and ``after`` (S(A), S(A')).

    Architectures: grouped-query attention uses each head's own K/V group; rotary models are rotated as their
    attention did (``apply_rope``, or a Hugging Face model's cos/sin tables); a model without Q/K biases uses
    zeros; with parallel attention and MLP (GPT-NeoX), a member's output reaches later layers' input directly
    as in a sequential model (its own layer's MLP never reads it, which changes nothing here). Not applicable,
    with the reason, where the recomputation is known not to match: post-LN models (a head's output is
    renormalised by every later block, so it is no term of a later input), position encodings other than
    learned and rotary (ALiBi, shortformer, relative bias), sliding-window attention, QK norm; and, as a last
    check, wherever the recomputed clean pattern differs from the cached one.

    Source: path patching (Wang et al. 2022, Interpretability in the Wild; Goldowsky-Dill et al. 2023) applied
    to K-composition (Elhage et al. 2021, Olsson et al. 2022: induction heads' keys read a previous-token head).
    """
    prepared = [prepare_path_ablation(context)] if wants_mean_pass(context) else []
    context.prepared = prepared
    return finish_path_ablation(context, [step_path_ablation(context)])


def wants_mean_pass(context: CheckContext) -> bool:
    """Mean ablation needs the members' mean output over the whole probe first: a member in a layer before
    the last one."""
    return context.params.ablation == "mean" and bool(context.related_mask()[:-1].any())


def _batch_key(context: CheckContext, what: str, params: bool) -> str | None:
    """A memo key for one batch's work: criteria that differ only in their ``with:`` names but have the same
    members (e.g. copies of a concept) share it. None outside a streamed run (no batch identity)."""
    if context.rows is None or context.probe is None:
        return None
    members = "".join("1" if m else "0" for m in context.related_mask().flatten().tolist())
    settings = context.params.model_dump_json() if params else ""
    return f"ablation.{what}:{context.probe.key}:{context.rows.start}:{context.rows.stop}:{members}:{settings}"


def prepare_path_ablation(context: CheckContext) -> tuple[list[torch.Tensor | None], int]:
    """One batch of the first pass: per member layer, the members' output summed over sequences and positions
    (float64), and the number of positions summed."""
    key = _batch_key(context, "prepare", params=False)
    return _prepare(context) if key is None else context.shared(key, lambda: _prepare(context))


def _prepare(context: CheckContext) -> tuple[list[torch.Tensor | None], int]:
    refuse_unsupported(context.model)
    members = context.related_mask()
    sums: list[torch.Tensor | None] = []
    count = 0
    for layer in range(context.model.n_layers):
        if not members[layer].any():
            sums.append(None)
            continue
        out = _member_output(context, members[layer], layer)
        count = out.shape[0] * out.shape[1]
        sums.append(out.double().sum((0, 1), keepdim=True))
    return sums, count


def _probe_means(prepared: list[tuple[list[torch.Tensor | None], int]]) -> list[torch.Tensor | None] | None:
    if not prepared:
        return None
    total = sum(count for _, count in prepared)
    means: list[torch.Tensor | None] = []
    for layer in range(len(prepared[0][0])):
        parts = [sums[layer] for sums, _ in prepared]
        present = [part for part in parts if part is not None]
        means.append(None if parts[0] is None else torch.stack(present).sum(0) / max(total, 1))
    return means


def step_path_ablation(context: CheckContext) -> dict[str, torch.Tensor]:
    """One batch: per-sequence scores ``[L, b, H]`` before and after the ablation, and which layers have a path."""
    key = _batch_key(context, "step", params=True)
    return _step(context) if key is None else context.shared(key, lambda: _step(context))


def _step(context: CheckContext) -> dict[str, torch.Tensor]:
    view = context.model
    refuse_unsupported(view)
    params: PathAblationParams = context.params
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    members = context.related_mask()
    n_layers = view.n_layers
    first = context.activation(PATTERN_HOOK.format(0))
    device = first.device
    targets = target_mask(params.pattern, probe.tokens.to(device), probe.bos)
    options = {
        "bos": probe.bos,
        "exclude_bos": params.exclude_bos,
        "exclude_current_token": params.exclude_current_token,
    }

    def behavior(pattern: torch.Tensor) -> torch.Tensor:
        return pattern_scores(pattern[None].float(), targets, **options)[0].cpu()  # [b, H]

    outputs = member_outputs(context, members, params.ablation, _probe_means(context.prepared))
    before: list[torch.Tensor] = []
    after: list[torch.Tensor] = []
    has_path = torch.zeros(n_layers, dtype=torch.bool)
    removed: torch.Tensor | None = None  # sum of the deviations of members in layers < current
    tolerance = _dtype_tolerance(first.dtype)
    for layer in range(n_layers):  # each layer's input depends on the members before it
        cached = context.activation(PATTERN_HOOK.format(layer))
        if removed is None:
            clean = behavior(cached)
            before.append(clean)
            after.append(clean)
        else:
            has_path[layer] = True
            resid = context.activation(RESID_HOOK.format(layer)).float()
            patched = resid - removed
            rope = _rope_tables(context, layer)
            recomputed = recompute_pattern(view, layer, resid, resid, rope)
            gap = float((recomputed - cached.float()).abs().max())
            if gap > tolerance:
                raise NotApplicable(
                    f"path_ablation cannot reproduce layer {layer}'s attention pattern from its input (max "
                    f"difference {gap:.2g}) with {_recipe(view)}; the model's attention has a part this "
                    "recomputation leaves out"
                )
            ablated = (
                recompute_pattern(view, layer, resid, patched, rope)
                if params.path == "k"
                else recompute_pattern(view, layer, patched, resid, rope)
            )
            before.append(behavior(recomputed))
            after.append(behavior(ablated))
        output = outputs[layer]
        if output is not None:
            removed = output if removed is None else removed + output
    return {"before": torch.stack(before), "after": torch.stack(after), "has_path": has_path}


def _rope_tables(context: CheckContext, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The cos/sin tables layer ``layer`` rotated by, on a Hugging Face rotary model (else None)."""
    view = context.model
    if view.positional != "rotary" or _native_rope(view) is not None or not _hooked_rope(view):
        return None
    return context.activation(COS_HOOK.format(layer)), context.activation(SIN_HOOK.format(layer))


def _recipe(view: ModelView) -> str:
    """How the pattern was recomputed, in words (for the reason when it does not match)."""
    parts = ["ln1", "W_Q/W_K" + (" and biases" if view.has_weight("b_Q") else "")]
    if view.positional == "rotary":
        parts.append("rotary (apply_rope)" if _native_rope(view) is not None else "rotary (rotate-half, cos/sin hooks)")
    if float(getattr(view.cfg, "attn_scores_soft_cap", -1.0) or -1.0) > 0:
        parts.append("the soft cap")
    parts.append(f"scale {attention_scale(view):.3g}")
    parts.append("a causal mask" if view.causal else "no mask")
    return ", ".join(parts)


def finish_path_ablation(context: CheckContext, partials: list[dict[str, torch.Tensor]]) -> Scores:
    """The whole probe: the per-sequence scores aggregated (``mean`` or ``min``), then the drop per head."""
    view = context.model
    params: PathAblationParams = context.params
    probe = context.probe
    assert probe is not None
    n_heads = view.n_heads
    before = aggregate(torch.cat([part["before"] for part in partials], dim=1), probe, params.aggregate)
    after = aggregate(torch.cat([part["after"] for part in partials], dim=1), probe, params.aggregate)
    has_path = partials[0]["has_path"]
    drop = torch.where(has_path[:, None], before - after, torch.zeros_like(before))
    drop = torch.where(torch.isnan(before), before, drop)
    scores = Scores(drop)
    for index, unit in enumerate(view.unit_names()):
        layer, head = divmod(index, n_heads)
        evidence: dict[str, Any] = {"before": _json(before[layer, head]), "after": _json(after[layer, head])}
        if not has_path[layer]:
            evidence["path"] = "none: no member head in an earlier layer"
        scores.evidence[unit] = evidence
    scores.mark_undefined(
        torch.isnan(scores.values), f"no query position in the probe has a '{params.pattern}' target", view.unit_names()
    )
    return scores


def _json(value: torch.Tensor) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def chance_path_ablation(context: CheckContext) -> float:
    """0: a candidate head whose keys (or queries) do not read the members' output loses nothing when that
    output is ablated on the path (a null head's drop is zero; so is the drop of a head with no earlier member).
    """
    return 0.0


def path_ablation_hooks(params: PathAblationParams, model: ModelView) -> list[str]:
    templates: tuple[str, ...] = (RESID_HOOK, Z_HOOK, PATTERN_HOOK)
    if unsupported(model) is None and model.positional == "rotary" and _native_rope(model) is None:
        templates += (COS_HOOK, SIN_HOOK)  # a Hugging Face rotary model: the tables its attention used
    return [template.format(layer) for layer in range(model.n_layers) for template in templates]


@hookimpl
def defcheck_checkers() -> list[Checker]:
    return [
        Checker(
            "path_ablation",
            "mechanism",
            score_path_ablation,
            summary="Drop in a head's attention-pattern score when the with: heads' output is ablated on the path "
            "into its keys (or queries) only",
            source="Path patching (Wang et al. 2022; Goldowsky-Dill et al. 2023) on K-composition (Elhage et al. "
            "2021; Olsson et al. 2022)",
            params=PathAblationParams,
            probe="required",
            relation="required",
            activations=path_ablation_hooks,
            streamed=Streamed(
                step_path_ablation,
                finish_path_ablation,
                prepare=prepare_path_ablation,
                wants_prepare=wants_mean_pass,
                sequence_axis=1,
            ),
            chance=chance_path_ablation,
        )
    ]
