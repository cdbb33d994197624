"""The shape of the JSON report document (docs/report-format.md) as typed dictionaries, and the read-back of
documents written before its latest additions.

These are the exact keys of the JSON: ``Report.data`` is a :class:`ReportDocument`, and every format reads it
through these types. :func:`upgrade` gives an older version-1 document the current shape (the concept's
``summary`` was once called ``description``, the overlap narrative was the concept's ``summary``, a concept
without an overlap had ``null``, and the unit nouns were not written), so that a saved report re-renders.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "ConceptEntry",
    "CriterionEntry",
    "DefinitionEntry",
    "GridEntry",
    "ModelEntry",
    "OverlapEntry",
    "OverlapStability",
    "PairEntry",
    "ProbeEntry",
    "RankRule",
    "ReportDocument",
    "SensitivityEntry",
    "StabilityEntry",
    "Threshold",
    "empty_overlap",
    "upgrade",
]

METRICS = ("jaccard", "precision", "recall", "spearman")


class RankRule(TypedDict, total=False):
    """A rank threshold: ``{"top_k": 3, "min": 0.1}``."""

    top_k: int
    min: float | None


Threshold = str | RankRule  # ">= 0.4", or a rank rule


class ModelEntry(TypedDict, total=False):
    """The ``model`` object: its name and what is known of its shape, plus what the caller added."""

    name: str
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    model_names: list[str]
    positional: Any
    normalization: Any
    attn_only: Any
    tokens: dict[str, Any] | None
    info: dict[str, Any]
    reference: str


class _ProbeFields(TypedDict):
    name: str
    params: dict[str, Any]
    sequences: int | None
    positions: int | None
    bos: bool


class ProbeEntry(_ProbeFields, total=False):
    """One distinct probe of the run, by its key in ``probes``; ``note`` only where the probe adapted to the
    model (e.g. shortened to fit its context)."""

    note: str


# One criterion's result ("with" is a keyword, hence the functional form).
_CriterionFields = TypedDict(
    "_CriterionFields",
    {
        "checker": str,
        "params": dict[str, Any],
        "probe": str | None,
        "with": list[str],
        "threshold": Threshold,
        "scores": dict[str, float | None] | None,
        "passed": list[str] | None,
        "undefined": dict[str, str],
        "not_applicable": str | None,
        "evidence": dict[str, Any],
        "error": str | None,
    },
)


class CriterionEntry(_CriterionFields, total=False):
    """One criterion's result; ``probe_note`` only where its probe adapted to the model (the probe's ``note``);
    ``chance`` what a null unit scores on the same probe (``None``: unknown; missing in reports before it)."""

    probe_note: str
    chance: float | None
    margins: dict[str, float | None] | None  # --seeds K >= 2 or --bootstrap B: distance from the threshold in sds
    sd: dict[str, float | None] | None  # the score's sd across the seeds (--seeds K), else its bootstrap SE


class _DefinitionFields(TypedDict):
    """One evaluated definition."""

    kind: str
    combinator: str
    source: str | None
    summary: str | None
    status: str  # ok, errored, not_applicable
    members: list[str] | None
    scores: dict[str, float | None] | None
    undefined: dict[str, str]
    criteria: list[CriterionEntry]
    not_applicable: str | None
    error: str | None
    file: str | None
    line: int | None


class StabilityEntry(TypedDict):
    """A definition's stability across the probe seeds (``--seeds K``): each unit's share of seeds as a member
    (units never a member left out) and the unstable units (a share strictly between 0 and 1)."""

    share: dict[str, float]
    unstable: list[str]


class DefinitionEntry(_DefinitionFields, total=False):
    """One evaluated definition; ``stability`` only with ``--seeds K`` (K >= 2), ``None`` where some seed did not
    evaluate it."""

    stability: StabilityEntry | None


class PairEntry(TypedDict):
    """The comparison of a behavioral and a mechanistic set of units (a pair, or the union of each kind)."""

    behavioral: list[str]
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
    undefined: dict[str, str]


class SensitivityEntry(TypedDict):
    """One row of the threshold sensitivity table."""

    factor: float
    jaccard: float | None
    jaccard_behavioral_scaled: float | None
    jaccard_mechanistic_scaled: float | None
    behavioral: int
    mechanistic: int
    both: int
    thresholds: dict[str, list[str]]
    undefined: dict[str, str]


class _OverlapFields(PairEntry):
    """A concept's overlap: the union of each kind compared, with the pairs, the sensitivity and the reasons.

    ``reason`` is ``None`` when the kinds were compared; otherwise it says why not (a kind has no definition,
    none was selected, or none could be evaluated) and the overlap is empty: no units in any category, every
    metric ``None``. ``narrative`` is the plain-language paragraph either way.
    """

    pairs: list[PairEntry]
    sensitivity: list[SensitivityEntry]
    divergences: dict[str, str]
    undetermined: dict[str, str]
    excluded: dict[str, str]
    reason: str | None
    narrative: str


class OverlapStability(TypedDict):
    """A concept's overlap across the probe seeds: the union Jaccard's spread, the units whose category changes
    between seeds, and the first seed's disagreements split by that."""

    seeds: int
    jaccard: dict[str, float | None]  # min, median, max
    unstable: list[str]
    stable_disagreements: list[str]
    unstable_disagreements: list[str]


