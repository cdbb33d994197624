"""What a run evaluates and in which order: the selected definitions with the ``with:`` targets they need, each
concept's units on the model (or why it is skipped), and the members a criterion's ``with:`` targets hand it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from defcheck.diagnostics import DefcheckError
from defcheck.engine.results import DefinitionResult
from defcheck.engine.scores import NotApplicable
from defcheck.engine.units import Units, resolve_units
from defcheck.hooks.manager import Extensions
from defcheck.language.registry import Registry
from defcheck.language.schema import Criterion


def selected(registry: Registry, wanted: Sequence[str] | None) -> list[str]:
    """The definition ids to evaluate, in the registry's order: all, or ``wanted`` (concepts or definition ids)
    and every ``with:`` target they reach."""
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
        for targets in related_ids(current, definition.criteria).values():
            stack.extend(targets)
    return [o for o in registry.order if o in needed]


def related_ids(definition_id: str, criteria: list[Criterion]) -> dict[int, list[str]]:
    """Each criterion's ``with:`` targets as full definition ids, by ``id(criterion)``."""
    concept = definition_id.partition(".")[0]
    return {id(c): [w if "." in w else f"{concept}.{w}" for w in (c.with_ or [])] for c in criteria}


def concept_units(
    model: Any, registry: Registry, extensions: Extensions, order: list[str]
) -> tuple[dict[str, Units], dict[str, str]]:
    """Each concept's units in ``model``; and the concepts whose unit kind the model lacks, with the reason."""
    units: dict[str, Units] = {}
    skipped: dict[str, str] = {}
    resolved: dict[str, Units | str] = {}
    for concept in dict.fromkeys(definition_id.partition(".")[0] for definition_id in order):
        kind_name = registry.files[concept].concept.unit
        if kind_name not in resolved:
            kind = extensions.unit_kinds.get(kind_name)
            if kind is None:
                raise DefcheckError(f"the unit kind '{kind_name}' is not registered (run `defcheck validate`)")
            try:
                resolved[kind_name] = resolve_units(kind, model)
            except NotApplicable as reason:
                resolved[kind_name] = f"no {kind_name} units: {reason}"
        outcome = resolved[kind_name]
        if isinstance(outcome, str):
            skipped[concept] = outcome
        else:
            units[concept] = outcome
    return units, skipped


def related_members(
    targets: list[str], results: dict[str, DefinitionResult], skipped: dict[str, str] | None = None
) -> dict[str, torch.Tensor]:
    """The members of each ``with:`` target; an error when a target was skipped or errored."""
    related = {}
    for target in targets:
        concept = target.partition(".")[0]
        if skipped and concept in skipped:
            raise DefcheckError(f"'{target}' was not evaluated ({skipped[concept]})")
        upstream = results.get(target)
        if upstream is None or upstream.members is None:
            raise DefcheckError(f"'{target}' has no members because it errored")
        related[target] = upstream.members
    return related


def related_scores(targets: list[str], results: dict[str, DefinitionResult]) -> dict[str, torch.Tensor]:
    """The primary scores (first criterion's values) of each ``with:`` target that has them."""
    scores = {}
    for target in targets:
        upstream = results.get(target)
        primary = upstream.scores if upstream is not None else None
        if primary is not None:
            scores[target] = primary.values
    return scores
