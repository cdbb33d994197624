"""The runner's units of work: one criterion of one definition (:class:`Task`), the computation it shares with
equal criteria (:class:`Computed`), a computation during a probe's forward pass (:class:`Job`), and the small
checks and conversions around scoring them (validated parameters, score shapes, error messages)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

import torch

from defcheck.diagnostics import DefcheckError
from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeRequest, probe_key
from defcheck.engine.scores import NotApplicable, Scores
from defcheck.engine.units import Units
from defcheck.files import FileScope
from defcheck.hooks.containment import TookTooLong
from defcheck.hooks.declarations import Checker, Probe
from defcheck.hooks.manager import Extensions
from defcheck.language.schema import Criterion
from defcheck.models.view import ModelView, TokenSpace


@dataclass
class Task:
    """One criterion of one definition, as the runner schedules it."""

    definition_id: str
    criterion: Criterion
    checker: Checker
    probe: str | None  # probe key
    related: list[str]  # ids of the with: definitions
    signature: str  # equal signatures are the same computation
    units: Units  # the concept's units in this model


@dataclass
class Computed:
    """The outcome of one computation, shared by every criterion with its signature."""

    scores: Scores | None = None
    error: str | None = None
    seconds: float = 0.0
    used: bool = False
    chance: float | None = None  # what a null unit scores (Checker.chance), once per computation
    chance_done: bool = False
    resample: Resample | None = None  # a streamed checker with a sequence_axis: what a bootstrap needs


@dataclass
class Resample:
    """What :mod:`defcheck.engine.bootstrap` needs to score a resample of a probe's sequences: the streamed
    checker's ``finish``, the context it was finished with, its per-batch partials and their sequence axis."""

    finish: Any
    context: CheckContext
    partials: list[Any]
    axis: int


@dataclass
class Job:
    """A computation during a probe's pass: its context, what it captures, and its partial results."""

    task: Task
    context: CheckContext
    names: list[str]
    partials: list[Any] = field(default_factory=list)
    prepared: list[Any] = field(default_factory=list)
    outcome: Computed = field(default_factory=Computed)
    done: bool = False


def validated(model_type: Any, values: dict[str, Any]) -> Any:
    """``values`` validated by a checker's or probe's pydantic parameter model."""
    return model_type.model_validate(values)


def probe_params(
    extensions: Extensions,
    criterion: Criterion,
    scope: FileScope | None = None,
    scopes: dict[str, FileScope] | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """The criterion's probe key and validated parameters, or ``None`` for a weights-only criterion.

    For a probe that reads files (``Probe.reads_files``), ``scopes`` maps each key to the :class:`FileScope` (the
    concept file's folder) it is built in: the same params from a concept file in another folder name other
    files, so they get a key of their own (``#2``, ...), and ``scope`` is recorded under the key returned."""
    if criterion.probe is None:
        return None
    probe = extensions.probes[criterion.probe.name]
    params = validated(probe.params, criterion.probe.params).model_dump(mode="json")
    key = probe_key(probe.name, params)
    if scope is not None and scopes is not None:
        if probe.reads_files:
            count = 1
            while scopes.get(key if count == 1 else f"{key} #{count}", scope) != scope:
                count += 1
            key = key if count == 1 else f"{key} #{count}"
        scopes.setdefault(key, scope)
    return key, params


def probe_request(probe: Probe, params: dict[str, Any], model: Any, seed: int, files: FileScope | None) -> ProbeRequest:
    """What ``probe.build`` receives on ``model``: its params validated, the vocabulary and context of a
    transformer, and where the files its params name are (``files``)."""
    values = validated(probe.params, params)
    if isinstance(model, ModelView):
        tokenizer = getattr(model.model, "tokenizer", None)
        return ProbeRequest(values, token_space(model), seed, model.n_ctx, tokenizer, model, fit=probe.fit, files=files)
    return ProbeRequest(values, None, seed, 0, None, model, files=files)  # a policy, say: its probes read the model


def wants_prepare(job: Job) -> bool:
    """Whether a streamed checker asks for a first pass (its ``prepare``) before the scoring pass."""
    declaration = job.task.checker.streamed
    if declaration is None or declaration.prepare is None:
        return False
    return declaration.wants_prepare is None or bool(declaration.wants_prepare(job.context))


def checked(scores: Scores, units: Units) -> Scores:
    """``scores`` with values as a float CPU tensor of the units' shape; a plugin's wrong shape is an error."""
    values = scores.values
    if not isinstance(values, torch.Tensor):
        raise DefcheckError(f"returned {type(values).__name__} scores, expected a tensor of shape {units.shape_text()}")
    if tuple(values.shape) != units.shape:
        raise DefcheckError(
            f"returned scores of shape {tuple(values.shape)}, expected {units.shape_text()} for {units.kind} units"
        )
    if values.is_complex():  # .float() would drop the imaginary part without a word
        raise DefcheckError(f"returned complex scores ({values.dtype}); scores are real numbers")
    scores.values = values.detach().float().cpu()
    return scores


def hook_names(checker: Checker, params: Any, model: ModelView | Any) -> list[str]:
    """The hook names a checker captures during the forward pass (none for weights-only checkers)."""
    if checker.activations is None:
        return []
    return list(checker.activations(params, model))


def token_space(model: ModelView) -> TokenSpace:
    """The model's token metadata, which probes of token sequences need."""
    if model.tokens is None:
        raise DefcheckError(
            f"the model '{model.name}' has no token metadata (BOS id, usable ids), so probes cannot choose "
            "tokens; give --bos-token-id/--token-ids, or a `defcheck:` block in the model's config"
        )
    return model.tokens


def fail(outcome: Computed, task: Task, error: BaseException) -> None:
    """Record ``error`` as the outcome of ``task``'s computation (a :class:`NotApplicable` as inapplicable scores)."""
    if isinstance(error, NotApplicable):
        outcome.scores = Scores.inapplicable(task.units.shape, str(error))
        return
    outcome.scores = None  # e.g. the scores of a checker that wrote to the weights
    failed = "" if isinstance(error, TookTooLong) else " failed:"
    outcome.error = f"checker '{task.checker.name}'{failed} {describe(error)}"


def describe(error: BaseException) -> str:
    """An error as one line: a DefcheckError's message, else its type, message and where it was raised."""
    if isinstance(error, DefcheckError):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"
