"""The HTML report's heatmaps: cells colored by their signed margin to the threshold, on a fixed scale.

The scale, the same on every page:

- A criterion's **margin** is how far a score is from its cut-off, on the side that passes: ``score - cut`` for
  ``>=``/``>``, ``cut - score`` for ``<=``/``<``. A rank rule (``top_k``) has no written cut-off; its cut is the
  midpoint between the lowest member's score and the highest non-member's (or its ``min``).
- The margin is shown **relative to the threshold's own size**: ``margin / |cut|`` (``/ 1`` when the cut is 0), so
  that 0.21-0.33 against ``>= 0.3`` reads as "near the threshold" rather than as a dramatic range. Full color at 1
  (a score twice the cut-off, or 0 for a positive one). Where a criterion carries ``margins`` (``--seeds K``: the
  distance in seed-to-seed standard deviations; ``--bootstrap B``: in bootstrap standard errors), the unit's
  margin is in those instead, full color at :data:`SD_FULL` (pale: within noise); a unit whose ``margins`` entry
  is ``null`` (its score did not vary) keeps the relative scale.
- Members are always blue, non-members always orange, whatever the threshold's direction; the color goes from
  pale (at the threshold, still tinted) to dark (at full color). The side comes from the membership the report
  records, so a unit never shows on the wrong side.
- A definition's grid shows the deciding criterion per unit: the weakest margin of ``all`` criteria, the
  strongest of ``any``; each criterion has its own grid too, with its chance level (``chance``) on the legend.
- Members are ringed (dark outside, white inside, so that it shows on any color) with a corner mark; units whose
  membership changes between seeds (``stability.unstable``) have a dotted outline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from defcheck.report.common import Grid, criterion_text, number, threshold_text, unit_details
from defcheck.report.document import ConceptEntry, CriterionEntry, DefinitionEntry
from defcheck.report.escaping import html_text as escape

__all__ = [
    "SD_FULL",
    "WRAP",
    "cell_number",
    "color",
    "concept_unstable",
    "definition_figure",
    "grid_table",
    "score_cell",
    "unstable_shares",
]

WRAP = 32  # a grid wider than this is cut into lines of WRAP small cells
SD_FULL = 4.0  # margins in standard deviations of the score (--seeds K, --bootstrap B): full color at this many
MEMBER = ((198, 219, 239), (8, 48, 107))  # pale to dark blue
OTHER = ((253, 208, 162), (127, 39, 4))  # pale to dark orange
AXES = {"attention_head": ("L", "H", "layer", "head"), "mlp_neuron": ("L", "N", "layer", "neuron")}

Cell = Callable[[str], str]


@dataclass(frozen=True)
class Cut:
    """A criterion's cut-off in score units, the side that passes (+1: higher), and its size for the scale."""

    value: float
    direction: int

    @property
    def size(self) -> float:
        return abs(self.value) if abs(self.value) > 1e-12 else 1.0


