"""Built-in successor-head checkers (Gould et al. 2023): a head whose OV circuit maps an ordinal token
(1, Monday, January, A) to its successor (2, Tuesday, February, B).

Both checkers need ordinal tokens in the model's vocabulary, found through its tokenizer; for a model
without a tokenizer or without such tokens they say "not applicable" instead of a number.
"""

from __future__ import annotations

from typing import Any

from defcheck_plugins.applicability import refuse_untrained
from defcheck_plugins.circuits import head_weight, refuse_different_vocabularies
from pydantic import BaseModel, ConfigDict, Field

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import (
    CheckContext,
    Checker,
    ModelView,
    NotApplicable,
    Probe,
    ProbeBatch,
    ProbeRequest,
    Scores,
    Streamed,
    hookimpl,
    probe_generator,
)

SEQUENCES: dict[str, list[str]] = {
    "numbers": [str(i) for i in range(1, 101)],
    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "months": [
        *("January", "February", "March", "April", "May", "June"),
        *("July", "August", "September", "October", "November", "December"),
    ],
    "letters": [chr(c) for c in range(ord("A"), ord("Z") + 1)],
    "ordinals": ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"],
}
MIN_RUN = 4


def _single_token(tokenizer: Any, text: str) -> int | None:
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tokenizer.encode(text)
    return int(ids[0]) if len(ids) == 1 else None


def ordinal_groups(tokenizer: Any) -> list[list[int]]:
    """Runs of consecutive ordinal words that are single tokens (with and without a leading space)."""
    if tokenizer is None:
        raise NotApplicable("the model has no tokenizer, so its ordinal tokens (1 2 3, Monday Tuesday) are unknown")
    groups: list[list[int]] = []
    for words in SEQUENCES.values():
        for prefix in ("", " "):
            run: list[int] = []
            for word in [*words, None]:
                token = _single_token(tokenizer, prefix + word) if word is not None else None
                if token is not None and token not in run:
                    run.append(token)
                    continue
                if len(run) >= MIN_RUN:
                    groups.append(run)
                run = []
    if not groups:
        raise NotApplicable("the model's vocabulary has no run of ordinal tokens (1 2 3, Monday Tuesday, ...)")
    return groups


def _unembedding(view: ModelView) -> torch.Tensor:
    w_u = view.weight("W_U")
    ln = view.ln_weight(None)
    return w_u if ln is None else ln[:, None] * w_u


class SuccessorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def score_ov_successor(context: CheckContext) -> Scores:
    """Share of ordinal tokens whose OV-circuit logits, among their own sequence, are highest on the successor.

    For each group ``g`` and head: ``M = W_E[g] W_V W_O W_U[:, g]`` (LayerNorm weights folded); a token
    ``g[i]`` with a successor counts when ``argmax_j M[i, j] == i + 1`` (Gould et al. 2023, "succession
    score", without their MLP0 effective embedding).
    """
    view = context.model
    refuse_untrained(view, ("unembed", "ln_final"), "the OV successor map W_E[g] W_V W_O W_U[:, g]")
    refuse_different_vocabularies(view, "the OV successor map W_E[g] W_V W_O W_U[:, g]")
    groups = ordinal_groups(getattr(view.model, "tokenizer", None))
    # each head's own K/V group (GQA) and the norm that feeds its layer (pre- or post-LN) folded in
    w_v = head_weight(view, "W_V", view.weight("W_V").dtype)
    ov = torch.einsum("lhmd,lhdn->lhmn", w_v, view.weight("W_O"))
    unembed = _unembedding(view)
    hits = torch.zeros(view.n_layers, view.n_heads)
    total = 0
    for ids in groups:
        index = torch.tensor(ids)
        circuit = torch.einsum("gm,lhmn,nk->lhgk", view.weight("W_E")[index], ov, unembed[:, index])
        best = circuit[..., :-1, :].argmax(-1)  # tokens that have a successor
        hits += (best == torch.arange(1, len(ids))).float().sum(-1)
        total += len(ids) - 1
    return Scores(hits / total)


class OrdinalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int = Field(32, ge=1, description="Sequences.")
    length: int = Field(6, ge=2, description="Tokens per sequence: a run of consecutive ordinal tokens.")


def build_ordinal(request: ProbeRequest) -> ProbeBatch:
    """Runs of consecutive ordinal tokens (``3 4 5 6``), each from one sequence, at random starts."""
    params: OrdinalParams = request.params
    if request.n_ctx and params.length > request.n_ctx:  # fit policy not_applicable: a run is not cut
        raise NotApplicable(
            f"ordinal_sequences: length {params.length} needs {params.length} tokens; the model's context is "
            f"{request.n_ctx}"
        )
    groups = [g for g in ordinal_groups(request.tokenizer) if len(g) > params.length]
    if not groups:
        raise NotApplicable(f"no run of more than {params.length} ordinal tokens in the vocabulary")
    generator = probe_generator(request.seed, "ordinal_sequences", params.model_dump())
    choice = torch.randint(0, len(groups), (params.n,), generator=generator)
    rows, successors = [], []
    for group_index in choice.tolist():
        group = groups[group_index]
        start = int(torch.randint(0, len(group) - params.length, (1,), generator=generator))
        rows.append(group[start : start + params.length])
        successors.append(group[start + 1 : start + params.length + 1])
    members = sorted({token for g in groups for token in g})
    return ProbeBatch(
        "ordinal_sequences",
        {},
        torch.tensor(rows),
        info={"successor": torch.tensor(successors), "group": choice, "groups": groups, "ordinal_ids": members},
    )


