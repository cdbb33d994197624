"""Stability across probe seeds (``--seeds K``): every probe drawn under the seeds ``seed, seed + 1, ...,
seed + K - 1`` (modulo 2**32), and what changes between them.

:func:`evaluate_seeds` evaluates the selection once per seed. The first seed's run is the report's (its scores,
members and overlap are those of a plain run with that seed); the others are kept in ``RunResult.stability``
(:class:`SeedRuns`). Criteria without a probe (scored from the weights) do not depend on the probe seed: they are
computed once, in the first run, and reused (unless their ``with:`` targets' members depend on a probe). Each
probe is built and run through the model once per seed (its forward passes are not merged across seeds: on the
CPU a merged pass was not faster, docs/performance.md). With ``bootstrap``, the first run's probes' sequences
are also resampled (:mod:`defcheck.engine.bootstrap`).

From the runs: each definition's **share** of seeds in which a unit is a member (a unit with a share strictly
between 0 and 1 is **unstable**), each criterion's **spread** (its standard deviation per unit across the seeds;
with one seed, its bootstrap standard error) and **margin** per unit (the first seed's score minus the threshold,
in units of that spread, positive on the passing side; ``None`` where the score did not vary (beyond rounding) or
is undefined, and for rank thresholds), and per concept the spread of the union Jaccard across seeds with the
disagreements (units on one side only) split into stable and unstable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from defcheck.engine.bootstrap import MAX_REPLICATES, resample_run, standard_errors
from defcheck.engine.narrative import count_of
from defcheck.engine.results import RunResult, definition_status
from defcheck.language.thresholds import Comparison

if TYPE_CHECKING:
    from defcheck.engine.criterion_tasks import Computed, Task
    from defcheck.engine.overlap import ConceptOverlap
    from defcheck.engine.runner import Progress
    from defcheck.hooks.manager import Extensions
    from defcheck.language.registry import Registry

MAX_SEEDS = 1000
NOISE_FLOOR = 1e-6  # a seed-to-seed sd below this share of the score's size is rounding, not noise: no margin


@dataclass
class SeedRuns:
    """The runs of the seeds after the first (``seeds[0]`` is the report's own run)."""

    seeds: list[int]
    runs: list[RunResult] = field(default_factory=list)


def evaluate_seeds(
    model: Any,
    registry: Registry,
    extensions: Extensions,
    *,
    seed: int = 0,
    seeds: int = 1,
    bootstrap: int = 0,
    batch_size: int | None = None,
    definitions: Sequence[str] | None = None,
    progress: Progress | None = None,
    checker_timeout: float | None = None,
) -> RunResult:
    """The run of ``seed``, with the runs of ``seed + 1 ... seed + seeds - 1`` (modulo 2**32) in its
    ``stability`` (none for ``seeds == 1``: then this is :func:`~defcheck.engine.runner.evaluate`), and
    ``bootstrap`` resamples of the first run's probes' sequences in its ``bootstrap``
    (:mod:`defcheck.engine.bootstrap`; none for 0)."""
    from defcheck.diagnostics import DefcheckError
    from defcheck.engine import runner
    from defcheck.engine.guard import CheckerGuard
    from defcheck.engine.scheduling import selected
    from defcheck.hooks.containment import plugin_code

    if not 1 <= seeds <= MAX_SEEDS:
        raise DefcheckError(f"seeds must be from 1 to {MAX_SEEDS}, not {seeds}")
    if not 0 <= bootstrap <= MAX_REPLICATES:
        raise DefcheckError(f"bootstrap must be from 0 to {MAX_REPLICATES}, not {bootstrap}")
    if registry.errors:
        raise DefcheckError("the definitions have errors; run `defcheck validate` first")
    order = selected(registry, definitions)
    results: list[RunResult] = []
    weights_only: dict[str, Computed] = {}
    guard = CheckerGuard(model, checker_timeout)  # the weights are copied once, not once per seed
    with plugin_code():
        for k in range(seeds):
            state = runner._Run(  # the runner's own state, given the weights-only results
                model,
                registry,
                extensions,
                order,
                (seed + k) % 2**32,
                batch_size,
                _progress(progress, k, seeds),
                checker_timeout,
                guard,
            )
            state.computed.update(weights_only)
            results.append(state.evaluate())
            if k == 0:
                if bootstrap:
                    started = time.perf_counter()
                    results[0].bootstrap = resample_run(results[0], bootstrap, guard)
                    results[0].timings[f"bootstrap ({bootstrap} resamples)"] = time.perf_counter() - started
                unseeded = _unseeded(state.tasks)
                weights_only = {key: value for key, value in state.computed.items() if key in unseeded}
    primary = results[0]
    if seeds > 1:
        for other in results[1:]:
            other.probes = {}  # only the first run's probes are reported
            for step, seconds in other.timings.items():  # --profile: the time of every seed
                primary.timings[step] = primary.timings.get(step, 0.0) + seconds
        primary.stability = SeedRuns([(seed + k) % 2**32 for k in range(seeds)], results[1:])
    return primary


def _unseeded(tasks: Mapping[str, Sequence[Task]]) -> set[str]:
    """The signatures of the computations that do not depend on the probe seed: no probe, and ``with:`` targets
    (if any) whose every criterion is such a computation too (``tasks`` in evaluation order, targets first)."""
    free: set[str] = set()  # definitions whose members have no seed
    out: set[str] = set()
    for definition_id, definition_tasks in tasks.items():
        unseeded = [task for task in definition_tasks if task.probe is None and set(task.related) <= free]
        out.update(task.signature for task in unseeded)
        if len(unseeded) == len(definition_tasks):
            free.add(definition_id)
    return out


def _progress(progress: Progress | None, k: int, count: int) -> Progress | None:
    """The progress of seed ``k`` of ``count``: its steps after the earlier seeds'."""
    if progress is None or count == 1:
        return progress
    report = progress

    def seeded(label: str, done: int, steps: int) -> None:
        report(f"{label} (seed {k + 1}/{count})", k * steps + done, count * steps)

    return seeded


def _all_runs(run: RunResult) -> list[RunResult]:
    assert run.stability is not None
    return [run, *run.stability.runs]


def member_share(run: RunResult, definition_id: str) -> torch.Tensor | None:
    """The share of seeds in which each unit is a member (flat), or ``None`` where some seed did not evaluate
    the definition (it errored or does not apply)."""
    masks = []
    for result in _all_runs(run):
        definition = result.definitions.get(definition_id)
        if definition is None or definition_status(definition)[0] != "ok" or definition.members is None:
            return None
        masks.append(definition.members.flatten().to(torch.float64))
    return torch.stack(masks).mean(0)


def criterion_spread(run: RunResult, definition_id: str, index: int) -> torch.Tensor | None:
    """Criterion ``index``'s standard deviation per unit (flat; NaN where undefined): across the probe seeds
    (``--seeds K``), else the bootstrap standard error over sequences (``--bootstrap B``); ``None`` where the
    criterion has no probe (its score has no sampling noise), a seed has no scores, or it was not resampled."""
    criterion = run.definitions[definition_id].criteria[index]
    if criterion.probe is None or criterion.scores is None or criterion.scores.not_applicable:
        return None
    if run.stability is None:
        return None if run.bootstrap is None else standard_errors(run.bootstrap, definition_id, index)
    values = []
    for result in _all_runs(run):
        scores = result.definitions[definition_id].criteria[index].scores
        if scores is None or scores.not_applicable:
            return None
        values.append(scores.values.flatten().to(torch.float64))
    return torch.stack(values).std(0, unbiased=True)


def criterion_margins(run: RunResult, definition_id: str, index: int) -> torch.Tensor | None:
    """Each unit's margin (flat; NaN where undefined or where the score did not vary beyond rounding) for
    criterion ``index``: the run's score minus the threshold in units of :func:`criterion_spread`, positive on
    the passing side; ``None`` for a rank threshold or where there is no spread."""
    criterion = run.definitions[definition_id].criteria[index]
    sd = criterion_spread(run, definition_id, index)
    if not isinstance(criterion.threshold, Comparison) or sd is None or criterion.scores is None:
        return None
    score = criterion.scores.values.flatten().to(torch.float64)
    sign = 1.0 if criterion.threshold.op in (">=", ">") else -1.0
    margin = sign * (score - criterion.threshold.value) / sd
    noise = NOISE_FLOOR * torch.clamp(score.abs(), min=max(1.0, abs(criterion.threshold.value)))
    return torch.where(sd > noise, margin, torch.full_like(margin, float("nan")))


def concept_stability(overlaps: Sequence[ConceptOverlap]) -> dict[str, Any] | None:
    """A concept's overlap across seeds (``overlaps[0]`` the report's): the union Jaccard's min, median and max,
    the units whose category (both, one side, neither) changes, and the first seed's disagreements split into
    stable and unstable; ``None`` when the kinds were not compared in every seed."""
    if any(overlap.union is None for overlap in overlaps):
        return None
    categories: dict[str, set[str]] = {}
    values = []
    for overlap in overlaps:
        compared = overlap.union
        assert compared is not None
        if compared.jaccard is not None:
            values.append(compared.jaccard)
        for category in ("both", "behavioral_only", "mechanistic_only"):
            for unit in getattr(compared, category):
                categories.setdefault(unit, set()).add(category)
    counts = {unit: sum(unit in _listed(o) for o in overlaps) for unit in categories}
    unstable = [u for u in categories if len(categories[u]) > 1 or counts[u] < len(overlaps)]
    first = overlaps[0].union
    assert first is not None
    disagreements = [*first.behavioral_only, *first.mechanistic_only]
    return {
        "seeds": len(overlaps),
        "jaccard": {
            "min": min(values) if values else None,
            "median": statistics.median(values) if values else None,
            "max": max(values) if values else None,
        },
        "unstable": sorted(unstable, key=_order(overlaps[0])),
        "stable_disagreements": [u for u in disagreements if u not in unstable],
        "unstable_disagreements": [u for u in disagreements if u in unstable],
    }


def _listed(overlap: ConceptOverlap) -> set[str]:
    compared = overlap.union
    assert compared is not None
    return {*compared.both, *compared.behavioral_only, *compared.mechanistic_only}


def _order(overlap: ConceptOverlap) -> Any:
    """Units in the first seed's listing order, then by address."""
    compared = overlap.union
    assert compared is not None
    listed = [*compared.both, *compared.behavioral_only, *compared.mechanistic_only]
    return lambda unit: (listed.index(unit) if unit in listed else len(listed), unit)


def noise_sentence(stability: dict[str, Any], nouns: tuple[str, str]) -> str:
    """The narrative's sentence on which disagreements between the kinds are within noise."""
    stable, unstable = stability["stable_disagreements"], stability["unstable_disagreements"]
    seeds = stability["seeds"]
    if not stable and not unstable:
        changing = stability["unstable"]
        if not changing:
            return f"Every {nouns[0]}'s category is the same in all {seeds} probe seeds."
        verb = "changes" if len(changing) == 1 else "change"
        changed = count_of(len(changing), nouns)
        return f"{changed} {verb} category between the {seeds} probe seeds: {', '.join(changing)}."
    parts = []
    if unstable:
        parts.append(
            f"{count_of(len(unstable), nouns)} on one side only {'is' if len(unstable) == 1 else 'are'} within noise "
            f"(membership changes between the {seeds} probe seeds): {', '.join(unstable)}"
        )
    if stable:
        parts.append(f"{count_of(len(stable), nouns)} on one side only in all {seeds} seeds: {', '.join(stable)}")
    return "; ".join(parts) + "."


# --- the report's entries (plain values; the report rounds them) ------------------------------------------------


def definition_entry(run: RunResult, definition_id: str, names: Sequence[str]) -> dict[str, Any] | None:
    """A definition's ``stability``: the share of seeds of every unit a member in some seed, and the unstable
    units (a share strictly between 0 and 1); ``None`` where some seed did not evaluate it."""
    share = member_share(run, definition_id)
    if share is None:
        return None
    values = share.tolist()
    return {
        "share": {name: value for name, value in zip(names, values, strict=True) if value > 0},
        "unstable": [name for name, value in zip(names, values, strict=True) if 0 < value < 1],
    }


def margins_entry(
    run: RunResult, definition_id: str, index: int, names: Sequence[str]
) -> dict[str, float | None] | None:
    """A criterion's ``margins`` by unit (NaN where undefined), or ``None`` (see :func:`criterion_margins`)."""
    return _by_unit(criterion_margins(run, definition_id, index), names)


def spread_entry(
    run: RunResult, definition_id: str, index: int, names: Sequence[str]
) -> dict[str, float | None] | None:
    """A criterion's ``sd`` by unit (NaN where undefined), or ``None`` (see :func:`criterion_spread`)."""
    return _by_unit(criterion_spread(run, definition_id, index), names)


def _by_unit(values: torch.Tensor | None, names: Sequence[str]) -> dict[str, float | None] | None:
    if values is None:
        return None
    listed: list[float | None] = values.tolist()  # NaN here; the report writes null
    return dict(zip(names, listed, strict=True))


def annotate(analysis: Mapping[str, ConceptOverlap], run: RunResult, registry: Registry | None) -> dict[str, Any]:
    """Each concept's overlap ``stability`` (:func:`concept_stability`, by concept), the narrative of each
    ``analysis`` entry extended with which disagreements are within noise."""
    from defcheck.engine.overlap import analyze

    assert run.stability is not None
    others = [analyze(other, registry) for other in run.stability.runs]
    out: dict[str, Any] = {}
    for concept, overlap in analysis.items():
        entry = concept_stability([overlap, *(other[concept] for other in others if concept in other)])
        out[concept] = entry
        if entry is not None:
            overlap.narrative = f"{overlap.narrative} {noise_sentence(entry, overlap.nouns)}".strip()
    return out
