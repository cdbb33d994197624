"""Behavior on text: the in-context learning score, and what mean-ablating each head does to the loss.

Olsson et al. (2022) define the in-context learning score as the loss at a late token minus the loss at an early
token (negative: the model predicts better with more context), and measure each head's part in it by ablation.
``in_context_learning`` is the model's score (behavior: the model's outputs only). ``ablation_loss`` changes the
model (a head's output replaced by its mean over the probe) and reads the loss: an intervention on the unit, so
it observes mechanism by the project's rule (docs/writing-definitions.md, "Which kind a checker observes").
"""

from __future__ import annotations

from typing import Any, Literal

from defcheck_plugins.applicability import refuse_untrained
from defcheck_plugins.circuits import refuse_different_vocabularies
from pydantic import BaseModel, ConfigDict, Field

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import CheckContext, Checker, DefcheckError, ModelView, NotApplicable, ProbeBatch, Scores, hookimpl

Z_HOOK = "blocks.{}.attn.hook_z"
OUTPUT_PARTS = ("unembed", "ln_final")
# Sequences per ablated forward pass (units x sequences): bounds the memory of the batched ablations.
ROWS_PER_PASS = 256


class ICLParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    early: int = Field(10, ge=1, description="The early token (position of the predicted token).")
    late: int = Field(-1, description="The late token; negative counts from the end (-1: the last).")
    window: int = Field(5, ge=1, description="Positions averaged, ending at each of the two tokens.")


class AblationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: Literal["loss", "icl", "second_copy", "specific"] = Field(
        "specific",
        description="What rises when the head is mean-ablated: 'loss' (every position), 'icl' (the in-context "
        "learning score, early/late/window as in_context_learning), 'second_copy' (the loss on the repeated "
        "copies of a repeated probe), 'specific' (that rise minus the first copy's rise).",
    )
    early: int = Field(10, ge=1, description="For measure: icl, the early token (as in_context_learning).")
    late: int = Field(-1, description="For measure: icl, the late token; negative counts from the end.")
    window: int = Field(5, ge=1, description="For measure: icl, positions averaged at each of the two tokens.")


# -- losses ------------------------------------------------------------------------------------------------