def score_successor_logits(context: CheckContext) -> Scores:
    """Share of positions where the head's direct logit effect, among the sequence's ordinal tokens, is highest
    on the successor of the current token (a behavioral counterpart of :func:`score_ov_successor`)."""
    return finish_successor_logits(context, [step_successor_logits(context)])


def step_successor_logits(context: CheckContext) -> torch.Tensor:
    """One batch: per-sequence shares ``[L, b, H]``."""
    view, probe = context.model, context.probe
    _refuse_logits(view)
    assert probe is not None
    groups: list[list[int]] = probe.info["groups"]
    union = torch.tensor(probe.info["ordinal_ids"])
    allowed = torch.zeros(len(groups), union.numel(), dtype=torch.bool)
    for index, group in enumerate(groups):
        allowed[index] = torch.isin(union, torch.tensor(group))
    z = context.stacked("blocks.{}.attn.hook_z")  # [L, b, q, H, d_head]
    out = torch.einsum("lbqhd,lhdm->lbqhm", z, view.weight("W_O"))
    scale = context.activations.get("ln_final.hook_scale")
    if scale is not None:
        out = out / scale[None, :, :, None]
    effect = out @ _unembedding(view)[:, union]  # [L, b, q, H, |union|]
    mask = allowed[probe.info["group"]][None, :, None, None, :]
    best = union[effect.masked_fill(~mask, float("-inf")).argmax(-1)]  # [L, b, q, H]
    hits = best == probe.info["successor"][None, :, :, None]
    return hits.float().mean(dim=2)  # [L, b, H]


def finish_successor_logits(context: CheckContext, partials: list[torch.Tensor]) -> Scores:
    """The whole probe: per-sequence shares averaged over sequences."""
    return Scores(torch.cat(partials, dim=1).mean(1))


def chance_ov_successor(context: CheckContext) -> float:
    """A head whose OV logits over a group are unrelated to the tokens (a random argmax) picks the successor of
    a token in a group of ``n`` with probability ``1/n``: the mean of ``1/n`` over the scored tokens (exact)."""
    groups = ordinal_groups(getattr(context.model.model, "tokenizer", None))
    counted = sum(len(group) - 1 for group in groups)
    if not counted:
        raise NotApplicable("no ordinal group with a successor")
    return sum((len(group) - 1) / len(group) for group in groups) / counted


def chance_successor_logits(context: CheckContext) -> float | None:
    """A head whose logit effect is unrelated to the tokens (a random argmax among the sequence's ``n`` group
    tokens) favors the successor with probability ``1/n``: the mean of ``1/n`` over the probe's sequences
    (exact)."""
    probe = context.full_probe or context.probe
    if probe is None or "groups" not in probe.info:
        return None
    sizes = [len(probe.info["groups"][int(index)]) for index in probe.info["group"].tolist()]
    return sum(1 / size for size in sizes) / len(sizes) if sizes else None


def _refuse_logits(view: ModelView) -> None:
    """successor_logits reads the logits of input ids: not applicable without a trained unembedding and final norm
    or where the output vocabulary is another space (Tracr)."""
    refuse_untrained(view, ("unembed", "ln_final"), "successor_logits (a head's direct effect on the logits)")
    refuse_different_vocabularies(view, "successor_logits (the logit of the next ordinal token)")


def _hooks(params: BaseModel, view: ModelView) -> list[str]:
    _refuse_logits(view)  # before the forward pass
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(view.n_layers)]
    return names + (["ln_final.hook_scale"] if view.normalization else [])


@hookimpl
def defcheck_checkers() -> list[Checker]:
    return [
        Checker(
            "ov_successor",
            "mechanism",
            score_ov_successor,
            summary="Share of ordinal tokens the OV circuit maps to their successor",
            source="Gould et al. 2023, Successor Heads",
            params=SuccessorParams,
            chance=chance_ov_successor,
        ),
        Checker(
            "successor_logits",
            "behavior",
            score_successor_logits,
            summary="Share of positions where the head's logit effect favors the next ordinal token",
            source="Gould et al. 2023, Successor Heads",
            params=SuccessorParams,
            probe="required",
            activations=_hooks,
            streamed=Streamed(step_successor_logits, finish_successor_logits, sequence_axis=1),
            chance=chance_successor_logits,
        ),
    ]


@hookimpl
def defcheck_probes() -> list[Probe]:
    return [Probe("ordinal_sequences", build_ordinal, OrdinalParams, "Runs of consecutive ordinal tokens")]
