"""The overlap analysis: where a concept's behavioral and mechanistic definitions agree and where they diverge.

For every concept with at least one usable definition of each kind, this compares

* each behavioral x mechanistic **pair** of definitions, and
* the **union** of each kind (a unit is "behavioral" if any behavioral definition admits it),

by the units in both / behavioral only / mechanistic only / neither, Jaccard, precision and recall of the
behavioral set against the mechanistic one (the mechanistic set taken as the reference), and the Spearman rank
correlation of the two primary scores (a definition's primary score is that of its first criterion). A
**threshold sensitivity** table re-selects members from the stored criterion scores with every threshold scaled
(``threshold.scaled(f)``) and recombines them with ``all``/``any``; nothing is recomputed, so members of
``with:`` targets stay as they were. Each concept also gets a plain-language summary naming, for every unit on
one side only, the criterion that kept it off the other side, with its score and threshold.

Conventions (also in docs/report-format.md): a metric whose value is undefined is ``None`` and its reason is in
``undefined`` (Jaccard of two empty sets, precision with no behavioral member, Spearman over fewer than 3 units
or a constant score). Errored and not-applicable definitions are left out of the comparison and listed in
``excluded`` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from defcheck.engine.runner import CriterionResult, DefinitionResult, RunResult

FACTORS: tuple[float, ...] = (0.75, 0.9, 1.0, 1.1, 1.25)
"""Threshold scale factors of the sensitivity table (1.0 is the run's own thresholds)."""
KINDS = ("behavioral", "mechanistic")
MIN_SPEARMAN_UNITS = 3
DETAILED_UNITS = 5  # divergent units described one by one in a summary, per side
LISTED_UNITS = 12  # further units listed by address only
UNIT_NOUNS = {
    "attention_head": ("head", "heads"),
    "mlp_neuron": ("neuron", "neurons"),
    "layer": ("layer", "layers"),
    "model": ("model", "models"),
}


# --- metrics -------------------------------------------------------------------------------------------------


def jaccard(a: set[Any], b: set[Any]) -> tuple[float | None, str | None]:
    """``|a & b| / |a | b|``; ``None`` with a reason when both sets are empty (nothing to agree on)."""
    union = a | b
    if not union:
        return None, "both sets are empty"
    return len(a & b) / len(union), None


def precision_recall(behavioral: set[str], mechanistic: set[str]) -> tuple[float | None, float | None, dict[str, str]]:
    """Precision and recall of the behavioral set against the mechanistic one, with reasons for ``None``."""
    both = len(behavioral & mechanistic)
    undefined: dict[str, str] = {}
    precision = recall = None
    if behavioral:
        precision = both / len(behavioral)
    else:
        undefined["precision"] = "no unit is a behavioral member"
    if mechanistic:
        recall = both / len(mechanistic)
    else:
        undefined["recall"] = "no unit is a mechanistic member"
    return precision, recall, undefined


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-d tensor, ties given the average of the ranks they span (as scipy's ``rankdata``)."""
    x = values.double().flatten()
    n = x.numel()
    if n == 0:
        return x
    order = torch.argsort(x, stable=True)
    ordered = x[order]
    starts = torch.ones(n, dtype=torch.bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    group = torch.cumsum(starts.long(), 0) - 1
    positions = torch.arange(1, n + 1, dtype=torch.float64)
    groups = int(group[-1]) + 1
    sums = torch.zeros(groups, dtype=torch.float64).index_add_(0, group, positions)
    counts = torch.bincount(group, minlength=groups).double()
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = (sums / counts)[group]
    return ranks


def spearman(x: torch.Tensor, y: torch.Tensor) -> tuple[float | None, int, str | None]:
    """Spearman's rank correlation over the units where both scores are defined (not NaN).

    Returns ``(rho, units used, reason)``; ``rho`` is ``None`` with a reason when fewer than 3 units have both
    scores or either score is constant over them.
    """
    a, b = x.double().flatten(), y.double().flatten()
    defined = ~torch.isnan(a) & ~torch.isnan(b)
    count = int(defined.sum())
    if count < MIN_SPEARMAN_UNITS:
        return None, count, f"only {count} unit(s) have both scores defined (needs {MIN_SPEARMAN_UNITS})"
    ra, rb = average_ranks(a[defined]), average_ranks(b[defined])
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    if norm == 0.0:
        return None, count, "one of the scores is constant over the units where both are defined"
    return max(-1.0, min(1.0, float((ra * rb).sum()) / norm)), count, None


# --- results -------------------------------------------------------------------------------------------------


@dataclass
class SetOverlap:
    """The comparison of a behavioral and a mechanistic set of units (one pair, or the union of each kind)."""

    behavioral: list[str]  # the definitions (names within the concept) on each side
    mechanistic: list[str]
    both: list[str]
    behavioral_only: list[str]
    mechanistic_only: list[str]
    neither_count: int
    jaccard: float | None
    precision: float | None
    recall: float | None
    spearman: float | None
    spearman_units: int
    undefined: dict[str, str] = field(default_factory=dict)  # metric -> why it is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "behavioral": list(self.behavioral),
            "mechanistic": list(self.mechanistic),
            "both": list(self.both),
            "behavioral_only": list(self.behavioral_only),
            "mechanistic_only": list(self.mechanistic_only),
            "neither_count": self.neither_count,
            "jaccard": self.jaccard,
            "precision": self.precision,
            "recall": self.recall,
            "spearman": self.spearman,
            "spearman_units": self.spearman_units,
            "undefined": dict(self.undefined),
        }


@dataclass
class SensitivityRow:
    """Jaccard of the union sets with thresholds scaled by ``factor``: all of them, or one kind's only."""

    factor: float
    jaccard: float | None
    jaccard_behavioral_scaled: float | None
    jaccard_mechanistic_scaled: float | None
    behavioral: int  # members of each union, and of both, with every threshold scaled
    mechanistic: int
    both: int
    thresholds: dict[str, list[str]]  # definition -> its scaled thresholds, as text
    undefined: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "jaccard": self.jaccard,
            "jaccard_behavioral_scaled": self.jaccard_behavioral_scaled,
            "jaccard_mechanistic_scaled": self.jaccard_mechanistic_scaled,
            "behavioral": self.behavioral,
            "mechanistic": self.mechanistic,
            "both": self.both,
            "thresholds": {name: list(values) for name, values in self.thresholds.items()},
            "undefined": dict(self.undefined),
        }


@dataclass
class ConceptOverlap:
    """One concept's overlap analysis; ``union`` is ``None`` (with ``note``) when one kind has nothing usable."""

    concept: str
    unit: str
    union: SetOverlap | None
    pairs: list[SetOverlap]
    sensitivity: list[SensitivityRow]
    divergences: dict[str, str]  # unit -> why it is on one side only
    undetermined: dict[str, str]  # unit -> why its membership on one side rests on an undefined score
    excluded: dict[str, str]  # definition -> "errored: ..." / "not applicable: ..."
    note: str | None
    summary: str
    nouns: tuple[str, str] | None = None  # the unit kind's singular and plural, where not a built-in kind's

    def to_dict(self) -> dict[str, Any] | None:
        """The ``overlap`` object of the JSON report (``None`` when there is nothing to compare)."""
        if self.union is None:
            return None
        return {
            **self.union.to_dict(),
            "pairs": [pair.to_dict() for pair in self.pairs],
            "sensitivity": [row.to_dict() for row in self.sensitivity],
            "divergences": dict(self.divergences),
            "undetermined": dict(self.undetermined),
            "excluded": dict(self.excluded),
        }


# --- definitions' status and per-unit reasons ----------------------------------------------------------------


def definition_status(result: DefinitionResult) -> tuple[str, str | None]:
    """``("ok", None)``, ``("errored", message)`` or ``("not_applicable", reason)``.

    A definition is not applicable when a criterion it needs does not apply to the model: any criterion of an
    ``all`` definition, every criterion of an ``any`` one.
    """
    if result.error is not None or result.members is None:
        return "errored", result.error or "no members were computed"
    reasons = [c.scores.not_applicable for c in result.criteria if c.scores is not None and c.scores.not_applicable]
    if reasons and (result.combinator == "all" or len(reasons) == len(result.criteria)):
        return "not_applicable", "; ".join(dict.fromkeys(reasons))
    return "ok", None


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


def _why_not(result: DefinitionResult, unit: str, index: int) -> str:
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


def _undetermined(result: DefinitionResult) -> torch.Tensor:
    """Units not admitted whose non-membership rests on an undefined score (three-valued all/any).

    A criterion that does not apply to the model at all counts as failed here, not as undefined per unit.
    """
    assert result.members is not None
    defined = torch.stack(
        [~torch.isnan(c.scores.values) | bool(c.scores.not_applicable) for c in result.criteria]  # type: ignore[union-attr]
    )
    passed = torch.stack([c.passed for c in result.criteria])  # type: ignore[misc]
    if result.combinator == "all":
        decided = (defined & ~passed).any(0)
        return ~result.members & ~decided
    return ~result.members & (~defined).any(0)


# --- the analysis --------------------------------------------------------------------------------------------


def _members(result: DefinitionResult, factor: float = 1.0) -> torch.Tensor:
    if factor == 1.0:
        assert result.members is not None
        return result.members
    passed = [c.threshold.scaled(factor).select(c.scores.values) for c in result.criteria]  # type: ignore[union-attr]
    stacked = torch.stack(passed)
    return stacked.all(0) if result.combinator == "all" else stacked.any(0)


def _units(mask: torch.Tensor, names: Sequence[str]) -> list[str]:
    return [names[i] for i in torch.nonzero(mask.flatten()).flatten().tolist()]


def _union(results: Iterable[DefinitionResult], shape: torch.Size, factor: float = 1.0) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    for result in results:
        mask |= _members(result, factor)
    return mask


def _compare(
    behavioral: dict[str, DefinitionResult],
    mechanistic: dict[str, DefinitionResult],
    names: Sequence[str],
    shape: torch.Size,
) -> SetOverlap:
    b_mask, m_mask = _union(behavioral.values(), shape), _union(mechanistic.values(), shape)
    b, m = set(_units(b_mask, names)), set(_units(m_mask, names))
    value, why = jaccard(b, m)
    precision, recall, undefined = precision_recall(b, m)
    if why:
        undefined["jaccard"] = why
    if len(behavioral) == 1 and len(mechanistic) == 1:
        (b_result,) = behavioral.values()
        (m_result,) = mechanistic.values()
        rho, used, reason = spearman(b_result.scores.values, m_result.scores.values)  # type: ignore[union-attr]
    else:
        rho, used, reason = None, 0, "a union of several definitions has no single score; see the pairs"
    if reason:
        undefined["spearman"] = reason
    return SetOverlap(
        behavioral=list(behavioral),
        mechanistic=list(mechanistic),
        both=_units(b_mask & m_mask, names),
        behavioral_only=_units(b_mask & ~m_mask, names),
        mechanistic_only=_units(~b_mask & m_mask, names),
        neither_count=int((~b_mask & ~m_mask).sum()),
        jaccard=value,
        precision=precision,
        recall=recall,
        spearman=rho,
        spearman_units=used,
        undefined=dict(sorted(undefined.items())),
    )


def _sensitivity(
    behavioral: dict[str, DefinitionResult],
    mechanistic: dict[str, DefinitionResult],
    shape: torch.Size,
    factors: Sequence[float],
) -> list[SensitivityRow]:
    rows = []
    b_base, m_base = _flat(_union(behavioral.values(), shape)), _flat(_union(mechanistic.values(), shape))
    for factor in factors:
        b = _flat(_union(behavioral.values(), shape, factor))
        m = _flat(_union(mechanistic.values(), shape, factor))
        values = {
            "jaccard": jaccard(b, m),
            "jaccard_behavioral_scaled": jaccard(b, m_base),
            "jaccard_mechanistic_scaled": jaccard(b_base, m),
        }
        thresholds = {
            name: [str(c.threshold.scaled(factor)) for c in result.criteria]
            for name, result in {**behavioral, **mechanistic}.items()
        }
        rows.append(
            SensitivityRow(
                factor,
                values["jaccard"][0],
                values["jaccard_behavioral_scaled"][0],
                values["jaccard_mechanistic_scaled"][0],
                len(b),
                len(m),
                len(b & m),
                thresholds,
                {key: why for key, (_, why) in values.items() if why},
            )
        )
    return rows


def _flat(mask: torch.Tensor) -> set[int]:
    return set(torch.nonzero(mask.flatten()).flatten().tolist())


def analyze(
    run: RunResult,
    registry: Any = None,
    *,
    factors: Sequence[float] = FACTORS,
) -> dict[str, ConceptOverlap]:
    """The overlap analysis of every concept in ``run`` (concepts sorted by name).

    Each concept's unit kind and unit addresses come from ``run.units``; for a run built by hand without them,
    from ``registry`` (a :class:`~defcheck.language.registry.Registry`, optional) and the model's head addresses.
    """
    grouped: dict[str, dict[str, DefinitionResult]] = {}
    for definition_id, result in run.definitions.items():
        concept, _, name = definition_id.partition(".")
        grouped.setdefault(concept, {})[name] = result
    out = {}
    for concept in sorted(grouped):
        units = run.units.get(concept)
        unit = units.kind if units is not None else "attention_head"
        if units is None and registry is not None and concept in getattr(registry, "files", {}):
            unit = registry.files[concept].concept.unit
        names = unit_names(run, concept)
        nouns = (units.singular, units.plural) if units is not None else None
        results = dict(sorted(grouped[concept].items()))
        out[concept] = concept_overlap(concept, results, names, unit=unit, factors=factors, nouns=nouns)
    return out


def unit_names(run: RunResult, concept: str | None = None) -> list[str]:
    """Every unit's address for ``concept`` (its unit kind's, from ``run.units``), in the flat order of its
    scores; for a run built without units, the model's head addresses."""
    if concept is not None and concept in run.units:
        return list(run.units[concept].names)
    try:
        return list(run.model.unit_names())
    except AttributeError:
        for result in run.definitions.values():
            for criterion in result.criteria:
                if criterion.scores is not None:
                    layers, heads = criterion.scores.values.shape
                    return [f"{layer}.{head}" for layer in range(layers) for head in range(heads)]
        return []


def concept_overlap(
    concept: str,
    results: dict[str, DefinitionResult],
    names: Sequence[str],
    *,
    unit: str = "attention_head",
    factors: Sequence[float] = FACTORS,
    nouns: tuple[str, str] | None = None,
) -> ConceptOverlap:
    """The overlap analysis of one concept: ``results`` maps each definition's name (within the concept) to
    its result; ``names`` are the unit addresses in the flat order of the score tensors; ``nouns`` the unit
    kind's singular and plural for the summary (default: the built-in kinds', else "unit")."""
    usable: dict[str, dict[str, DefinitionResult]] = {kind: {} for kind in KINDS}
    excluded: dict[str, str] = {}
    for name, result in results.items():
        status, reason = definition_status(result)
        if status == "ok":
            usable.setdefault(result.kind, {})[name] = result
        else:
            excluded[name] = f"{status.replace('_', ' ')}: {reason}"
    behavioral, mechanistic = usable["behavioral"], usable["mechanistic"]
    if not behavioral or not mechanistic:
        note = _missing_note(results, behavioral, mechanistic, excluded)
        summary = _one_sided_summary(concept, nouns or unit, results, names, note)
        return ConceptOverlap(concept, unit, None, [], [], {}, {}, excluded, note, summary, nouns)
    shape = next(iter(behavioral.values())).members.shape  # type: ignore[union-attr]
    union = _compare(behavioral, mechanistic, names, shape)
    pairs = [
        _compare({b: b_result}, {m: m_result}, names, shape)
        for b, b_result in behavioral.items()
        for m, m_result in mechanistic.items()
    ]
    sensitivity = _sensitivity(behavioral, mechanistic, shape, factors)
    divergences, undetermined = _divergences(union, behavioral, mechanistic, names)
    analysis = ConceptOverlap(
        concept, unit, union, pairs, sensitivity, divergences, undetermined, excluded, None, "", nouns
    )
    analysis.summary = _summary(analysis, names)
    return analysis


def _missing_note(
    results: dict[str, DefinitionResult],
    behavioral: dict[str, DefinitionResult],
    mechanistic: dict[str, DefinitionResult],
    excluded: dict[str, str],
) -> str:
    parts = []
    for kind, usable in (("behavioral", behavioral), ("mechanistic", mechanistic)):
        if usable:
            continue
        written = [name for name, result in results.items() if result.kind == kind]
        if not written:
            parts.append(f"it has no {kind} definition")
        else:
            why = "; ".join(f"{name} {_clause(excluded[name])}" for name in written)
            parts.append(f"no {kind} definition could be evaluated ({why})")
    return "No overlap: " + " and ".join(parts) + "."


# --- plain language ------------------------------------------------------------------------------------------


Nouns = str | tuple[str, str]  # a unit kind's name, or its (singular, plural)


def _nouns(unit: Nouns) -> tuple[str, str]:
    if isinstance(unit, tuple):
        return unit
    return UNIT_NOUNS.get(unit, ("unit", "units"))


def _label(concept: str, unit: Nouns) -> tuple[str, str] | None:
    """``("an induction head", "induction heads")`` when the concept's name ends in its unit noun."""
    words = concept.replace("_", " ")
    singular, _ = _nouns(unit)
    if not words.endswith(singular):
        return None
    article = "an" if words[0] in "aeiou" else "a"
    return f"{article} {words}", f"{words}s"


def _listing(units: Sequence[str], limit: int = LISTED_UNITS) -> str:
    shown = ", ".join(units[:limit])
    return shown + (f", and {len(units) - limit} more" if len(units) > limit else "")


def _count(n: int, unit: Nouns) -> str:
    singular, plural = _nouns(unit)
    return f"{n} {singular if n == 1 else plural}"


def _divergences(
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
            which = [name for name, result in admitting.items() if bool(result.members.flatten()[i])]  # type: ignore[union-attr]
            by = f" ({', '.join(which)})" if len(admitting) > 1 else ""
            failures = []
            for name, result in other.items():
                why = _why_not(result, unit, i)
                failures.append(f"{name} ({why})" if why else name)
            divergences[unit] = f"{phrase}{by} but fails " + " and ".join(failures)
    members = {
        kind: _union(side.values(), union_shape(side))
        for kind, side in (("behavioral", behavioral), ("mechanistic", mechanistic))
    }
    open_: dict[int, list[str]] = {}
    for kind, side in (("behavioral", behavioral), ("mechanistic", mechanistic)):
        for name, result in side.items():
            mask = _undetermined(result) & ~members[kind]
            for i in torch.nonzero(mask.flatten()).flatten().tolist():
                open_.setdefault(i, []).append(f"{kind} {name}: {_why_not(result, names[i], i)}")
    undetermined = {names[i]: "; ".join(reasons) for i, reasons in sorted(open_.items())}
    return divergences, undetermined


def union_shape(side: dict[str, DefinitionResult]) -> torch.Size:
    return next(iter(side.values())).members.shape  # type: ignore[union-attr]


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


def _summary(analysis: ConceptOverlap, names: Sequence[str]) -> str:
    union = analysis.union
    assert union is not None
    unit: Nouns = analysis.nouns or analysis.unit
    label = _label(analysis.concept, unit)
    concept_words = analysis.concept.replace("_", " ")
    parts = []
    n_both = len(union.both)
    listed = f" ({_listing(union.both)})" if union.both else ""
    if label:
        one, many = label
        if n_both == 0:
            parts.append(f"No {_nouns(unit)[0]} is {one} in both senses.")
        elif n_both == 1:
            parts.append(f"1 {_nouns(unit)[0]} is {one} in both senses{listed}.")
        else:
            parts.append(f"{_count(n_both, unit)} are {many} in both senses{listed}.")
    else:
        verb = "meet" if n_both > 1 else "meets"
        subject = f"No {_nouns(unit)[0]}" if n_both == 0 else _count(n_both, unit)
        parts.append(
            f"{subject} {verb} both the behavioral and the mechanistic definitions of {concept_words}{listed}."
        )
    for units, side in ((union.behavioral_only, "behavioral"), (union.mechanistic_only, "mechanistic")):
        detailed = [f"{u} {analysis.divergences[u]}" for u in units[:DETAILED_UNITS]]
        if detailed:
            parts.append("; ".join(detailed) + ".")
        rest = units[DETAILED_UNITS:]
        if rest:
            noun = _nouns(unit)[0 if len(rest) == 1 else 1]
            verb = "is" if len(rest) == 1 else "are"
            parts.append(f"{len(rest)} more {noun} {verb} {side} only ({_listing(rest)}).")
    if union.neither_count and (n_both or union.behavioral_only or union.mechanistic_only):
        verb = "is" if union.neither_count == 1 else "are"
        parts.append(f"The other {_count(union.neither_count, unit)} {verb} neither.")
    elif union.neither_count:
        parts.append(f"None of the {_count(union.neither_count, unit)} is admitted by either kind.")
    if union.jaccard is None:
        parts.append(f"Jaccard is undefined ({union.undefined.get('jaccard', '')}).")
    else:
        parts.append(f"Jaccard {_fmt(union.jaccard)}.{_range_text(analysis.sensitivity)}")
    if union.spearman is not None:
        parts.append(
            f"The primary scores' rank correlation is {_fmt(union.spearman)} over {_count(union.spearman_units, unit)}."
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


def _one_sided_summary(
    concept: str, unit: Nouns, results: dict[str, DefinitionResult], names: Sequence[str], note: str
) -> str:
    parts = [note]
    for name, result in results.items():
        status, reason = definition_status(result)
        if status == "ok":
            members = _units(result.members, names)  # type: ignore[arg-type]
            listed = f" ({_listing(members)})" if members else ""
            parts.append(f"{name} ({result.kind}) admits {_count(len(members), unit)}{listed}.")
        elif status == "errored":
            parts.append(f"{name} ({result.kind}) errored: {_clause(reason or '')}.")
    return " ".join(parts)