def _value(value: Any) -> float | None:
    """``value`` as a finite float, else ``None`` (``None``, NaN, infinities, booleans, strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def criterion_cut(criterion: CriterionEntry) -> Cut | None:
    """The cut-off of ``criterion`` (a rank rule's from the recorded members), or ``None`` without one."""
    threshold = criterion["threshold"]
    if isinstance(threshold, str):
        op, _, text = threshold.strip().partition(" ")
        try:
            cut = _value(float(text))
        except ValueError:
            return None
        return None if cut is None else Cut(cut, -1 if op.startswith("<") else 1)
    if not isinstance(threshold, Mapping):
        return None
    passed = set(criterion.get("passed") or [])
    values = {u: v for u, raw in (criterion.get("scores") or {}).items() if (v := _value(raw)) is not None}
    inside = [v for u, v in values.items() if u in passed]
    outside = [v for u, v in values.items() if u not in passed]
    floor = _value(threshold.get("min"))
    if inside and outside:
        return Cut((min(inside) + max(outside)) / 2, 1)
    if floor is not None:
        return Cut(floor, 1)
    if inside or outside:
        return Cut(min(inside) if inside else max(outside), 1)
    return None


def chance_level(criterion: CriterionEntry) -> float | None:
    """The criterion's chance level where the report carries one (a number, or ``{"value": ...}``)."""
    raw: Any = criterion.get("chance")
    if isinstance(raw, Mapping):
        raw = raw.get("value", raw.get("mean"))
    return _value(raw)


def _sd_margin(criterion: CriterionEntry, unit: str) -> float | None:
    """The unit's ``margins`` entry (``--seeds K`` or ``--bootstrap B``; positive: passes), where the report has a
    finite one."""
    margins: Any = criterion.get("margins")
    return _value(margins.get(unit)) if isinstance(margins, Mapping) else None


def relative_margin(criterion: CriterionEntry, cut: Cut | None, unit: str, passed: bool) -> float | None:
    """The unit's margin on the color scale (1 = full color), its sign positive exactly when ``passed`` (``-0.0``
    for a unit that fails at the threshold)."""
    sd = _sd_margin(criterion, unit)
    if sd is not None:
        size = abs(sd) / SD_FULL
    else:
        value = _value((criterion.get("scores") or {}).get(unit))
        if cut is None or value is None:
            return None
        size = abs(value - cut.value) / cut.size
    return size if passed else -size


def cell_number(value: Any) -> str:
    """A score short enough for a cell: 2 significant digits, ``≈0`` below 0.001, whole numbers from 100 (the
    cell's title has the exact value)."""
    score = _value(value)
    if score is None:
        return number(value, 2)
    if score != 0 and abs(score) < 1e-3:
        return "≈0"
    return f"{score:.0f}" if abs(score) >= 100 else number(score, 2)


def color(margin: float) -> tuple[str, str]:
    """Background and text color of a cell at ``margin``: blue where its sign is positive (a member; ``+0.0`` at
    the threshold too), orange where negative (``-0.0`` included)."""
    pale, dark = MEMBER if math.copysign(1.0, margin) > 0 else OTHER
    t = min(1.0, abs(margin))
    rgb = [round(lo + (hi - lo) * t) for lo, hi in zip(pale, dark, strict=True)]
    return f"rgb({rgb[0]},{rgb[1]},{rgb[2]})", "#fff" if t > 0.5 else "#000"


def unstable_shares(entry: Mapping[str, Any]) -> dict[str, float | None] | None:
    """The units a definition's (or an overlap's) ``stability`` marks unstable across seeds, with each one's share
    of seeds as a member where known; ``None`` without stability data (a run without ``--seeds``, or a
    definition not evaluated in every seed)."""
    stability: Any = entry.get("stability")
    if not isinstance(stability, Mapping):
        return None
    shares: Any = stability.get("share")
    shares = shares if isinstance(shares, Mapping) else {}
    return {unit: _value(shares.get(unit)) for unit in stability.get("unstable") or [] if isinstance(unit, str)}


def concept_unstable(concept: ConceptEntry) -> set[str] | None:
    """The units whose overlap category changes between seeds (the overlap's ``stability``; else those any
    definition marks unstable), or ``None`` when the report carries no stability data."""
    overlap = unstable_shares(concept["overlap"])
    if overlap is not None:
        return set(overlap)
    found = [unstable_shares(definition) for definition in concept["definitions"].values()]
    marked = [set(units) for units in found if units is not None]
    return set().union(*marked) if marked else None


def _margin_text(criterion: CriterionEntry, cut: Cut | None, unit: str, passed: bool) -> str:
    sd = _sd_margin(criterion, unit)
    verb = "passes" if passed else "fails"
    if sd is not None:
        return f"{verb} by {number(abs(sd), 2)} sd (the score's standard deviation across seeds or resamples)"
    value = _value((criterion.get("scores") or {}).get(unit))
    if cut is None or value is None:
        return "no margin"
    distance = abs(value - cut.value)
    return f"{verb} by {number(distance, 2)} ({number(distance / cut.size, 2)}x the threshold's size)"


def _legend(cut: Cut | None, chance: float | None, sd: bool) -> str:
    """The color scale (low scores left, high right; without a cut, the relative margin) and the chance level,
    marked on it where it is in score units."""
    low, high = (MEMBER, OTHER) if cut is not None and cut.direction < 0 else (OTHER, MEMBER)
    stops = f"rgb{low[1]},rgb{low[0]} 50%,rgb{high[0]} 50%,rgb{high[1]}"
    if cut is None or sd:
        size = f"{SD_FULL:g} sd" if sd else "1x"
        ticks = [f"fails by {size}", "threshold", f"passes by {size}"]
        if cut is not None and cut.direction < 0:
            ticks.reverse()
    else:
        ticks = [number(cut.value - cut.size), f"{number(cut.value)} (cut)", number(cut.value + cut.size)]
    marker = label = ""
    if chance is not None:
        note = ""
        if cut is not None and not sd:
            position = (chance - (cut.value - cut.size)) / (2 * cut.size)
            note = " (off the scale, left)" if position < 0 else " (off the scale, right)" if position > 1 else ""
            left = min(max(position, 0.0), 1.0) * 100
            marker = f'<span class="dc-chance" style="left:{left:.1f}%" title="chance level"></span>'
        label = f'<div class="dc-chance-label">{escape(f"chance {number(chance)}{note}")}</div>'
    labels = "".join(f'<span class="dc-tick">{escape(tick)}</span>' for tick in ticks)
    return (
        f'<div class="dc-scale"><div class="dc-bar" style="background:linear-gradient(to right,{stops})">'
        f'{marker}</div><div class="dc-ticks">{labels}</div>{label}</div>'
    )


def _axes(concept: ConceptEntry) -> tuple[str, str, str, str]:
    return AXES.get(concept.get("unit", ""), ("", "", "row", "column"))


def grid_table(concept: ConceptEntry, grid: Grid, cell: Cell) -> str:
    """The cells of ``grid`` as an HTML table with labelled axes (``L0``, ``H0``); a grid wider than ``WRAP``
    columns in lines of small cells, each line labelled ``ROW:FIRST-LAST``."""
    row_prefix, column_prefix, row_name, column_name = _axes(concept)
    if len(grid.columns) <= WRAP:
        corner = f'<th class="dc-axis" title="{escape(f"rows: {row_name}s, columns: {column_name}s")}">'
        corner += f"{escape(row_name)} \\ {escape(column_name)}</th>"
        header = f"<tr>{corner}" + "".join(f"<th>{escape(column_prefix + c)}</th>" for c in grid.columns) + "</tr>"
        rows = [header] + [
            f"<tr><th>{escape(row_prefix + label)}</th>{''.join(cell(unit) for unit in cells)}</tr>"
            for label, cells in zip(grid.rows, grid.cells, strict=True)
        ]
        return f'<table class="dc-cells">{"".join(rows)}</table>'
    rows = [
        f"<tr><th>{escape(label)}</th>{''.join(cell(unit) for unit in cells)}</tr>"
        for label, cells in grid.wrapped(WRAP)
    ]
    axis = f'<div class="dc-small dc-axis">rows: {escape(row_name)}:first-last {escape(column_name)}</div>'
    return f'{axis}<table class="dc-cells dc-wide">{"".join(rows)}</table>'


def _td(unit: str, classes: list[str], style: str, title: str, text: str) -> str:
    klass = f' class="{" ".join(classes)}"' if classes else ""
    return f'<td data-unit="{escape(unit)}"{klass}{style} title="{escape(title)}">{escape(text)}</td>'


def _unstable_line(unstable: dict[str, float | None] | None, unit: str) -> list[str]:
    if unstable is None or unit not in unstable:
        return []
    share = unstable[unit]
    return [f"unstable across seeds{'' if share is None else f': a member in {share:.0%} of them'}"]


def score_cell(concept: ConceptEntry, name: str, definition: DefinitionEntry) -> tuple[Cell, str]:
    """``cell(unit) -> <td>`` colored by the definition's deciding margin, and the scale's text."""
    criteria = definition["criteria"]
    cuts = [criterion_cut(c) for c in criteria]
    members = set(definition.get("members") or [])
    status = definition["status"]
    pick = max if definition.get("combinator", "all") == "any" else min
    unstable = unstable_shares(definition)
    usable = status == "ok" and bool(definition.get("scores") or any(c.get("scores") for c in criteria))

    def cell(unit: str) -> str:
        lines = [f"{unit} · {name}", *unit_details(concept, definition, unit)]
        classes: list[str] = []
        style = ""
        if not usable:
            classes.append("dc-na")
            text = "n/a" if status == "not_applicable" else ""
        else:
            deciding: list[tuple[float, int]] = []
            for index, (criterion, cut) in enumerate(zip(criteria, cuts, strict=True)):
                passed = unit in (criterion.get("passed") or [])
                margin = relative_margin(criterion, cut, unit, passed)
                if margin is not None:
                    deciding.append((margin, index))
                    lines.append(f"{criterion['checker']}: {_margin_text(criterion, cut, unit, passed)}")
            if not deciding:
                classes.append("dc-undefined")
                text = "—"
            else:
                margin, index = pick(deciding)
                margin = abs(margin) if unit in members else -abs(margin)
                background, foreground = color(margin)
                style = f' style="background-color:{background};color:{foreground}"'
                text = cell_number((criteria[index].get("scores") or {}).get(unit))
                if len(criteria) > 1:
                    lines.append(f"colored by criterion {index + 1}, {criteria[index]['checker']}")
        if unit in members:
            classes.append("dc-member")
        if unstable is not None and unit in unstable:
            classes.append("dc-unstable")
        lines += _unstable_line(unstable, unit)
        return _td(unit, classes, style, "\n".join(lines), text)

    scale = ""
    if usable:
        scale = "; color: margin to the threshold (blue: member, orange: not), full at 1x the threshold's size"
    return cell, scale


def _criterion_cell(name: str, index: int, criterion: CriterionEntry, cut: Cut | None) -> Cell:
    """``cell(unit) -> <td>`` colored by one criterion's margin."""
    scores = criterion.get("scores") or {}
    passed_units = set(criterion.get("passed") or [])
    chance = chance_level(criterion)
    missing = criterion.get("error") or criterion.get("not_applicable")

    def cell(unit: str) -> str:
        head = f"{unit} · {name}, criterion {index + 1}: {criterion_text(criterion)}"
        lines = [head, f"threshold {threshold_text(criterion['threshold'])}"]
        if missing:
            return _td(unit, ["dc-na"], "", "\n".join([*lines, str(missing)]), "n/a")
        value = scores.get(unit)
        passed = unit in passed_units
        margin = relative_margin(criterion, cut, unit, passed)
        if value is None or margin is None:
            reason = (criterion.get("undefined") or {}).get(unit, "no score")
            return _td(unit, ["dc-undefined"], "", "\n".join([*lines, f"undefined: {reason}"]), "—")
        lines += [
            f"score {number(value, 4)}: {'pass' if passed else 'fail'}",
            _margin_text(criterion, cut, unit, passed),
        ]
        if chance is not None:
            lines.append(f"chance {number(chance)}")
        background, foreground = color(margin)
        style = f' style="background-color:{background};color:{foreground}"'
        return _td(unit, ["dc-member"] if passed else [], style, "\n".join(lines), cell_number(value))

    return cell


def _status_note(definition: DefinitionEntry) -> str:
    if definition["status"] == "errored":
        return f'<br><span class="dc-error">errored: {escape(str(definition["error"]))}</span>'
    if definition["status"] == "not_applicable":
        return f'<br><span class="dc-note">not applicable: {escape(str(definition["not_applicable"]))}</span>'
    return ""


def _sd(criterion: CriterionEntry) -> bool:
    """Whether the criterion has margins in standard deviations of the score (``--seeds K``, ``--bootstrap B``)
    for some unit."""
    margins: Any = criterion.get("margins")
    return isinstance(margins, Mapping) and any(_value(value) is not None for value in margins.values())


def definition_figure(concept: ConceptEntry, name: str, definition: DefinitionEntry, grid: Grid) -> str:
    """A definition's figure: its grid (the deciding margin per unit) and, for several criteria, a grid each."""
    criteria = definition["criteria"]
    cell, _ = score_cell(concept, name, definition)
    ok = definition["status"] == "ok"
    caption = f"<b>{escape(name)}</b> ({escape(definition['kind'])})"
    if len(criteria) == 1:
        criterion = criteria[0]
        caption += f": {escape(criterion_text(criterion))}"
        if ok:
            caption += _legend(criterion_cut(criterion), chance_level(criterion), _sd(criterion))
    elif criteria:
        joiner = "weakest" if definition.get("combinator", "all") == "all" else "strongest"
        sd = any(_sd(c) for c in criteria)
        size = "standard deviations of the score" if sd else "units of its threshold's size (1x: twice the cut-off)"
        caption += (
            f": {len(criteria)} criteria ({escape(definition.get('combinator', 'all'))}); color: the {joiner}"
            f" criterion's margin, in {size}"
        )
        caption += "; each criterion below" if ok else ""
        if ok:
            caption += _legend(None, None, sd)
    caption += _status_note(definition)
    if ok:
        caption += (
            '<div class="dc-small">blue: member, orange: not; darker: further from the threshold; '
            "ringed, with a corner mark: member</div>"
        )
    body = grid_table(concept, grid, cell)
    if len(criteria) > 1 and ok:
        parts = []
        for index, criterion in enumerate(criteria):
            cut = criterion_cut(criterion)
            legend = _legend(cut, chance_level(criterion), _sd(criterion))
            title = f"{index + 1}. {criterion_text(criterion, probe=True)}"
            parts.append(
                f'<div class="dc-criterion" data-criterion="{index}"><div class="dc-ccap">{escape(title)}{legend}'
                f"</div>{grid_table(concept, grid, _criterion_cell(name, index, criterion, cut))}</div>"
            )
        body += (
            f'<details class="dc-criteria" open><summary>each of the {len(criteria)} criteria</summary>'
            f"{''.join(parts)}</details>"
        )
    return (
        f'<figure class="dc-grid" data-grid="definition" data-definition="{escape(name)}">'
        f"<figcaption>{caption}</figcaption>{body}</figure>"
    )
