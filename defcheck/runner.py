"""The runner: builds each distinct probe once, runs the model once per probe, scores every definition.

Definitions are evaluated in reference order (``with:`` targets first). A checker that raises marks its
definition as errored; every other definition still runs.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from defcheck.context import CheckContext
from defcheck.diagnostics import DefcheckError
from defcheck.extensions import Checker
from defcheck.models.view import ModelView, TokenSpace
from defcheck.plugins import Extensions
from defcheck.probes import ProbeBatch, ProbeRequest, probe_key
from defcheck.registry import Registry
from defcheck.schema import Criterion
from defcheck.scores import NotApplicable, Scores
from defcheck.thresholds import Threshold

Progress = Callable[[str, int, int], None]


@dataclass
class CriterionResult:
    """One criterion's scores over all units, which units passed, or the error that stopped it."""

    checker: str
    threshold: Threshold
    probe: str | None
    scores: Scores | None = None
    passed: torch.Tensor | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class DefinitionResult:
    """A definition evaluated on a model: its primary scores, members, and each criterion's result."""

    id: str
    kind: str
    combinator: str
    criteria: list[CriterionResult] = field(default_factory=list)
    members: torch.Tensor | None = None
    error: str | None = None

    @property
    def scores(self) -> Scores | None:
        """The primary score: that of the first criterion."""
        return self.criteria[0].scores if self.criteria else None


@dataclass
class RunResult:
    """Every definition's result on one model, in evaluation order, plus timings."""

    model: ModelView
    seed: int
    definitions: dict[str, DefinitionResult]
    probes: dict[str, ProbeBatch]
    timings: dict[str, float] = field(default_factory=dict)


def _validated(model_type: Any, values: dict[str, Any]) -> Any:
    return model_type.model_validate(values)


def _probe_params(extensions: Extensions, criterion: Criterion) -> tuple[str, dict[str, Any]] | None:
    if criterion.probe is None:
        return None
    probe = extensions.probes[criterion.probe.name]
    params = _validated(probe.params, criterion.probe.params).model_dump(mode="json")
    return probe_key(probe.name, params), params


def evaluate(
    model: ModelView,
    registry: Registry,
    extensions: Extensions,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    definitions: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Evaluate the registry's definitions (or the ``definitions`` ids and what they refer to) on ``model``."""
    if registry.errors:
        raise DefcheckError("the definitions have errors; run `defcheck validate` first")
    order = _selected(registry, definitions)
    timings: dict[str, float] = {}
    plan: dict[str, tuple[str, dict[str, Any], set[str]]] = {}
    for definition_id in order:
        _, definition = registry.definition(definition_id)
        for criterion in definition.criteria:
            keyed = _probe_params(extensions, criterion)
            if keyed is None:
                continue
            key, params = keyed
            checker = extensions.checkers[criterion.checker]
            names = set(_activations(checker, criterion, model))
            if key in plan:
                plan[key][2].update(names)
            else:
                plan[key] = (criterion.probe.name, params, names)  # type: ignore[union-attr]
    probes: dict[str, ProbeBatch] = {}
    runs: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]] | Exception] = {}
    steps = len(plan) + len(order)
    done = 0
    for key, (name, params, names) in plan.items():
        started = time.perf_counter()
        try:
            probe = extensions.probes[name]
            request = ProbeRequest(
                _validated(probe.params, params),
                _token_space(model),
                seed,
                model.n_ctx,
                getattr(model.model, "tokenizer", None),
            )
            batch = probe.build(request)
            batch.params = params
            probes[key] = batch
            runs[key] = model.run(batch.tokens, sorted(names), batch_size)
        except NotApplicable as reason:
            runs[key] = reason
        except Exception as error:
            runs[key] = DefcheckError(f"probe {key} failed: {_describe(error)}")
        timings[f"probe {key}"] = time.perf_counter() - started
        done += 1
        if progress:
            progress(f"probe {name}", done, steps)
    memo: dict[str, Any] = {}
    results: dict[str, DefinitionResult] = {}
    shape = (model.n_layers, model.n_heads)
    for definition_id in order:
        _, definition = registry.definition(definition_id)
        result = DefinitionResult(definition_id, definition.kind, definition.combinator)
        related_ids = _related_ids(definition_id, definition.criteria)
        for criterion in definition.criteria:
            checker = extensions.checkers[criterion.checker]
            keyed = _probe_params(extensions, criterion)
            outcome = CriterionResult(criterion.checker, criterion.threshold, keyed[0] if keyed else None)
            started = time.perf_counter()
            try:
                context = CheckContext(model, _validated(checker.params, criterion.params), seed=seed, memo=memo)
                context.related = _related_members(related_ids.get(id(criterion), []), results)
                if keyed is not None:
                    run = runs[keyed[0]]
                    if isinstance(run, Exception):
                        raise run
                    context.probe = probes[keyed[0]]
                    context.logits, context.activations = run
                outcome.scores = _checked(Scores.of(checker.score(context)), shape)
            except NotApplicable as reason:
                outcome.scores = Scores.inapplicable(shape, str(reason))
            except Exception as error:
                outcome.error = f"checker '{checker.name}' failed: {_describe(error)}"
            if outcome.scores is not None:
                outcome.passed = criterion.threshold.select(outcome.scores.values)
            outcome.seconds = time.perf_counter() - started
            timings[f"{definition_id} {checker.name}"] = outcome.seconds
            result.criteria.append(outcome)
        errors = [c.error for c in result.criteria if c.error]
        if errors:
            result.error = "; ".join(errors)
        else:
            stacked = torch.stack([c.passed for c in result.criteria])  # type: ignore[misc]
            result.members = stacked.all(0) if definition.combinator == "all" else stacked.any(0)
        results[definition_id] = result
        done += 1
        if progress:
            progress(definition_id, done, steps)
    return RunResult(model, seed, results, probes, timings)


