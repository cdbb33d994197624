"""Threshold sensitivity of the overlap: members re-selected from the stored criterion scores with every
threshold scaled (``threshold.scaled(f)``) and recombined with ``all``/``any``. Nothing is recomputed, so the
members of ``with:`` targets stay as they were in the run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from defcheck.engine.metrics import jaccard
from defcheck.engine.results import DefinitionResult, members_of, scored

FACTORS: tuple[float, ...] = (0.75, 0.9, 1.0, 1.1, 1.25)
"""Threshold scale factors of the sensitivity table (1.0 is the run's own thresholds)."""


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


def members(result: DefinitionResult, factor: float = 1.0) -> torch.Tensor:
    """The definition's members with every threshold scaled by ``factor`` (its members as run for 1.0)."""
    if factor == 1.0:
        return members_of(result)
    passed = [c.threshold.scaled(factor).select(scored(c)[0].values) for c in result.criteria]
    stacked = torch.stack(passed)
    return stacked.all(0) if result.combinator == "all" else stacked.any(0)


def union(results: Iterable[DefinitionResult], shape: torch.Size, factor: float = 1.0) -> torch.Tensor:
    """The units any of ``results`` admits (thresholds scaled by ``factor``)."""
    mask = torch.zeros(shape, dtype=torch.bool)
    for result in results:
        mask |= members(result, factor)
    return mask


def flat(mask: torch.Tensor) -> set[int]:
    """The flat indices of the units in ``mask``."""
    return set(torch.nonzero(mask.flatten()).flatten().tolist())


def sensitivity(
    behavioral: dict[str, DefinitionResult],
    mechanistic: dict[str, DefinitionResult],
    shape: torch.Size,
    factors: Sequence[float],
) -> list[SensitivityRow]:
    """One row per factor: Jaccard of the unions with every threshold scaled, or only one kind's."""
    rows = []
    b_base, m_base = flat(union(behavioral.values(), shape)), flat(union(mechanistic.values(), shape))
    for factor in factors:
        b = flat(union(behavioral.values(), shape, factor))
        m = flat(union(mechanistic.values(), shape, factor))
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
