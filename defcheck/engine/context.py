"""What the runner hands a checker: the model, the validated parameters, the probe and its activations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from defcheck._lazy import torch
from defcheck.diagnostics import DefcheckError
from defcheck.engine.probe_data import ProbeBatch
from defcheck.engine.units import Units
from defcheck.models.view import ModelView

T = TypeVar("T")


@dataclass
class CheckContext:
    """Everything a checker's ``score(context)`` may use.

    ``model`` is what the model loader returned: a :class:`~defcheck.models.ModelView` for a transformer, or
    another plugin's model object (a set of policies, say), which the checkers of that plugin understand.
    ``units`` are the units of the concept's kind in that model (:class:`~defcheck.engine.units.Units`: the score
    shape and every unit's address); a checker returns one score per unit, in that shape.
    ``activations`` holds the hook activations the checker asked for (via ``Checker.activations``) on the
    probe's tokens, from the one forward pass shared by every checker on that probe; ``logits`` the model's
    logits there. ``related`` maps each ``with:`` definition id to a boolean mask of its members, in the shape
    of that definition's own unit kind (``[n_layers, n_heads]`` for heads), and ``related_scores`` to its primary
    scores (its first criterion's; NaN where undefined), for checkers that weigh partners. ``memo`` is shared by
    all checkers in a run, for work worth doing once.
    For a streamed checker (``Checker.streamed``), ``rows`` is the slice of the probe's sequences that the
    current batch holds (None for the whole probe), ``full_probe`` the whole probe (``probe`` is the batch's
    part of it), and ``prepared`` the results of its ``prepare`` pass.
    """

    model: ModelView | Any
    params: Any
    probe: ProbeBatch | None = None
    logits: torch.Tensor | None = None
    activations: dict[str, torch.Tensor] = field(default_factory=dict)
    related: dict[str, torch.Tensor] = field(default_factory=dict)
    related_scores: dict[str, torch.Tensor] = field(default_factory=dict)
    seed: int = 0
    memo: dict[str, Any] = field(default_factory=dict)
    rows: slice | None = None
    prepared: list[Any] = field(default_factory=list)
    units: Units | None = None
    full_probe: ProbeBatch | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape the scores must have: the concept's unit kind in this model (heads if unknown)."""
        if self.units is not None:
            return self.units.shape
        return (self.model.n_layers, self.model.n_heads)

    def unit_names(self) -> list[str]:
        """Every unit's address, in the flattened order of the scores (for ``Scores.mark_undefined``)."""
        return list(self.units.names) if self.units is not None else self.model.unit_names()

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per run (and model) under ``key``; later calls return the stored value."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def activation(self, name: str) -> torch.Tensor:
        try:
            return self.activations[name]
        except KeyError:
            raise KeyError(f"activation '{name}' was not requested by the checker's `activations`") from None

    def stacked(self, template: str) -> torch.Tensor:
        """Activations of every layer stacked on a new first axis, e.g. ``blocks.{}.attn.hook_pattern``."""
        return torch.stack([self.activation(template.format(layer)) for layer in range(self.model.n_layers)])

    def related_mask(self) -> torch.Tensor:
        """The union of the members of every ``with:`` definition (which must all have this concept's shape;
        read ``related`` for targets of other unit kinds)."""
        mask = torch.zeros(self.shape, dtype=torch.bool)
        for target, members in self.related.items():
            if tuple(members.shape) != tuple(mask.shape):
                raise DefcheckError(
                    f"the with: target '{target}' has units of shape {tuple(members.shape)}, not {tuple(mask.shape)}; "
                    "a checker relating units of different kinds reads context.related"
                )
            mask |= members
        return mask
