"""A bootstrap over the probes' sequences (``--bootstrap B``): how far each score, membership and Jaccard would
move if the probe's sequences were drawn again, estimated from one run, without another forward pass.

A streamed checker that declares ``Streamed(sequence_axis=...)`` leaves per-sequence partials; each of ``B``
replicates draws a probe's sequences with replacement (the same draw for every criterion on that probe, drawn
from the run's seed and the probe's identity, so the result is deterministic; within each repeat length where
the probe records one per sequence, as a seed draws a fixed number per length), cuts the partials to that draw and
calls the checker's ``finish`` on it with the drawn probe. Criteria that cannot be resampled keep their scores in
every replicate and are named (``fixed``): weights-only criteria (their score has no sampling noise), and checkers
whose partials are not per sequence. ``with:`` targets keep the run's members (the resample is conditional on
them), and a ``prepare`` pass's statistics are those of the whole probe.

From the replicates: each criterion's standard error per unit (the replicates' standard deviation), which the
report's margins use when the run has one probe seed, and each concept's percentile interval of the union
Jaccard (:data:`LEVEL`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from defcheck.engine.narrative import count_of
from defcheck.engine.probe_data import hashed_generator
from defcheck.engine.results import DefinitionResult, RunResult, definition_status
from defcheck.engine.scores import Scores

if TYPE_CHECKING:
    from defcheck.engine.criterion_tasks import Resample
    from defcheck.engine.guard import CheckerGuard
    from defcheck.engine.overlap import ConceptOverlap

DEFAULT_REPLICATES = 200  # what docs recommend: the 2.5% and 97.5% percentiles of 200 replicates move by ~0.01
MAX_REPLICATES = 10_000
LEVEL = 0.95
WEIGHTS_ONLY = "weights only"  # why a criterion without a probe is kept: it has no sampling noise


@dataclass
class Bootstrap:
    """The replicates of one run: per definition, each criterion's scores ``[B, units]`` (flat; ``None`` where
    fixed, with the reason in ``fixed``) and the members ``[B, units]`` of each definition that was evaluated."""

    replicates: int
    scores: dict[str, list[torch.Tensor | None]] = field(default_factory=dict)
    fixed: dict[str, list[str | None]] = field(default_factory=dict)
    members: dict[str, torch.Tensor] = field(default_factory=dict)


def resample_run(run: RunResult, replicates: int, guard: CheckerGuard) -> Bootstrap:
    """``replicates`` resamples of every probe's sequences in ``run``, each criterion rescored on them."""
    draws: dict[str, torch.Tensor] = {}
    done: dict[int, torch.Tensor | str] = {}  # id(resample) -> replicates, or why they failed (shared computations)
    out = Bootstrap(replicates)
    for definition_id, result in run.definitions.items():
        if definition_status(result)[0] != "ok":
            continue
        values: list[torch.Tensor | None] = []
        reasons: list[str | None] = []
        for criterion in result.criteria:
            resample = criterion.resample
            if resample is None:
                values.append(None)
                reasons.append(WEIGHTS_ONLY if criterion.probe is None else "its partials are not per sequence")
                continue
            if id(resample) not in done:
                key = criterion.probe or ""
                if key not in draws:
                    draws[key] = _draws(run.seed, key, _strata(resample), replicates)
                done[id(resample)] = _rescored(resample, draws[key], guard, criterion.checker)
            outcome = done[id(resample)]
            values.append(outcome if isinstance(outcome, torch.Tensor) else None)
            reasons.append(None if isinstance(outcome, torch.Tensor) else outcome)
        out.scores[definition_id], out.fixed[definition_id] = values, reasons
        out.members[definition_id] = _members(result, values, replicates)
    return out


def _strata(resample: Resample) -> torch.Tensor:
    """Each sequence's stratum: its repeat length where the probe records one per sequence (``info["length"]``:
    a probe draws a fixed number of sequences per length, and ``aggregate: min`` compares the lengths), else 0."""
    probe = resample.context.full_probe or resample.context.probe
    assert probe is not None and probe.tokens is not None
    count = int(probe.tokens.shape[0])
    lengths = probe.info.get("length")
    if isinstance(lengths, torch.Tensor) and lengths.dim() == 1 and lengths.shape[0] == count:
        return lengths.detach().cpu()
    return torch.zeros(count, dtype=torch.long)


