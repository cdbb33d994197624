"""The overlap analysis: where a concept's behavioral and mechanistic definitions agree and where they diverge.

For every concept with at least one usable definition of each kind, this compares

* each behavioral x mechanistic **pair** of definitions, and
* the **union** of each kind (a unit is "behavioral" if any behavioral definition admits it),

by the units in both / behavioral only / mechanistic only / neither, Jaccard, precision and recall of the
behavioral set against the mechanistic one (the mechanistic set taken as the reference), and the Spearman rank
correlation of the two primary scores (a definition's primary score is that of its first criterion)
(:mod:`defcheck.engine.metrics`). A **threshold sensitivity** table (:mod:`defcheck.engine.sensitivity`)
re-selects members from the stored criterion scores with every threshold scaled. Each concept also gets a
plain-language **narrative** (:mod:`defcheck.engine.narrative`) naming, for every unit on one side only, the
criterion that kept it off the other side, with its score and threshold.

A concept without a usable definition of one kind (none written, none selected, or all errored or not
applicable) still gets an overlap: an empty one whose ``reason`` says why (``to_dict`` never gives ``None``).

Conventions (also in docs/report-format.md): a metric whose value is undefined is ``None`` and its reason is in
``undefined`` (Jaccard of two empty sets, precision with no behavioral member, Spearman over fewer than 3 units
or a constant score). Errored and not-applicable definitions are left out of the comparison and listed in
``excluded`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from defcheck.engine.metrics import MIN_SPEARMAN_UNITS, average_ranks, jaccard, precision_recall, spearman
from defcheck.engine.narrative import (
    Nouns,
    divergences,
    missing_note,
    narrative,
    one_sided_narrative,
    units_of,
)
from defcheck.engine.results import DefinitionResult, RunResult, definition_status, members_of, scored
from defcheck.engine.sensitivity import FACTORS, SensitivityRow, sensitivity, union

if TYPE_CHECKING:
    from defcheck.language.registry import Registry

__all__ = [
    "FACTORS",
    "KINDS",
    "METRICS",
    "MIN_SPEARMAN_UNITS",
    "ConceptOverlap",
    "SensitivityRow",
    "SetOverlap",
    "analyze",
    "average_ranks",
    "concept_overlap",
    "definition_status",
    "jaccard",
    "precision_recall",
    "spearman",
    "unit_names",
]

KINDS = ("behavioral", "mechanistic")
METRICS = ("jaccard", "precision", "recall", "spearman")
DEFAULT_NOUNS: Nouns = ("unit", "units")  # a run built without unit kinds: UnitKind's own defaults


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

    @classmethod
    def empty(cls, behavioral: list[str], mechanistic: list[str], reason: str) -> SetOverlap:
        """Nothing compared: no units in any category, every metric undefined for ``reason``."""
        why = reason.strip().rstrip(".")
        return cls(behavioral, mechanistic, [], [], [], 0, None, None, None, None, 0, dict.fromkeys(METRICS, why))

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
    narrative: str
    nouns: Nouns = DEFAULT_NOUNS  # the unit kind's singular and plural
    usable: dict[str, list[str]] = field(default_factory=dict)  # kind -> its usable definitions

    @property
    def summary(self) -> str:
        """The narrative, by its name before 0.2."""
        return self.narrative

    def to_dict(self) -> dict[str, Any]:
        """The ``overlap`` object of the JSON report: empty, with its ``reason``, when there is nothing to compare."""
        compared = self.union
        if compared is None:
            reason = self.note or "No overlap."
            compared = SetOverlap.empty(self.usable.get(KINDS[0], []), self.usable.get(KINDS[1], []), reason)
        return {
            **compared.to_dict(),
            "pairs": [pair.to_dict() for pair in self.pairs],
            "sensitivity": [row.to_dict() for row in self.sensitivity],
            "divergences": dict(self.divergences),
            "undetermined": dict(self.undetermined),
            "excluded": dict(self.excluded),
            "reason": self.note,
            "narrative": self.narrative,
        }


def _compare(
    behavioral: dict[str, DefinitionResult],
    mechanistic: dict[str, DefinitionResult],
    names: Sequence[str],
    shape: torch.Size,
) -> SetOverlap:
    b_mask, m_mask = union(behavioral.values(), shape), union(mechanistic.values(), shape)
    b, m = set(units_of(b_mask, names)), set(units_of(m_mask, names))
    value, why = jaccard(b, m)
    precision, recall, undefined = precision_recall(b, m)
    if why:
        undefined["jaccard"] = why
    if len(behavioral) == 1 and len(mechanistic) == 1:
        (b_result,) = behavioral.values()
        (m_result,) = mechanistic.values()
        rho, used, reason = spearman(scored(b_result.criteria[0])[0].values, scored(m_result.criteria[0])[0].values)
    else:
        rho, used, reason = None, 0, "a union of several definitions has no single score; see the pairs"
    if reason:
        undefined["spearman"] = reason
    return SetOverlap(
        behavioral=list(behavioral),
        mechanistic=list(mechanistic),
        both=units_of(b_mask & m_mask, names),
        behavioral_only=units_of(b_mask & ~m_mask, names),
        mechanistic_only=units_of(~b_mask & m_mask, names),
        neither_count=int((~b_mask & ~m_mask).sum()),
        jaccard=value,
        precision=precision,
        recall=recall,
        spearman=rho,
        spearman_units=used,
        undefined=dict(sorted(undefined.items())),
    )


def analyze(
    run: RunResult,
    registry: Registry | None = None,
    *,
    factors: Sequence[float] = FACTORS,
) -> dict[str, ConceptOverlap]:
    """The overlap analysis of every concept in ``run`` (concepts sorted by name).

    Each concept's unit kind, unit addresses and nouns come from ``run.units``; for a run built by hand without
    them, the kind from ``registry`` (optional) and the model's head addresses. With ``registry``, a concept
    whose definitions of one kind were left out of the run says so (they were not selected).
    """
    grouped: dict[str, dict[str, DefinitionResult]] = {}
    for definition_id, result in run.definitions.items():
        concept, _, name = definition_id.partition(".")
        grouped.setdefault(concept, {})[name] = result
    files = registry.files if registry is not None else {}
    out = {}
    for concept in sorted(grouped):
        units = run.units.get(concept)
        unit = units.kind if units is not None else "attention_head"
        file = files.get(concept)
        if units is None and file is not None:
            unit = file.concept.unit
        unselected = {}
        if file is not None:
            unselected = {n: d.kind for n, d in file.concept.definitions.items() if n not in grouped[concept]}
        nouns = (units.singular, units.plural) if units is not None else DEFAULT_NOUNS
        results = dict(sorted(grouped[concept].items()))
        names = unit_names(run, concept)
        out[concept] = concept_overlap(
            concept, results, names, unit=unit, factors=factors, nouns=nouns, unselected=unselected
        )
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
    nouns: Nouns = DEFAULT_NOUNS,
    unselected: Mapping[str, str] | None = None,
) -> ConceptOverlap:
    """The overlap analysis of one concept: ``results`` maps each definition's name (within the concept) to
    its result; ``names`` are the unit addresses in the flat order of the score tensors; ``nouns`` the unit
    kind's singular and plural for the narrative; ``unselected`` the concept's definitions left out of the run
    (name -> kind), named when a kind has none."""
    usable: dict[str, dict[str, DefinitionResult]] = {kind: {} for kind in KINDS}
    excluded: dict[str, str] = {}
    for name, result in results.items():
        status, reason = definition_status(result)
        if status == "ok":
            usable.setdefault(result.kind, {})[name] = result
        else:
            excluded[name] = f"{status.replace('_', ' ')}: {reason}"
    behavioral, mechanistic = usable["behavioral"], usable["mechanistic"]
    names_by_kind = {kind: list(usable[kind]) for kind in KINDS}
    if not behavioral or not mechanistic:
        note = missing_note(results, behavioral, mechanistic, excluded, unselected)
        text = one_sided_narrative(concept, nouns, results, names, note)
        return ConceptOverlap(concept, unit, None, [], [], {}, {}, excluded, note, text, nouns, names_by_kind)
    shape = members_of(next(iter(behavioral.values()))).shape
    compared = _compare(behavioral, mechanistic, names, shape)
    pairs = [
        _compare({b: b_result}, {m: m_result}, names, shape)
        for b, b_result in behavioral.items()
        for m, m_result in mechanistic.items()
    ]
    rows = sensitivity(behavioral, mechanistic, shape, factors)
    diverging, undetermined = divergences(compared, behavioral, mechanistic, names)
    analysis = ConceptOverlap(
        concept, unit, compared, pairs, rows, diverging, undetermined, excluded, None, "", nouns, names_by_kind
    )
    analysis.narrative = narrative(analysis)
    return analysis
