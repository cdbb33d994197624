"""Chance levels: what a null unit scores on a criterion's probe (``Checker.chance``), and the run's lint that warns
when a threshold would admit it.

The runner calls a checker's ``chance(context)`` once per computation (equal criteria share it), after the scores,
with the criterion's context: its parameters, the whole probe, its ``with:`` members, no activations. A checker
without ``chance``, one that returns ``None``, raises, or returns something that is not one finite number has an
unknown chance level (``None``; reports show ``-``); a failure here never fails the criterion.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from defcheck.diagnostics import Diagnostic
from defcheck.language.thresholds import Comparison, Threshold, TopK

if TYPE_CHECKING:
    from collections.abc import Callable

    from defcheck.engine.context import CheckContext
    from defcheck.engine.criterion_tasks import Computed
    from defcheck.engine.guard import CheckerGuard
    from defcheck.engine.results import RunResult
    from defcheck.hooks.declarations import Checker
    from defcheck.language.registry import Registry

CODE = "threshold-at-chance"

__all__ = ["admits_chance", "chance_level", "chance_warnings", "shared_chance"]


def chance_level(checker: Checker, context: CheckContext, guard: CheckerGuard | None = None) -> float | None:
    """``checker.chance(context)`` as one finite float, or ``None`` (no ``chance``, it cannot say, or it failed).

    A tensor counts when it holds one number, or the same number for every unit (NaN entries left out)."""
    if checker.chance is None:
        return None
    try:
        value: Any = guard.call(checker.name, 0.0, checker.chance, context) if guard else checker.chance(context)
    except Exception:  # a chance level is a reading aid: its failure leaves it unknown, never fails the run
        return None
    return _one_number(value)


def shared_chance(
    computed: Computed,
    checker: Checker,
    guard: CheckerGuard | None,
    context: Callable[..., CheckContext],
    *args: Any,
) -> float | None:
    """The chance level of a computation, worked out once for every criterion that shares it (``context(*args)``
    builds the criterion's context, only when needed); ``None`` after an error or where the checker does not apply."""
    scored = computed.scores is not None and not computed.scores.not_applicable and computed.error is None
    if not computed.chance_done and scored and checker.chance is not None:
        computed.chance = chance_level(checker, context(*args), guard)
    computed.chance_done = True
    return computed.chance


def _one_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            flat = value.detach().float().flatten().cpu()
        except AttributeError:
            return None
        finite = flat[~flat.isnan()]
        if finite.numel() == 0 or bool((finite != finite[0]).any()):
            return None
        number = float(finite[0])
    return number if math.isfinite(number) else None


def admits_chance(threshold: Threshold, chance: float | None) -> bool:
    """Whether a unit scoring exactly ``chance`` passes ``threshold``: ``>= t`` with ``t <= chance``, ``> t`` with
    ``t < chance``, and mirrored for ``<=`` and ``<``; a rank rule by its ``min`` (``>=``), if it has one."""
    if chance is None:
        return False
    if isinstance(threshold, TopK):
        return threshold.min is not None and threshold.min <= chance
    if not isinstance(threshold, Comparison):
        return False
    value = threshold.value
    return {
        ">=": value <= chance,
        ">": value < chance,
        "<=": value >= chance,
        "<": value > chance,
    }[threshold.op]


def chance_warnings(run: RunResult, registry: Registry | None) -> list[Diagnostic]:
    """A warning (code ``threshold-at-chance``) for every criterion whose threshold admits a unit that scores its
    chance level on this run's model, located at the threshold in its concept file."""
    out: list[Diagnostic] = []
    model = getattr(run.model, "name", "the model")
    for definition_id, result in run.definitions.items():
        concept, _, name = definition_id.partition(".")
        file = registry.files.get(concept) if registry is not None else None
        definition = file.concept.definitions.get(name) if file is not None else None
        for index, criterion in enumerate(result.criteria):
            threshold, chance = criterion.threshold, criterion.chance
            if chance is None or not admits_chance(threshold, chance):
                continue
            below = not (isinstance(threshold, Comparison) and threshold.op in ("<", "<="))
            message = (
                f"the threshold '{threshold}' of {definition_id} ({criterion.checker}) lies "
                f"{'at or below' if below else 'at or above'} its chance level on {model}, {chance:.4g} (what a "
                "null unit scores on the same probe), so it admits units that do nothing; move it past chance"
            )
            if file is None or definition is None:
                out.append(Diagnostic(definition_id, None, None, "threshold", message, "warning", CODE))
            else:
                field = ("definitions", name, definition.combinator, index, "threshold")
                out.append(file.diagnostic(field, message, CODE, "warning"))
    return out