class OverlapBootstrap(TypedDict):
    """A concept's overlap over resamples of the probes' sequences (``--bootstrap B``): the union Jaccard's
    percentile interval at ``level`` (``None`` where the kinds were not compared or it is never defined), the
    disagreements within noise, and the criteria kept fixed in every resample, with why."""

    replicates: int
    level: float
    jaccard: list[float] | None  # [low, high]
    within_noise: list[str]  # units on one side only in fewer than `level` of the resamples
    fixed: list[str]


class OverlapEntry(_OverlapFields, total=False):
    """A concept's overlap (see :class:`_OverlapFields`); ``stability`` only with ``--seeds K`` (K >= 2), ``None``
    where the kinds were not compared in every seed; ``bootstrap`` only with ``--bootstrap B``."""

    stability: OverlapStability | None
    bootstrap: OverlapBootstrap


class GridEntry(TypedDict):
    """Row and column labels of a concept's heatmap."""

    rows: list[str]
    columns: list[str]


class ConceptEntry(TypedDict):
    """One concept: its text from the concept file, its units, definitions and overlap."""

    unit: str
    unit_noun: str
    unit_plural: str
    units: list[str]
    grid: GridEntry | None
    summary: str | None
    references: list[str]
    definitions: dict[str, DefinitionEntry]
    overlap: OverlapEntry
    note: str | None
    file: str | None
    line: int | None


class _Document(TypedDict):
    report_version: int
    model: ModelEntry
    seed: int
    probes: dict[str, ProbeEntry]
    concepts: dict[str, ConceptEntry]
    skipped: dict[str, str]


class ReportDocument(_Document, total=False):
    """The whole document; ``checks`` only with expectations or a baseline, ``sweep`` only from a sweep, ``seeds``
    (the probe seeds) only with ``--seeds K``, K >= 2, ``bootstrap`` (the resamples per probe) only with
    ``--bootstrap B``, B >= 1."""

    checks: dict[str, Any]
    sweep: dict[str, Any]
    seeds: list[int]
    bootstrap: int


def empty_overlap(
    reason: str, narrative: str, usable: dict[str, list[str]] | None = None, excluded: dict[str, str] | None = None
) -> OverlapEntry:
    """The overlap of a concept whose kinds were not compared, for ``reason`` (``usable``: each kind's usable
    definitions; ``excluded``: the definitions left out, with why)."""
    why = reason.strip().rstrip(".")
    return {
        "behavioral": list((usable or {}).get("behavioral", [])),
        "mechanistic": list((usable or {}).get("mechanistic", [])),
        "both": [],
        "behavioral_only": [],
        "mechanistic_only": [],
        "neither_count": 0,
        "jaccard": None,
        "precision": None,
        "recall": None,
        "spearman": None,
        "spearman_units": 0,
        "undefined": dict.fromkeys(METRICS, why),
        "pairs": [],
        "sensitivity": [],
        "divergences": {},
        "undetermined": {},
        "excluded": dict(excluded or {}),
        "reason": reason,
        "narrative": narrative,
    }


def upgrade(data: dict[str, Any]) -> None:
    """``data`` (a parsed version-1 document) in the current shape, changed in place: a concept's
    ``description`` becomes its ``summary`` and its old ``summary`` the overlap's ``narrative``; a ``null``
    overlap becomes an empty one whose ``reason`` is the concept's ``note``; missing unit nouns fall back to
    the unit kind's name. A current document is left as it is."""
    for concept in (data.get("concepts") or {}).values():
        if not isinstance(concept, dict):
            continue
        narrative = ""
        if "description" in concept:
            narrative = concept.get("summary") or ""
            concept["summary"] = concept.pop("description")
        overlap = concept.get("overlap")
        if overlap is None:
            reason = concept.get("note") or "No overlap."
            usable: dict[str, list[str]] = {"behavioral": [], "mechanistic": []}
            excluded = {}
            for name, definition in (concept.get("definitions") or {}).items():
                status = definition.get("status")
                if status == "ok":
                    usable.setdefault(definition.get("kind"), []).append(name)
                elif status == "errored":
                    excluded[name] = f"errored: {definition.get('error')}"
                elif status == "not_applicable":
                    excluded[name] = f"not applicable: {definition.get('not_applicable')}"
            concept["overlap"] = empty_overlap(reason, narrative or reason, usable, excluded)
        elif isinstance(overlap, dict):
            overlap.setdefault("reason", None)
            overlap.setdefault("narrative", narrative)
        kind = str(concept.get("unit") or "unit")
        concept.setdefault("unit_noun", kind)
        concept.setdefault("unit_plural", kind)
