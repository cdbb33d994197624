"""The units of one concept on one model: a unit kind (:class:`~defcheck.hooks.declarations.UnitKind`) applied
to a model.

The runner resolves every concept's unit kind once per model into :class:`Units` (the score shape, every unit's
address in the flattened order of the scores, and the grid reports draw, if any), checks that the plugin's
answers agree with each other, and hands the result to checkers (``CheckContext.units``), the overlap
analysis and the report. Nothing here knows what a head or a neuron is: that is the unit kinds' business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from defcheck.diagnostics import DefcheckError
from defcheck.engine.scores import NotApplicable
from defcheck.hooks.containment import PluginEscape, contain
from defcheck.hooks.declarations import UnitKind


@dataclass(frozen=True)
class Units:
    """Every unit of one kind in one model.

    ``shape`` is the shape of a checker's scores; ``names`` the address of each unit in their flattened
    row-major order; ``rows`` and ``columns`` label a heatmap (``len(rows) * len(columns) == len(names)``,
    unit ``names[r * len(columns) + c]`` in row ``r``, column ``c``) or are ``None`` where the units are shown
    as a table. ``axes`` names the dimensions of ``shape``; ``singular`` and ``plural`` are the nouns reports use.
    """

    kind: str
    shape: tuple[int, ...]
    names: tuple[str, ...]
    rows: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    axes: tuple[str, ...] = ()
    singular: str = "unit"
    plural: str = "units"

    @property
    def count(self) -> int:
        return len(self.names)

    def shape_text(self) -> str:
        """``(2, 8) (layers x heads)`` for messages."""
        axes = f" ({' x '.join(self.axes)})" if len(self.axes) == len(self.shape) and self.axes else ""
        return f"{self.shape}{axes}"

    def grid_json(self) -> dict[str, list[str]] | None:
        """The report's ``grid`` object of a concept: row and column labels, or ``None`` for a table."""
        if self.rows is None or self.columns is None:
            return None
        return {"rows": list(self.rows), "columns": list(self.columns)}


def resolve_units(kind: UnitKind, model: Any) -> Units:
    """The units of ``kind`` in ``model``.

    Raises :class:`~defcheck.engine.scores.NotApplicable` (from the unit kind) when the model has no such units, and
    :class:`~defcheck.diagnostics.DefcheckError` naming the unit kind when its answers contradict each other
    (a plugin bug: the names do not match the shape, or the grid does not hold every unit).
    """
    try:
        shape = tuple(int(size) for size in kind.shape(model))
        names = tuple(str(name) for name in kind.names(model))
        grid = kind.grid(model) if kind.grid is not None else None
    except NotApplicable:
        raise
    except BaseException as raised:  # sys.exit() included; a user's Ctrl-C is raised again
        error = contain(raised)
        what = str(error) if isinstance(error, PluginEscape) else f"{type(error).__name__}: {error}"
        raise DefcheckError(f"the unit kind '{kind.name}' failed on this model: {what}") from error
    if not shape or any(size < 0 for size in shape):
        raise DefcheckError(
            f"the unit kind '{kind.name}' gave the score shape {shape}; it needs at least one dimension"
        )
    count = math.prod(shape)
    if len(names) != count:
        raise DefcheckError(
            f"the unit kind '{kind.name}' names {len(names)} units for a score shape of {shape} ({count} units)"
        )
    if len(set(names)) != len(names):
        raise DefcheckError(f"the unit kind '{kind.name}' gives two units the same name")
    rows = columns = None
    if grid is not None:
        rows, columns = (tuple(str(label) for label in labels) for labels in grid)
        if len(rows) * len(columns) != count:
            raise DefcheckError(
                f"the unit kind '{kind.name}' lays out {len(rows)} x {len(columns)} cells for {count} units"
            )
    return Units(kind.name, shape, names, rows, columns, tuple(kind.axes), kind.singular, kind.plural)