def _draws(seed: int, key: str, strata: torch.Tensor, replicates: int) -> torch.Tensor:
    """``[replicates, sequences]`` row indices drawn with replacement within each stratum (so every replicate
    keeps the probe's number of sequences per stratum), from the run's seed and the probe's key."""
    generator = hashed_generator(f"bootstrap|{seed}|{key}")
    out = torch.empty(replicates, strata.shape[0], dtype=torch.long)
    for value in torch.unique(strata):  # a few repeat lengths at most
        rows = torch.nonzero(strata == value).flatten()
        out[:, rows] = rows[torch.randint(rows.numel(), (replicates, rows.numel()), generator=generator)]
    return out


def _rescored(resample: Resample, draws: torch.Tensor, guard: CheckerGuard, checker: str) -> torch.Tensor | str:
    """The criterion's flat scores in every replicate (float64), or why they could not be computed."""
    probe = resample.context.full_probe or resample.context.probe
    assert probe is not None
    try:
        whole = _joined(resample.partials, resample.axis)

        def replicate_all() -> torch.Tensor:
            rows = []
            for index in draws:
                drawn = probe.select(index)
                context = dataclasses.replace(resample.context, probe=drawn, full_probe=drawn, rows=None)
                scores = Scores.of(resample.finish(context, [_taken(whole, resample.axis, index)]))
                rows.append(scores.values.detach().flatten().to("cpu", torch.float64))
            return torch.stack(rows)

        return guard.call(checker, 0.0, replicate_all)
    except Exception as error:  # a resample the checker cannot score (no target left in it, say): fixed
        return f"a resample could not be scored ({type(error).__name__}: {error})"