def _checked(scores: Scores, shape: tuple[int, int]) -> Scores:
    if tuple(scores.values.shape) != shape:
        raise DefcheckError(f"returned scores of shape {tuple(scores.values.shape)}, expected {shape} (layers, heads)")
    scores.values = scores.values.detach().float().cpu()
    return scores


def _related_members(targets: list[str], results: dict[str, DefinitionResult]) -> dict[str, torch.Tensor]:
    related = {}
    for target in targets:
        upstream = results.get(target)
        if upstream is None or upstream.members is None:
            raise DefcheckError(f"'{target}' has no members because it errored")
        related[target] = upstream.members
    return related


def _selected(registry: Registry, wanted: Sequence[str] | None) -> list[str]:
    if wanted is None:
        return list(registry.order)
    known = set(registry.order)
    missing = [w for w in wanted if w not in known and not any(o.startswith(f"{w}.") for o in known)]
    if missing:
        raise DefcheckError(f"unknown concept or definition: {', '.join(missing)}")
    needed: set[str] = set()
    stack = [o for o in registry.order if o in wanted or o.partition(".")[0] in wanted]
    while stack:
        current = stack.pop()
        if current in needed:
            continue
        needed.add(current)
        _, definition = registry.definition(current)
        for targets in _related_ids(current, definition.criteria).values():
            stack.extend(targets)
    return [o for o in registry.order if o in needed]


def _related_ids(definition_id: str, criteria: list[Criterion]) -> dict[int, list[str]]:
    concept = definition_id.partition(".")[0]
    return {id(c): [w if "." in w else f"{concept}.{w}" for w in (c.with_ or [])] for c in criteria}


def _activations(checker: Checker, criterion: Criterion, model: ModelView) -> list[str]:
    if checker.activations is None:
        return []
    return list(checker.activations(_validated(checker.params, criterion.params), model))


def _token_space(model: ModelView) -> TokenSpace:
    if model.tokens is None:
        raise DefcheckError(
            f"the model '{model.name}' has no token metadata (BOS id, usable ids), so probes cannot choose "
            "tokens; give --bos-token-id/--token-ids, or a `defcheck:` block in the model's config"
        )
    return model.tokens


def _describe(error: BaseException) -> str:
    if isinstance(error, DefcheckError):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"
