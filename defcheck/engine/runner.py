"""The runner: builds each distinct probe once, runs the model once per probe, scores every definition.

Definitions are evaluated in reference order (``with:`` targets first). A checker that raises marks its
definition as errored; every other definition still runs.

How the work is shared:

- Each distinct probe (name and parameters) is built once and run through the model in one forward pass, in
  batches of ``batch_size`` sequences, capturing the union of the activations its criteria ask for. A probe's
  pass waits until the ``with:`` targets of every criterion on it are scored, so that one pass serves them
  all; only a probe whose criteria depend on definitions scored on that same probe needs a second pass.
- Checkers that declare :class:`~defcheck.hooks.declarations.Streamed` are scored batch by batch during the pass
  (each batch is reduced to small per-sequence partials, then dropped), so memory is bounded by the batch
  size, not by the probe's size. Other checkers get the whole probe's activations, concatenated, as before.
- Criteria that are the same computation (same checker, parameters, probe, ``with:`` targets and unit kind) are
  scored once; each keeps its own threshold. Work shared between different criteria goes through
  ``CheckContext.memo``.

Units: each concept's unit kind (``unit:``) is resolved on the model once
(:func:`~defcheck.engine.units.resolve_units`);
its scores must have that kind's shape. A concept whose unit kind the model does not have (neurons in an
attention-only model, heads in a policy) is not evaluated and is listed in ``RunResult.skipped`` with the reason.
The model need not be a transformer: a plugin's loader may return any model object its checkers understand. Only
probes of token sequences on a :class:`~defcheck.models.ModelView` get a forward pass; on other probes (episodes in
an environment, say) the runner calls each checker's ``score`` with the probe and no activations.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from defcheck.diagnostics import DefcheckError
from defcheck.engine.chance import shared_chance
from defcheck.engine.context import CheckContext
from defcheck.engine.criterion_tasks import (
    Computed,
    Job,
    Resample,
    Task,
    checked,
    describe,
    fail,
    hook_names,
    probe_params,
    probe_request,
    validated,
    wants_prepare,
)
from defcheck.engine.guard import CheckerGuard
from defcheck.engine.probe_data import ProbeBatch
from defcheck.engine.results import CriterionResult, DefinitionResult, RunResult, scored
from defcheck.engine.scheduling import concept_units, related_ids, related_members, related_scores, selected
from defcheck.engine.scores import NotApplicable, Scores
from defcheck.engine.units import Units
from defcheck.files import FileScope
from defcheck.hooks.containment import contain, plugin_code
from defcheck.hooks.declarations import Streamed
from defcheck.hooks.manager import Extensions
from defcheck.language.registry import Registry
from defcheck.models.view import ModelView

__all__ = ["CriterionResult", "DefinitionResult", "Progress", "RunResult", "evaluate"]

Progress = Callable[[str, int, int], None]


class _Run:
    """The state of one :func:`evaluate` call."""

    def __init__(
        self,
        model: ModelView | Any,
        registry: Registry,
        extensions: Extensions,
        order: list[str],
        seed: int,
        batch_size: int | None,
        progress: Progress | None,
        checker_timeout: float | None = None,
        guard: CheckerGuard | None = None,  # one guard (and one copy of the weights) for several runs
    ) -> None:
        self.model, self.registry, self.extensions = model, registry, extensions
        self.guard = guard or CheckerGuard(model, checker_timeout)
        self.seed, self.batch_size, self.progress = seed, batch_size, progress
        self.units, self.skipped = concept_units(model, registry, extensions, order)
        self.order = [definition_id for definition_id in order if definition_id.partition(".")[0] in self.units]
        self.timings: dict[str, float] = {}
        self.memo: dict[str, Any] = {}
        self.plan: dict[str, tuple[str, dict[str, Any]]] = {}  # probe key -> (probe name, params)
        self.scopes: dict[str, FileScope] = {}  # probe key -> where the files its params name are
        self.tasks: dict[str, list[Task]] = {}
        self.outcomes: dict[int, Computed] = {}  # id(task) -> outcome
        self.computed: dict[str, Computed] = {}  # signature -> outcome
        self.probes: dict[str, ProbeBatch] = {}
        self.failed_probes: dict[str, Exception] = {}
        self.passes: dict[str, int] = {}
        self.results: dict[str, DefinitionResult] = {}
        self.done = 0
        for definition_id in self.order:
            _, definition = registry.definition(definition_id)
            units = self.units[definition_id.partition(".")[0]]
            targets = related_ids(definition_id, definition.criteria)
            tasks = []
            for criterion in definition.criteria:
                checker = extensions.checkers[criterion.checker]
                keyed = probe_params(extensions, criterion, registry.file_scope(definition_id), self.scopes)
                if keyed is not None and criterion.probe is not None:
                    self.plan.setdefault(keyed[0], (criterion.probe.name, keyed[1]))
                related = targets.get(id(criterion), [])
                signature = json.dumps(
                    [checker.name, criterion.params, keyed[0] if keyed else None, related, units.kind],
                    sort_keys=True,
                    default=str,
                )
                probe = keyed[0] if keyed else None
                tasks.append(Task(definition_id, criterion, checker, probe, related, signature, units))
            self.tasks[definition_id] = tasks
        self.steps = len(self.plan) + len(self.order)

    # -- scheduling ----------------------------------------------------------------------------------------

    def evaluate(self) -> RunResult:
        known = set(self.order)
        remaining = list(self.order)
        while remaining:
            for definition_id in list(remaining):  # in order: with: targets come first
                if self._ready(definition_id, known):
                    self.results[definition_id] = self._finalize(definition_id)
                    remaining.remove(definition_id)
                    self._advance(definition_id)
            if not remaining:
                break
            pending = [
                task
                for definition_id in remaining
                for task in self.tasks[definition_id]
                if task.probe is not None and id(task) not in self.outcomes
            ]
            ready = [task for task in pending if all(self._resolved(r, known) for r in task.related)]
            if not ready:
                raise DefcheckError("cannot order the probes' forward passes: the with: references form a cycle")
            keys = list(dict.fromkeys(task.probe for task in ready if task.probe is not None))
            # prefer a probe all of whose waiting criteria can run now: then one pass serves them all
            whole = [key for key in keys if all(t in ready for t in pending if t.probe == key)]
            key = (whole or keys)[0]
            self._probe_pass(key, [task for task in ready if task.probe == key])
        definitions = {definition_id: self.results[definition_id] for definition_id in self.order}
        units = {concept: self.units[concept] for concept in dict.fromkeys(d.partition(".")[0] for d in self.order)}
        return RunResult(self.model, self.seed, definitions, self.probes, self.timings, units, self.skipped)

    def _resolved(self, definition_id: str, known: set[str]) -> bool:
        return definition_id in self.results or definition_id not in known

    def _ready(self, definition_id: str, known: set[str]) -> bool:
        tasks = self.tasks[definition_id]
        return all(self._resolved(r, known) for task in tasks for r in task.related) and all(
            id(task) in self.outcomes for task in tasks if task.probe is not None
        )

    def _advance(self, label: str) -> None:
        self.done += 1
        self.steps = max(self.steps, self.done)
        if self.progress:
            self.progress(label, self.done, self.steps)

    # -- definitions -----------------------------------------------------------------------------------------

    def _finalize(self, definition_id: str) -> DefinitionResult:
        _, definition = self.registry.definition(definition_id)
        result = DefinitionResult(definition_id, definition.kind, definition.combinator)
        for task in self.tasks[definition_id]:
            computed = self.outcomes.get(id(task)) if task.probe is not None else self._weights_only(task)
            assert computed is not None
            outcome = CriterionResult(task.checker.name, task.criterion.threshold, task.probe)
            if computed.scores is not None:
                outcome.scores = dataclasses.replace(computed.scores)
                outcome.passed = task.criterion.threshold.select(computed.scores.values)
            outcome.error, outcome.resample = computed.error, computed.resample
            probe = self.probes.get(task.probe or "")
            outcome.chance = shared_chance(computed, task.checker, self.guard, self._context, task, probe)
            outcome.seconds = 0.0 if computed.used else computed.seconds  # a shared computation counts once
            computed.used = True
            step = f"{definition_id} {task.checker.name}"
            self.timings[step] = self.timings.get(step, 0.0) + outcome.seconds
            result.criteria.append(outcome)
        errors = [c.error for c in result.criteria if c.error]
        if errors:
            result.error = "; ".join(errors)
        else:
            stacked = torch.stack([scored(c)[1] for c in result.criteria])
            result.members = stacked.all(0) if definition.combinator == "all" else stacked.any(0)
        return result

    def _weights_only(self, task: Task) -> Computed:
        """A criterion without a probe: scored from the weights, once per signature."""
        if task.signature in self.computed:
            return self.computed[task.signature]
        started = time.perf_counter()
        outcome = Computed()
        try:
            context = self._context(task)
            self.guard.call(task.checker.name, 0.0, self._score, outcome, task.units, task.checker.score, context)
        except BaseException as raised:  # sys.exit() included; a user's Ctrl-C is raised again by contain
            fail(outcome, task, contain(raised))
        outcome.seconds = time.perf_counter() - started
        self.computed[task.signature] = outcome
        return outcome

    def _context(self, task: Task, probe: ProbeBatch | None = None) -> CheckContext:
        params = validated(task.checker.params, task.criterion.params)
        context = CheckContext(self.model, params, probe=probe, seed=self.seed, memo=self.memo, units=task.units)
        context.related = related_members(task.related, self.results, self.skipped)
        context.related_scores = related_scores(task.related, self.results)
        return context

    def _score(self, outcome: Computed, units: Units, compute: Callable[..., Any], *args: Any) -> None:
        try:
            outcome.scores = checked(Scores.of(compute(*args)), units)
        except NotApplicable as reason:
            outcome.scores = Scores.inapplicable(units.shape, str(reason))

    # -- probes ------------------------------------------------------------------------------------------------

    def _build(self, key: str) -> ProbeBatch:
        if key in self.failed_probes:
            raise self.failed_probes[key]
        if key not in self.probes:
            name, params = self.plan[key]
            probe = self.extensions.probes[name]
            try:
                request = probe_request(probe, params, self.model, self.seed, self.scopes.get(key))
                batch = probe.build(request)
                positions = batch.tokens.shape[-1] if batch.tokens is not None and batch.tokens.dim() else 0
                if request.n_ctx and positions > request.n_ctx:  # a probe that did not keep to its fit policy
                    raise NotApplicable(
                        f"the probe {name} built sequences of {positions} tokens; the model's context is "
                        f"{request.n_ctx} (the probe does not shorten them to fit)"
                    )
            except BaseException as raised:  # sys.exit() included
                error = contain(raised)
                if isinstance(error, NotApplicable):
                    raise error from None
                raise DefcheckError(f"probe {key} failed: {describe(error)}") from error
            batch.params = params
            self.probes[key] = batch
        return self.probes[key]

    def _probe_pass(self, key: str, tasks: list[Task]) -> None:
        """Build the probe (once) and run one forward pass over it for ``tasks`` (those whose with: targets are
        scored), scoring streamed checkers batch by batch."""
        self.passes[key] = self.passes.get(key, 0) + 1
        label = f"probe {key}" if self.passes[key] == 1 else f"probe {key} (pass {self.passes[key]})"
        started = time.perf_counter()
        scoring = 0.0
        groups: dict[str, list[Task]] = {}
        for task in tasks:
            if task.signature in self.computed:  # scored in an earlier pass
                self.outcomes[id(task)] = self.computed[task.signature]
            else:
                groups.setdefault(task.signature, []).append(task)
        try:
            batch = self._build(key)
        except Exception as error:
            self.failed_probes[key] = error
            for group in groups.values():
                outcome = Computed()
                fail(outcome, group[0], error)
                self._assign(group, outcome)
            self.timings[label] = time.perf_counter() - started
            self._advance(f"probe {self.plan[key][0]}")
            return
        jobs: list[Job] = []
        for group in groups.values():
            task = group[0]
            try:
                context = self._context(task, batch)
                names = hook_names(task.checker, context.params, self.model)
            except BaseException as raised:
                outcome = Computed()
                fail(outcome, task, contain(raised))
                self._assign(group, outcome)
                continue
            jobs.append(Job(task, context, names))
        if batch.tokens is None or not isinstance(self.model, ModelView):  # no forward pass: score on the probe
            for job in jobs:
                scoring += self._timed(
                    job, self._score, job.outcome, job.task.units, job.task.checker.score, job.context
                )[1]
                self._assign(groups[job.task.signature], job.outcome)
            self.timings[label] = self.timings.get(label, 0.0) + max(time.perf_counter() - started - scoring, 0.0)
            self._advance(f"probe {self.plan[key][0]}")
            return
        streamed = [job for job in jobs if job.task.checker.streamed is not None]
        whole = [job for job in jobs if job.task.checker.streamed is None]
        try:
            preparing = [job for job in streamed if wants_prepare(job)]
            if preparing:
                scoring += self._forward(batch, preparing, [], prepare=True)
            scoring += self._forward(batch, streamed, whole, prepare=False)
        except BaseException as raised:  # the forward pass itself failed: every criterion on it fails
            failure = DefcheckError(f"probe {key} failed: {describe(contain(raised))}")
            for job in jobs:
                if not job.done:
                    fail(job.outcome, job.task, failure)
                    job.done = True
        for job in jobs:
            self._assign(groups[job.task.signature], job.outcome)
        self.timings[label] = self.timings.get(label, 0.0) + max(time.perf_counter() - started - scoring, 0.0)
        self._advance(f"probe {self.plan[key][0]}")

    def _forward(self, batch: ProbeBatch, streamed: list[Job], whole: list[Job], *, prepare: bool) -> float:
        """One forward pass over the probe for ``streamed`` jobs (their ``prepare`` or ``step``, per batch) and
        ``whole`` jobs (activations concatenated, then ``score``). Returns the seconds spent scoring."""
        names = sorted({name for job in [*streamed, *whole] for name in job.names})
        kept = sorted({name for job in whole for name in job.names})
        logits_needed = bool(whole) or any(_streamed(job).logits for job in streamed)
        logits_parts: list[torch.Tensor] = []
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in kept}
        scoring = 0.0
        assert batch.tokens is not None  # only token probes get a forward pass
        for rows, logits, activations in self.model.run_batches(
            batch.tokens, names, self.batch_size, logits=logits_needed
        ):
            selected = batch.select(rows)
            for job in streamed:
                if job.done:
                    continue
                declaration = job.task.checker.streamed
                assert declaration is not None
                context = dataclasses.replace(
                    job.context,
                    probe=selected,
                    logits=logits,
                    activations={name: activations[name] for name in job.names},
                    rows=rows,
                    prepared=job.prepared,
                    full_probe=batch,
                )
                function, kept_in = (declaration.prepare, job.prepared) if prepare else (declaration.step, job.partials)
                assert function is not None  # prepare passes run only for jobs that have one (wants_prepare)
                partial, spent = self._timed(job, function, context, last=False)
                scoring += spent
                if not job.done:
                    kept_in.append(partial)
            if whole:
                if logits is not None:
                    logits_parts.append(logits)
                for name in kept:
                    parts[name].append(activations[name])
            del activations, logits
        if prepare:
            return scoring
        for job in streamed:
            if job.done:
                continue
            declaration = job.task.checker.streamed
            assert declaration is not None
            job.context.prepared = job.prepared
            finish = declaration.finish
            scoring += self._timed(job, self._score, job.outcome, job.task.units, finish, job.context, job.partials)[1]
            if declaration.sequence_axis is not None and job.outcome.error is None:  # --bootstrap can resample it
                job.outcome.resample = Resample(finish, job.context, job.partials, declaration.sequence_axis)
            job.partials = []
        if whole:
            logits_all = torch.cat(logits_parts) if logits_parts else None
            activations_all = {name: torch.cat(chunks) for name, chunks in parts.items()}
            parts.clear()
            for job in whole:
                job.context.logits = logits_all
                job.context.activations = {name: activations_all[name] for name in job.names}
                scoring += self._timed(
                    job, self._score, job.outcome, job.task.units, job.task.checker.score, job.context
                )[1]
                job.context.activations = {}
                job.context.logits = None
        return scoring

    def _timed(self, job: Job, function: Callable[..., Any], *args: Any, last: bool = True) -> tuple[Any, float]:
        """``function(*args)`` as one of ``job``'s steps: a raise fails the job and ends it; ``last``: the job is
        done after it. Returns the result (None after a raise) and the seconds spent, added to the job's time."""
        started = time.perf_counter()
        result = None
        try:
            result = self.guard.call(job.task.checker.name, job.outcome.seconds, function, *args)
        except Exception as error:
            fail(job.outcome, job.task, error)
            job.done = True
        if last:
            job.done = True
        spent = time.perf_counter() - started
        job.outcome.seconds += spent
        return result, spent

    def _assign(self, group: list[Task], outcome: Computed) -> None:
        self.computed[group[0].signature] = outcome
        for task in group:
            self.outcomes[id(task)] = outcome


