"""The overlap in words: why each unit on one side only is not on the other, which memberships rest on an
undefined score, why a concept has no overlap, and the plain-language narrative of a concept's overlap (the
units in both senses, each divergence with the criterion, score and threshold that decided it, Jaccard and its
range under the threshold scaling). Nouns (``head``/``heads``) are the unit kind's
(:class:`~defcheck.hooks.declarations.UnitKind`), passed in; nothing here knows a kind by name."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch

from defcheck.engine.results import CriterionResult, DefinitionResult, definition_status, members_of, scored
from defcheck.engine.sensitivity import SensitivityRow
from defcheck.engine.sensitivity import union as union_mask

if TYPE_CHECKING:
    from defcheck.engine.overlap import ConceptOverlap, SetOverlap

DETAILED_UNITS = 5  # divergent units described one by one in a narrative, per side
LISTED_UNITS = 12  # further units listed by address only
Nouns = tuple[str, str]  # a unit kind's singular and plural


def units_of(mask: torch.Tensor, names: Sequence[str]) -> list[str]:
    """The addresses of the units in ``mask`` (flat order of ``names``)."""
    return [names[i] for i in torch.nonzero(mask.flatten()).flatten().tolist()]


# --- why a unit is where it is -------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _undefined_text(reason: str) -> str:
    text = reason.strip()
    return text[len("undefined:") :].strip() if text.lower().startswith("undefined:") else text


def _criterion_labels(result: DefinitionResult) -> list[str]:
    names = [c.checker for c in result.criteria]
    return [f"{name} (criterion {i + 1})" if names.count(name) > 1 else name for i, name in enumerate(names)]


def _criterion_state(criterion: CriterionResult, index: int) -> tuple[str, float]:
    """``("pass" | "fail" | "undefined", score)`` of one criterion at a flat unit index."""
    assert criterion.scores is not None and criterion.passed is not None
    value = float(criterion.scores.values.flatten()[index])
    if bool(criterion.passed.flatten()[index]):
        return "pass", value
    return ("undefined" if math.isnan(value) else "fail"), value


def why_not(result: DefinitionResult, unit: str, index: int) -> str:
    """Why ``unit`` is not a member of an evaluated definition: the failed criteria with score and threshold,
    or (where no criterion failed outright, or for ``any``) the criteria whose score is undefined."""
    fails, undefined = [], []
    for label, criterion in zip(_criterion_labels(result), result.criteria, strict=True):
        state, value = _criterion_state(criterion, index)
        if state == "fail":
            fails.append(f"{label} {_fmt(value)}, needs {criterion.threshold}")
        elif state == "undefined":
            scores = criterion.scores
            assert scores is not None
            if scores.not_applicable:
                undefined.append(f"{label} not applicable: {_clause(scores.not_applicable)}")
            else:
                reason = scores.undefined.get(unit, "the checker gave no reason")
                undefined.append(f"{label} undefined: {_clause(_undefined_text(reason))}")
    if result.combinator == "all" and fails:
        return "; ".join(fails)
    return "; ".join(fails + undefined)


def _clause(text: str) -> str:
    """A message as a clause inside a sentence: no trailing period."""
    return text.strip().rstrip(".")


def undetermined_mask(result: DefinitionResult) -> torch.Tensor:
    """Units not admitted whose non-membership rests on an undefined score (three-valued all/any).

    A criterion that does not apply to the model at all counts as failed here, not as undefined per unit.
    """
    members = members_of(result)
    criteria = [scored(c) for c in result.criteria]
    defined = torch.stack([~torch.isnan(scores.values) | bool(scores.not_applicable) for scores, _ in criteria])
    passed = torch.stack([mask for _, mask in criteria])
    if result.combinator == "all":
        decided = (defined & ~passed).any(0)
        return ~members & ~decided
    return ~members & (~defined).any(0)


def divergences(
    union: SetOverlap,
    behavioral: dict[str, DefinitionResult],
    mechanistic: dict[str, DefinitionResult],
    names: Sequence[str],
) -> tuple[dict[str, str], dict[str, str]]:
    """Why each unit on one side only is not on the other; and which units' non-membership on a side rests on
    an undefined score (so that the category is open rather than decided)."""
    index = {name: i for i, name in enumerate(names)}
    divergences: dict[str, str] = {}
    sides = (
        (union.behavioral_only, behavioral, mechanistic, "behaves like one"),
        (union.mechanistic_only, mechanistic, behavioral, "is built like one"),
    )
    for units, admitting, other, phrase in sides:
        for unit in units:
            i = index[unit]
            which = [name for name, result in admitting.items() if bool(members_of(result).flatten()[i])]
            by = f" ({', '.join(which)})" if len(admitting) > 1 else ""
            failures = []
            for name, result in other.items():
                why = why_not(result, unit, i)
                failures.append(f"{name} ({why})" if why else name)
            divergences[unit] = f"{phrase}{by} but fails " + " and ".join(failures)
    members = {
        kind: union_mask(side.values(), union_shape(side))
        for kind, side in (("behavioral", behavioral), ("mechanistic", mechanistic))
    }
    open_: dict[int, list[str]] = {}
    for kind, side in (("behavioral", behavioral), ("mechanistic", mechanistic)):
        for name, result in side.items():
            mask = undetermined_mask(result) & ~members[kind]
            for i in torch.nonzero(mask.flatten()).flatten().tolist():
                open_.setdefault(i, []).append(f"{kind} {name}: {why_not(result, names[i], i)}")
    undetermined = {names[i]: "; ".join(reasons) for i, reasons in sorted(open_.items())}
    return divergences, undetermined


# --- why there is no overlap ----------------------------------------------------------------------------


def missing_note(
    results: dict[str, DefinitionResult],
    behavioral: dict[str, DefinitionResult],
    mechanistic: dict[str, DefinitionResult],
    excluded: dict[str, str],
    unselected: Mapping[str, str] | None = None,
) -> str:
    """Why a concept has no overlap: a kind without a definition, with none selected (``unselected``: the
    concept file's definitions left out of the run, name -> kind), or with none that could be evaluated."""
    parts = []
    for kind, usable in (("behavioral", behavioral), ("mechanistic", mechanistic)):
        if usable:
            continue
        written = [name for name, result in results.items() if result.kind == kind]
        left_out = [name for name, other in (unselected or {}).items() if other == kind]
        if not written and left_out:
            plural = len(left_out) > 1
            listed = ", ".join(left_out)
            parts.append(
                f"its {kind} definition{'s' if plural else ''} ({listed}) {'were' if plural else 'was'} not selected"
            )
        elif not written:
            parts.append(f"it has no {kind} definition")
        else:
            why = "; ".join(f"{name} {_clause(excluded[name])}" for name in written)
            parts.append(f"no {kind} definition could be evaluated ({why})")
    return "No overlap: " + " and ".join(parts) + "."


# --- the narrative ------------------------------------------------------------------------------------------


def _label(concept: str, unit: Nouns) -> tuple[str, str] | None:
    """``("an induction head", "induction heads")`` when the concept's name ends in its unit noun."""
    words = concept.replace("_", " ")
    singular, _ = unit
    if not words.endswith(singular):
        return None
    article = "an" if words[0] in "aeiou" else "a"
    return f"{article} {words}", f"{words}s"


def _listing(units: Sequence[str], limit: int = LISTED_UNITS) -> str:
    shown = ", ".join(units[:limit])
    return shown + (f", and {len(units) - limit} more" if len(units) > limit else "")


def count_of(n: int, unit: Nouns) -> str:
    """``1 head``, ``3 heads``: a count with the unit kind's noun."""
    singular, plural = unit
    return f"{n} {singular if n == 1 else plural}"


def union_shape(side: dict[str, DefinitionResult]) -> torch.Size:
    """The shape of the members of one side's definitions."""
    return members_of(next(iter(side.values()))).shape


def _range_text(rows: list[SensitivityRow]) -> str:
    values = [row.jaccard for row in rows if row.factor != 1.0]
    if not values:
        return ""
    factors = [row.factor for row in rows if row.factor != 1.0]
    span = f"{min(factors):g}-{max(factors):g}"
    defined = [v for v in values if v is not None]
    if not defined:
        return f" With thresholds scaled by {span}, Jaccard stays undefined."
    low, high = min(defined), max(defined)
    gaps = " (undefined at some scales)" if len(defined) < len(values) else ""
    if low == high:
        return f" With thresholds scaled by {span}, it stays at {_fmt(low)}{gaps}."
    return f" With thresholds scaled by {span}, it ranges from {_fmt(low)} to {_fmt(high)}{gaps}."


def narrative(analysis: ConceptOverlap) -> str:
    """The plain-language paragraph of a concept with an overlap."""
    union = analysis.union
    assert union is not None
    unit = analysis.nouns
    label = _label(analysis.concept, unit)
    concept_words = analysis.concept.replace("_", " ")
    parts = []
    n_both = len(union.both)
    listed = f" ({_listing(union.both)})" if union.both else ""
    if label:
        one, many = label
        if n_both == 0:
            parts.append(f"No {unit[0]} is {one} in both senses.")
        elif n_both == 1:
            parts.append(f"1 {unit[0]} is {one} in both senses{listed}.")
        else:
            parts.append(f"{count_of(n_both, unit)} are {many} in both senses{listed}.")
    else:
        verb = "meet" if n_both > 1 else "meets"
        subject = f"No {unit[0]}" if n_both == 0 else count_of(n_both, unit)
        parts.append(
            f"{subject} {verb} both the behavioral and the mechanistic definitions of {concept_words}{listed}."
        )
    for units, side in ((union.behavioral_only, "behavioral"), (union.mechanistic_only, "mechanistic")):
        detailed = [f"{u} {analysis.divergences[u]}" for u in units[:DETAILED_UNITS]]
        if detailed:
            parts.append("; ".join(detailed) + ".")
        rest = units[DETAILED_UNITS:]
        if rest:
            noun = unit[0 if len(rest) == 1 else 1]
            verb = "is" if len(rest) == 1 else "are"
            parts.append(f"{len(rest)} more {noun} {verb} {side} only ({_listing(rest)}).")
    if union.neither_count and (n_both or union.behavioral_only or union.mechanistic_only):
        verb = "is" if union.neither_count == 1 else "are"
        parts.append(f"The other {count_of(union.neither_count, unit)} {verb} neither.")
    elif union.neither_count:
        parts.append(f"None of the {count_of(union.neither_count, unit)} is admitted by either kind.")
    if union.jaccard is None:
        parts.append(f"Jaccard is undefined ({union.undefined.get('jaccard', '')}).")
    else:
        parts.append(f"Jaccard {_fmt(union.jaccard)}.{_range_text(analysis.sensitivity)}")
    if union.spearman is not None:
        parts.append(
            f"The primary scores' rank correlation is {_fmt(union.spearman)} over "
            f"{count_of(union.spearman_units, unit)}."
        )
    if len(analysis.pairs) > 1:
        pairs = "; ".join(
            f"{p.behavioral[0]} x {p.mechanistic[0]} {'undefined' if p.jaccard is None else _fmt(p.jaccard)}"
            for p in analysis.pairs
        )
        parts.append(f"Jaccard by pair: {pairs}.")
    for name, reason in analysis.excluded.items():
        parts.append(f"{name} is left out: {_clause(reason)}.")
    return " ".join(parts)


def one_sided_narrative(
    concept: str, unit: Nouns, results: dict[str, DefinitionResult], names: Sequence[str], note: str
) -> str:
    """The paragraph of a concept without an overlap: why (``note``), then what each definition admits."""
    parts = [note]
    for name, result in results.items():
        status, reason = definition_status(result)
        if status == "ok":
            members = units_of(members_of(result), names)
            listed = f" ({_listing(members)})" if members else ""
            parts.append(f"{name} ({result.kind}) admits {count_of(len(members), unit)}{listed}.")
        elif status == "errored":
            parts.append(f"{name} ({result.kind}) errored: {_clause(reason or '')}.")
    return " ".join(parts)
