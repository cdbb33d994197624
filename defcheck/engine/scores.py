"""What a checker returns: a score for every unit at once, with reasons where a score is undefined."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from defcheck._lazy import torch


class NotApplicable(Exception):
    """Raised by a probe or checker that does not apply to this model (e.g. no ordinal tokens in its
    vocabulary); the runner reports "not applicable" with the reason instead of an error or a number."""


@dataclass
class Scores:
    """Scores of every unit (for heads: ``[n_layers, n_heads]``); NaN marks an undefined score.

    ``undefined`` maps a unit address (``"1.4"``) to why its score is undefined (e.g. ``0/0: the OV circuit
    writes nothing the unembedding reads``); ``evidence`` maps a unit address to supporting details (e.g. the
    partner head of a composition score); ``not_applicable`` says why the checker does not apply to this
    model at all (then every score is NaN).
    """

    values: torch.Tensor
    undefined: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_applicable: str | None = None

    @classmethod
    def of(cls, result: Scores | torch.Tensor) -> Scores:
        """Accept a bare tensor from a checker as scores without reasons."""
        return result if isinstance(result, Scores) else cls(result)

    @classmethod
    def inapplicable(cls, shape: tuple[int, ...], reason: str) -> Scores:
        return cls(torch.full(shape, float("nan")), not_applicable=reason)

    def mark_undefined(self, mask: torch.Tensor, reason: str, units: list[str]) -> None:
        """Set the scores under ``mask`` to NaN and record ``reason`` for each of those units."""
        self.values = torch.where(mask, torch.full_like(self.values, float("nan")), self.values)
        for index in torch.nonzero(mask.flatten()).flatten().tolist():
            self.undefined.setdefault(units[index], reason)


def safe_ratio(
    numerator: torch.Tensor, denominator: torch.Tensor, eps: float = 1e-9
) -> tuple[torch.Tensor, torch.Tensor]:
    """``numerator / denominator`` with a mask of the entries where the denominator is (near) zero."""
    zero = denominator.abs() <= eps
    return numerator / torch.where(zero, torch.ones_like(denominator), denominator), zero
