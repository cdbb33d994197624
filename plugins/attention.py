"""Built-in behavior checker ``attention_pattern``: the share of a head's attention on a target pattern.

Unlike TransformerLens's ``detect_head`` (which divides by every query row), only query positions that have
a target count, so a perfect induction head scores 1.0 on ``[BOS] + R + R``, not under 0.5.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import (
    CheckContext,
    Checker,
    DefcheckError,
    ModelView,
    NotApplicable,
    ProbeBatch,
    Scores,
    Streamed,
    hookimpl,
)

PATTERN_HOOK = "blocks.{}.attn.hook_pattern"
_OFFSET = re.compile(r"^fixed_offset:(-?\d+)$")
NAMED_PATTERNS = ("previous_token", "duplicate_token", "prefix_matching", "bos")


class PatternParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(
        description="previous_token, duplicate_token, prefix_matching (the token after an earlier occurrence "
        "of the current token), bos, or fixed_offset:K (the token K positions back; K < 0: -K ahead, "
        "on bidirectional models only)."
    )
    exclude_bos: bool = Field(False, description="Ignore attention to the BOS position (target and total).")
    exclude_current_token: bool = Field(False, description="Ignore attention to the query's own position.")
    aggregate: Literal["mean", "min"] = Field(
        "mean",
        description="mean over sequences; min: the lowest per-repeat-length mean, so the behavior must hold "
        "at every length of the probe.",
    )
    relative_to: Literal["none", "chance"] = Field(
        "none",
        description="chance: the score divided by what a head attending uniformly to every position it may "
        "attend to scores on the same sequence (1 = chance), so that one cut-off means the same at any length.",
    )

    @field_validator("pattern")
    @classmethod
    def _known(cls, value: str) -> str:
        match = _OFFSET.match(value)
        if value in NAMED_PATTERNS or match:
            return value
        raise ValueError(
            f"unknown pattern '{value}'; use one of {', '.join(NAMED_PATTERNS)} or fixed_offset:K "
            "(K back; negative K: -K ahead, for models without a causal mask)"
        )


def target_mask(pattern: str, tokens: torch.Tensor, bos: bool) -> torch.Tensor:
    """Boolean ``[batch, q, k]``: which key positions are the pattern's target for each query position."""
    batch, size = tokens.shape
    q = torch.arange(size)[:, None]
    k = torch.arange(size)[None, :]
    causal = k <= q
    if pattern == "previous_token":
        return (k == q - 1).expand(batch, size, size)
    if pattern == "bos":
        if not bos:
            raise DefcheckError("the pattern 'bos' needs a probe whose sequences start with BOS")
        return (k == 0).expand(batch, size, size)
    if pattern.startswith("fixed_offset:"):
        offset = int(pattern.split(":")[1])
        return (k == q - offset).expand(batch, size, size)
    same = tokens[:, :, None] == tokens[:, None, :]  # [b, q, k]: tok[q] == tok[k]
    if pattern == "duplicate_token":
        return same & (k < q)
    if pattern == "prefix_matching":
        shifted = torch.zeros_like(same)
        shifted[:, :, 1:] = same[:, :, :-1]  # tok[q] == tok[k-1]
        return shifted & causal & (k >= 1)
    raise DefcheckError(f"unknown pattern '{pattern}'")