def _joined(partials: list[Any], axis: int) -> Any:
    """The batches' partials as one partial over the whole probe (per-sequence tensors concatenated)."""
    first = partials[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(partials, dim=axis) if first.dim() > axis else first
    if isinstance(first, Mapping):
        return {name: _joined([part[name] for part in partials], axis) for name in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_joined([part[i] for part in partials], axis) for i in range(len(first)))
    return first


def _taken(partial: Any, axis: int, index: torch.Tensor) -> Any:
    """``partial`` cut to the sequences ``index`` (repeats included) along ``axis``."""
    if isinstance(partial, torch.Tensor):
        return partial.index_select(axis, index.to(partial.device)) if partial.dim() > axis else partial
    if isinstance(partial, Mapping):
        return {name: _taken(value, axis, index) for name, value in partial.items()}
    if isinstance(partial, (tuple, list)):
        return type(partial)(_taken(value, axis, index) for value in partial)
    return partial


def _members(result: DefinitionResult, values: list[torch.Tensor | None], replicates: int) -> torch.Tensor:
    """``[B, units]``: the definition's members in each replicate (fixed criteria pass as in the run)."""
    masks = []
    for criterion, replicate in zip(result.criteria, values, strict=True):
        assert criterion.passed is not None and criterion.scores is not None
        if replicate is None:
            masks.append(criterion.passed.flatten()[None].expand(replicates, -1))
            continue
        shape = criterion.scores.values.shape
        masks.append(torch.stack([criterion.threshold.select(row.reshape(shape)).flatten() for row in replicate]))
    stacked = torch.stack(masks)
    return stacked.all(0) if result.combinator == "all" else stacked.any(0)


def standard_errors(boot: Bootstrap, definition_id: str, index: int) -> torch.Tensor | None:
    """A criterion's bootstrap standard error per unit (flat; NaN where undefined), ``None`` where fixed."""
    values = boot.scores.get(definition_id)
    if values is None or values[index] is None:
        return None
    replicate = values[index]
    assert replicate is not None
    finite = ~torch.isnan(replicate)
    count = finite.sum(0)
    mean = torch.where(finite, replicate, 0.0).sum(0) / count.clamp(min=1)
    spread = torch.where(finite, (replicate - mean) ** 2, 0.0).sum(0) / (count - 1).clamp(min=1)
    return torch.where(count >= 2, spread.sqrt(), torch.full_like(mean, float("nan")))


def _unions(boot: Bootstrap, behavioral: list[str], mechanistic: list[str]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Each kind's union of members ``[B, units]`` over the replicates, or ``None`` without both kinds."""
    if not behavioral or not mechanistic or any(d not in boot.members for d in [*behavioral, *mechanistic]):
        return None
    return (
        torch.stack([boot.members[d] for d in behavioral]).any(0),
        torch.stack([boot.members[d] for d in mechanistic]).any(0),
    )


def jaccard_interval(boot: Bootstrap, behavioral: list[str], mechanistic: list[str]) -> tuple[float, float] | None:
    """The :data:`LEVEL` percentile interval of the union Jaccard of the two kinds' definitions (ids), over the
    replicates where it is defined; ``None`` without replicates of both kinds or where it is never defined."""
    unions = _unions(boot, behavioral, mechanistic)
    if unions is None:
        return None
    b_union, m_union = unions
    together = (b_union | m_union).sum(1)
    values = ((b_union & m_union).sum(1) / together.clamp(min=1)).to(torch.float64)[together > 0]
    if values.numel() == 0:
        return None
    tail = (1 - LEVEL) / 2
    low, high = torch.quantile(values, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return low, high


def category_shares(
    boot: Bootstrap, behavioral: list[str], mechanistic: list[str], units: list[int], sides: list[tuple[bool, bool]]
) -> list[float]:
    """For each unit (flat index) with its run's category ``(behavioral, mechanistic)``, the share of replicates
    in which it has that category."""
    unions = _unions(boot, behavioral, mechanistic)
    if unions is None:
        return [1.0 for _ in units]
    b_union, m_union = unions
    return [
        float(((b_union[:, unit] == side[0]) & (m_union[:, unit] == side[1])).double().mean())
        for unit, side in zip(units, sides, strict=True)
    ]


def overlap_entry(run: RunResult, overlap: ConceptOverlap, names: list[str]) -> dict[str, Any]:
    """A concept's ``bootstrap`` in the report: the Jaccard's interval, the disagreements within noise (on one
    side only in fewer than :data:`LEVEL` of the replicates) and the criteria every replicate kept; the narrative
    of ``overlap`` says which disagreements are within noise (with one probe seed: ``--seeds`` says it otherwise)."""
    assert run.bootstrap is not None
    boot, concept = run.bootstrap, overlap.concept
    ids = {
        kind: [f"{concept}.{name}" for name in overlap.usable.get(kind, [])] for kind in ("behavioral", "mechanistic")
    }
    compared = overlap.union
    noisy: list[str] = []
    one_sided: list[tuple[str, tuple[bool, bool]]] = []
    if compared is not None:
        one_sided = [(unit, (True, False)) for unit in compared.behavioral_only]
        one_sided += [(unit, (False, True)) for unit in compared.mechanistic_only]
        index = {name: position for position, name in enumerate(names)}
        shares = category_shares(
            boot, ids["behavioral"], ids["mechanistic"], [index[u] for u, _ in one_sided], [s for _, s in one_sided]
        )
        noisy = [unit for (unit, _), share in zip(one_sided, shares, strict=True) if share < LEVEL]
    fixed = fixed_criteria(boot, [*ids["behavioral"], *ids["mechanistic"]], run)
    if compared is not None and run.stability is None and one_sided:
        sentence = _noise_sentence(noisy, len(one_sided), boot, overlap)
        unsampled = [entry.partition(" (")[0] for entry in fixed if not entry.endswith(f"({WEIGHTS_ONLY})")]
        if unsampled:  # their noise is not in the resamples: say so where the sentence could reassure
            sentence += f" Not resampled (their scores as in the run): {', '.join(unsampled)}."
        overlap.narrative = f"{overlap.narrative} {sentence}".strip()
    interval = jaccard_interval(boot, ids["behavioral"], ids["mechanistic"]) if compared is not None else None
    return {
        "replicates": boot.replicates,
        "level": LEVEL,
        "jaccard": list(interval) if interval is not None else None,
        "within_noise": noisy,
        "fixed": fixed,
    }


def _noise_sentence(noisy: list[str], count: int, boot: Bootstrap, overlap: ConceptOverlap) -> str:
    resamples = f"{boot.replicates} resamples of the probes' sequences"
    if not noisy:
        return f"Every {overlap.nouns[0]} on one side only stays there in at least {LEVEL:.0%} of {resamples}."
    many = count_of(len(noisy), overlap.nouns)
    verb = "is" if len(noisy) == 1 else "are"
    firm = count - len(noisy)
    rest = f"; the other {firm} {'is' if firm == 1 else 'are'} not" if firm else ""
    return f"{many} on one side only {verb} within noise (another category in over 5% of {resamples}): " + (
        f"{', '.join(noisy)}{rest}."
    )


def fixed_criteria(boot: Bootstrap, definition_ids: list[str], run: RunResult) -> list[str]:
    """``definition.checker (why)`` for each criterion of those definitions that every replicate kept fixed."""
    out = []
    for definition_id in definition_ids:
        name = definition_id.partition(".")[2]
        for criterion, reason in zip(
            run.definitions[definition_id].criteria, boot.fixed.get(definition_id, []), strict=False
        ):
            if reason is not None:
                out.append(f"{name}.{criterion.checker} ({reason})")
    return out