def token_losses(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``[batch, pos]``: the loss of predicting the token at each position (NaN at position 0, never predicted)."""
    logprobs = logits[:, :-1].float().log_softmax(-1)
    picked = -logprobs.gather(-1, tokens[:, 1:, None].to(logits.device)).squeeze(-1)
    return torch.cat([torch.full_like(picked[:, :1], float("nan")), picked], dim=1).cpu()


def window_mask(size: int, position: int, window: int, what: str) -> torch.Tensor:
    """``[size]``: the ``window`` positions ending at ``position`` (negative: from the end)."""
    end = position if position >= 0 else size + position
    if not 1 <= end < size:
        raise NotApplicable(f"the {what} token {position} is outside the probe's predicted positions 1..{size - 1}")
    index = torch.arange(size)
    return (index <= end) & (index > max(end - window, 0))


def icl_score(losses: torch.Tensor, early: int, late: int, window: int) -> torch.Tensor:
    """Loss at the late token minus loss at the early token, averaged over sequences (``losses``: ``[..., b, pos]``)."""
    size = losses.shape[-1]
    early_mask, late_mask = window_mask(size, early, window, "early"), window_mask(size, late, window, "late")
    if bool((early_mask & late_mask).any()) or not bool(early_mask.nonzero().max() < late_mask.nonzero().min()):
        raise NotApplicable(f"the early token {early} is not before the late token {late} on this probe")
    return losses[..., late_mask].mean((-1, -2)) - losses[..., early_mask].mean((-1, -2))


def copy_masks(probe: ProbeBatch, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[b, pos]`` masks of the predicted tokens in the first copy (after its first token) and in the later
    copies (after the second copy's first token) of a repeated probe (``info['length']``, ``params.repeats``)."""
    lengths = probe.info.get("length")
    if lengths is None or probe.tokens is None:
        raise NotApplicable(f"the probe '{probe.name}' is not a repeated probe (no segment lengths in it)")
    repeats = int(probe.params.get("repeats", 2))
    lengths = lengths[:, None]
    starts = size - lengths * repeats
    index = torch.arange(size)[None, :]
    first = (index > starts) & (index < starts + lengths)
    later = index > starts + lengths
    return first, later


def measured(losses: torch.Tensor, probe: ProbeBatch, params: Any) -> torch.Tensor:
    """The quantity ``params.measure`` names, from per-token ``losses`` ``[..., b, pos]``."""
    if params.measure == "loss":
        return losses[..., 1:].mean((-1, -2))
    if params.measure == "icl":
        return icl_score(losses, params.early, params.late, params.window)
    first, later = copy_masks(probe, losses.shape[-1])
    second_loss = (losses * later).nansum((-1, -2)) / later.sum()
    if params.measure == "second_copy":
        return second_loss
    return second_loss - (losses * first).nansum((-1, -2)) / first.sum()


# -- the checkers ------------------------------------------------------------------------------------------


def _transformer(context: CheckContext) -> tuple[ModelView, ProbeBatch]:
    model, probe = context.model, context.probe
    if not isinstance(model, ModelView) or probe is None or probe.tokens is None:
        raise NotApplicable("needs a transformer and a probe of token sequences")
    refuse_untrained(model, OUTPUT_PARTS, "the loss")
    refuse_different_vocabularies(model, "the loss (the next input token read as an output id)")
    return model, probe


def score_in_context_learning(context: CheckContext) -> Scores:
    """Per model: mean loss at the late token minus mean loss at the early token on the probe."""
    model, probe = _transformer(context)
    params: ICLParams = context.params
    tokens = probe.tokens
    assert tokens is not None
    logits = context.logits if context.logits is not None else model.run(tokens)[0]
    losses = token_losses(logits, tokens)
    value = icl_score(losses, params.early, params.late, params.window)
    return Scores(value.reshape(1).expand(context.shape).clone())


def mean_outputs(context: CheckContext, model: ModelView) -> list[torch.Tensor]:
    """Per layer, each head's ``hook_z`` averaged over the probe's sequences and positions: ``[heads, d_head]``."""
    return [context.activation(Z_HOOK.format(layer)).float().mean((0, 1)) for layer in range(model.n_layers)]


def ablated_losses(model: ModelView, tokens: torch.Tensor, means: list[torch.Tensor]) -> torch.Tensor:
    """``[layers, heads, b, pos]``: per-token losses with each head in turn mean-ablated.

    Every head is ablated in the same batched passes: the probe is repeated once per head of a chunk, and a hook
    per layer replaces, in each copy, the z of that copy's head by its mean (a mask over copies and heads).
    """
    layers, heads = model.n_layers, model.n_heads
    units = torch.cartesian_prod(torch.arange(layers), torch.arange(heads))  # [U, 2] in layer-major order
    count = tokens.shape[0]
    per_pass = max(1, ROWS_PER_PASS // max(count, 1))
    parts = []
    for start in range(0, units.shape[0], per_pass):
        chunk = units[start : start + per_pass]
        copies = chunk.shape[0]
        hooks = []
        for layer in range(layers):
            mask = torch.zeros(copies, heads, dtype=torch.bool)
            rows = chunk[:, 0] == layer
            if not bool(rows.any()):
                continue
            mask[rows.nonzero().squeeze(1), chunk[rows, 1]] = True
            hooks.append((Z_HOOK.format(layer), _replace(mask, means[layer], count)))
        logits = model.run_with_hooks(tokens.repeat(copies, 1), hooks)
        parts.append(token_losses(logits, tokens.repeat(copies, 1)).view(copies, count, -1))
    return torch.cat(parts).view(layers, heads, count, -1)


def _replace(mask: torch.Tensor, mean: torch.Tensor, count: int) -> Any:
    def hook(z: torch.Tensor, hook: Any) -> torch.Tensor:
        copies = mask.shape[0]
        shaped = z.view(copies, count, *z.shape[1:])  # [copies, b, pos, heads, d_head]
        where = mask.to(z.device)[:, None, None, :, None]
        return torch.where(where, mean.to(z.dtype).to(z.device)[None, None, None], shaped).view(z.shape)

    return hook


def score_ablation_loss(context: CheckContext) -> Scores:
    """Per head: the rise of the measured loss when the head's output is replaced by its mean over the probe."""
    model, probe = _transformer(context)
    params: AblationParams = context.params
    tokens = probe.tokens
    assert tokens is not None
    clean_logits = context.logits if context.logits is not None else model.run(tokens)[0]
    clean = measured(token_losses(clean_logits, tokens), probe, params)
    ablated = measured(ablated_losses(model, tokens, mean_outputs(context, model)), probe, params)
    if not torch.isfinite(clean):
        raise DefcheckError(f"the clean {params.measure} loss is not finite on the probe '{probe.name}'")
    return Scores(ablated - clean)


def chance_in_context_learning(context: CheckContext) -> float:
    """0: a model that makes no use of the context predicts the late token as well as the early one."""
    return 0.0


def chance_ablation_loss(context: CheckContext) -> float:
    """0: mean-ablating a head whose output nothing downstream reads leaves every loss (and so each measure) as
    it was."""
    return 0.0


def z_hooks(params: Any, model: ModelView) -> list[str]:
    return [Z_HOOK.format(layer) for layer in range(model.n_layers)]


@hookimpl
def defcheck_checkers() -> list[Checker]:
    return [
        Checker(
            "in_context_learning",
            "behavior",
            score_in_context_learning,
            unit="model",
            summary="The model's in-context learning score: loss at a late token minus loss at an early token "
            "(negative: it predicts better with more context)",
            source="Olsson et al. 2022, In-context Learning and Induction Heads (the in-context learning score)",
            params=ICLParams,
            probe="required",
            chance=chance_in_context_learning,
        ),
        Checker(
            "ablation_loss",
            "mechanism",
            score_ablation_loss,
            summary="Rise of the loss (all tokens, the in-context learning score, or the repeated copy's loss) "
            "when a head's output is mean-ablated",
            source="Olsson et al. 2022, In-context Learning and Induction Heads (ablations of heads, per-token loss)",
            params=AblationParams,
            probe="required",
            activations=z_hooks,
            chance=chance_ablation_loss,
        ),
    ]