def pattern_scores(
    patterns: torch.Tensor, targets: torch.Tensor, *, bos: bool, exclude_bos: bool, exclude_current_token: bool
) -> torch.Tensor:
    """Per-sequence scores ``[layers, batch, heads]`` from patterns ``[layers, batch, heads, q, k]``.

    For each sequence: attention on targets summed over the query rows that have a target, divided by the
    attention those rows pay in all (after exclusions). NaN where a sequence has no target row, and where those
    rows pay no attention at all after exclusions (0/0). Never clamped, so that a tiny but
    nonzero denominator still gives the exact ratio.
    """
    size = patterns.shape[-1]
    keep = torch.ones(size, size, dtype=torch.bool)
    if exclude_bos and bos:
        keep[:, 0] = False
    if exclude_current_token:
        keep.fill_diagonal_(False)
    targets = targets & keep
    rows = targets.any(-1)  # [b, q]
    weights = patterns * keep  # [L, b, h, q, k]
    on_target = (weights * targets[None, :, None]).sum(-1)  # [L, b, h, q]
    total = weights.sum(-1)
    row_mask = rows[None, :, None].to(weights.dtype)
    numerator = (on_target * row_mask).sum(-1)
    denominator = (total * row_mask).sum(-1)
    defined = rows.any(-1)[None, :, None] & (denominator > 0)
    scores = numerator / torch.where(defined, denominator, torch.ones_like(denominator))
    return torch.where(defined, scores, torch.full_like(scores, float("nan")))


def aggregate(per_sequence: torch.Tensor, probe: ProbeBatch, how: str) -> torch.Tensor:
    """Average ``[layers, batch, heads]`` over sequences; ``min`` takes the worst repeat length's mean."""
    lengths = probe.info.get("length")
    if how == "min" and lengths is not None:
        means = [per_sequence[:, lengths == value].nanmean(1) for value in torch.unique(lengths)]
        return torch.stack(means).amin(0)
    return per_sequence.nanmean(1)


def score_attention_pattern(context: CheckContext) -> Scores:
    """The share of a head's attention that goes to the pattern's targets, on the probe.

    For each sequence: ``sum_{q in T} sum_k A[q, k] D[q, k] / sum_{q in T} sum_k A[q, k]``, where ``D`` marks
    the targets (previous token, earlier copies of the current token, the token after an earlier copy, BOS,
    or K back), ``T`` is the set of query rows that have at least one target, and ``exclude_bos`` /
    ``exclude_current_token`` drop those columns from ``A`` and ``D``. Averaged over sequences (``mean``), or
    the lowest of the per-repeat-length averages (``min``). TransformerLens's ``detect_head`` divides by every
    row instead, so its score is this one times ``|T| / rows``: a perfect induction head scores 1.0 here and
    under 0.5 there on ``[BOS] + R + R``. Where the rows with a target pay no attention outside the excluded
    positions (a head on its own token, scored with ``exclude_current_token``), the score is 0/0: NaN, with
    that reason; a tiny nonzero denominator gives the exact ratio (nothing is clamped).
    """
    return finish_attention_pattern(context, [step_attention_pattern(context)])


def step_attention_pattern(context: CheckContext) -> torch.Tensor:
    """One batch: per-sequence scores ``[layers, batch, heads]`` (see :func:`pattern_scores`)."""
    params: PatternParams = context.params
    probe = context.probe
    assert probe is not None and probe.tokens is not None
    refuse_ahead_on_causal(params.pattern, context.model)
    patterns = context.stacked(PATTERN_HOOK).float()
    targets = target_mask(params.pattern, probe.tokens.to(patterns.device), probe.bos)
    per_sequence = pattern_scores(
        patterns,
        targets,
        bos=probe.bos,
        exclude_bos=params.exclude_bos,
        exclude_current_token=params.exclude_current_token,
    )
    if params.relative_to == "chance":
        per_sequence = per_sequence / chance_scores(context.model, targets, probe.bos, params).to(per_sequence)
    return per_sequence.cpu()


def chance_scores(model: ModelView, targets: torch.Tensor, bos: bool, params: PatternParams) -> torch.Tensor:
    """``[1, batch, 1]``: the score of a head attending uniformly to every position its mask allows (causal:
    ``k <= q``; bidirectional: all), with the same targets and exclusions: the chance level of the pattern."""
    size = targets.shape[-1]
    causal = getattr(model.cfg, "attention_dir", "causal") != "bidirectional"
    allowed = torch.ones(size, size, device=targets.device)
    if causal:
        allowed = allowed.tril()
    uniform = (allowed / allowed.sum(-1, keepdim=True))[None, None, None]  # [1, 1, 1, q, k]
    return pattern_scores(
        uniform.expand(1, targets.shape[0], 1, size, size),
        targets,
        bos=bos,
        exclude_bos=params.exclude_bos,
        exclude_current_token=params.exclude_current_token,
    )