def evaluate(
    model: ModelView | Any,
    registry: Registry,
    extensions: Extensions,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    definitions: Sequence[str] | None = None,
    progress: Progress | None = None,
    checker_timeout: float | None = None,
) -> RunResult:
    """Evaluate the registry's definitions (or the ``definitions`` ids and what they refer to) on ``model``.

    ``model`` is a :class:`~defcheck.models.ModelView`, or whatever model object a plugin's loader returned (its
    checkers and unit kinds understand it). Concepts whose unit kind the model does not have are skipped
    (``RunResult.skipped``).

    ``batch_size`` is the number of sequences per forward pass (default: a whole probe); with it, streamed
    checkers hold one batch's activations at a time. ``checker_timeout``: the seconds one checker's computation
    may take (None or 0: no limit; see :mod:`defcheck.engine.guard`). Plugins' code runs with stdout sent to
    stderr (:func:`~defcheck.hooks.containment.plugin_code`).
    """
    if registry.errors:
        raise DefcheckError("the definitions have errors; run `defcheck validate` first")
    order = selected(registry, definitions)
    with plugin_code():
        run = _Run(model, registry, extensions, order, seed, batch_size, progress, checker_timeout)
        return run.evaluate()


def _streamed(job: Job) -> Streamed:
    """The streamed declaration of a job the pass scores batch by batch."""
    declaration = job.task.checker.streamed
    assert declaration is not None
    return declaration


_selected = selected  # the name other modules used before the split
