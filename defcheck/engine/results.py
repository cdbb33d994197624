"""What an evaluation returns: each criterion's and definition's result on one model, and the run's whole result.

The runner (:mod:`defcheck.engine.runner`) fills these in; the overlap analysis and the report read them. They
are also importable from :mod:`defcheck.engine.runner`, where they were defined before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from defcheck.engine.probe_data import ProbeBatch
from defcheck.engine.scores import Scores
from defcheck.engine.units import Units
from defcheck.language.thresholds import Threshold
from defcheck.models.view import ModelView

if TYPE_CHECKING:
    from defcheck.engine.bootstrap import Bootstrap
    from defcheck.engine.criterion_tasks import Resample
    from defcheck.engine.stability import SeedRuns


@dataclass
class CriterionResult:
    """One criterion's scores over all units, which units passed, or the error that stopped it; ``chance`` is
    what a null unit scores on the same probe (:mod:`defcheck.engine.chance`), ``None`` where unknown."""

    checker: str
    threshold: Threshold
    probe: str | None
    scores: Scores | None = None
    passed: torch.Tensor | None = None
    error: str | None = None
    seconds: float = 0.0
    chance: float | None = None
    resample: Resample | None = None  # how --bootstrap rescores a resample of the probe (streamed checkers)


@dataclass
class DefinitionResult:
    """A definition evaluated on a model: its primary scores, members, and each criterion's result."""

    id: str
    kind: str
    combinator: str
    criteria: list[CriterionResult] = field(default_factory=list)
    members: torch.Tensor | None = None
    error: str | None = None

    @property
    def scores(self) -> Scores | None:
        """The primary score: that of the first criterion."""
        return self.criteria[0].scores if self.criteria else None


@dataclass
class RunResult:
    """Every definition's result on one model, in evaluation order, plus timings.

    ``units`` holds each evaluated concept's units (its unit kind on this model); ``skipped`` each concept that
    was not evaluated because the model has no units of its kind, with the reason. ``stability`` holds the runs
    of the other probe seeds (``--seeds K``, :mod:`defcheck.engine.stability`), ``None`` for one seed;
    ``bootstrap`` the resamples of the probes' sequences (``--bootstrap B``, :mod:`defcheck.engine.bootstrap`).
    """

    model: ModelView | Any
    seed: int
    definitions: dict[str, DefinitionResult]
    probes: dict[str, ProbeBatch]
    timings: dict[str, float] = field(default_factory=dict)
    units: dict[str, Units] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    stability: SeedRuns | None = None
    bootstrap: Bootstrap | None = None


def scored(criterion: CriterionResult) -> tuple[Scores, torch.Tensor]:
    """A criterion's scores and passed mask, which every criterion of a definition that did not error has."""
    assert criterion.scores is not None and criterion.passed is not None, f"{criterion.checker} has no scores"
    return criterion.scores, criterion.passed


def members_of(result: DefinitionResult) -> torch.Tensor:
    """The members of a definition that did not error (the overlap compares only those)."""
    assert result.members is not None, f"{result.id} errored"
    return result.members


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