def chance_attention_pattern(context: CheckContext) -> float | None:
    """A head attending uniformly to every position it may attend to (causal: ``k <= q``), scored the same way
    on the same probe (exact; 1 with ``relative_to: chance``).

    Each sequence's uniform-attention share (:func:`chance_scores`), aggregated over sequences as the scores are
    (``mean`` or ``min``).
    """
    params: PatternParams = context.params
    probe = context.full_probe or context.probe
    if params.relative_to == "chance":
        return 1.0
    if probe is None or probe.tokens is None:
        return None
    refuse_ahead_on_causal(params.pattern, context.model)
    tokens = probe.tokens.cpu()
    rows = max(1, 2**24 // max(1, tokens.shape[-1] ** 2))  # sequences at a time: [rows, q, k] stays small
    per_sequence = torch.cat(
        [
            chance_scores(context.model, target_mask(params.pattern, part, probe.bos), probe.bos, params)
            for part in tokens.split(rows)
        ],
        dim=1,
    )
    value = float(aggregate(per_sequence, probe, params.aggregate).flatten()[0])
    return None if math.isnan(value) else value


def refuse_ahead_on_causal(pattern: str, model: ModelView) -> None:
    """A target ahead of the query (``fixed_offset:K``, K < 0) cannot be attended under a causal mask."""
    match = _OFFSET.match(pattern)
    if match and int(match.group(1)) < 0 and getattr(model.cfg, "attention_dir", "causal") != "bidirectional":
        raise NotApplicable(
            f"'{pattern}' targets a position ahead of the query, and this model's attention is causal "
            "(a head cannot attend ahead)"
        )


def finish_attention_pattern(context: CheckContext, partials: list[torch.Tensor]) -> Scores:
    """The whole probe: per-sequence scores aggregated over sequences (``mean`` or ``min``)."""
    params: PatternParams = context.params
    probe = context.probe
    assert probe is not None
    scores = Scores(aggregate(torch.cat(partials, dim=1), probe, params.aggregate))
    nan = torch.isnan(scores.values)
    if nan.any():
        units = context.model.unit_names()
        if probe_has_target(params, probe):
            reason = (
                f"0/0: on every query position with a '{params.pattern}' target the head pays no attention"
                " outside the excluded positions"
            )
        else:
            reason = f"no query position in the probe has a '{params.pattern}' target"
        scores.mark_undefined(nan, reason, units)
    return scores


def probe_has_target(params: PatternParams, probe: ProbeBatch) -> bool:
    """Whether some query position of the probe keeps a target after the exclusions (then a NaN score is 0/0)."""
    if probe.tokens is None:
        return False
    targets = target_mask(params.pattern, probe.tokens.cpu(), probe.bos)
    size = targets.shape[-1]
    keep = torch.ones(size, size, dtype=torch.bool)
    if params.exclude_bos and probe.bos:
        keep[:, 0] = False
    if params.exclude_current_token:
        keep.fill_diagonal_(False)
    return bool((targets & keep).any())


def pattern_hooks(params: PatternParams, model: ModelView) -> list[str]:
    return [PATTERN_HOOK.format(layer) for layer in range(model.n_layers)]


@hookimpl
def defcheck_checkers() -> list[Checker]:
    return [
        Checker(
            "attention_pattern",
            "behavior",
            score_attention_pattern,
            summary="Share of attention on a target pattern, over query positions that have a target",
            source="Olsson et al. 2022 (prefix matching); TransformerLens head_detector, row convention fixed",
            params=PatternParams,
            probe="required",
            activations=pattern_hooks,
            streamed=Streamed(step_attention_pattern, finish_attention_pattern, sequence_axis=1),
            chance=chance_attention_pattern,
        )
    ]
