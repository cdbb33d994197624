"""Helpers shared by the report formats; they read the JSON document (see docs/report-format.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from defcheck.report.document import ConceptEntry, DefinitionEntry, ModelEntry, ReportDocument

CATEGORIES = ("both", "behavioral_only", "mechanistic_only", "neither")
CATEGORY_LABELS = {
    "both": "both",
    "behavioral_only": "behavioral only",
    "mechanistic_only": "mechanistic only",
    "neither": "neither",
}


def number(value: Any, digits: int = 3) -> str:
    """A number for people: 3 significant digits; ``—`` for ``None``."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{digits}g}"


def threshold_text(threshold: Any) -> str:
    """``">= 0.4"`` as is; ``{"top_k": 3, "min": 0.1}`` as ``top 3 and >= 0.1``."""
    if isinstance(threshold, dict):
        text = f"top {threshold.get('top_k')}"
        if threshold.get("min") is not None:
            text += f" and >= {threshold['min']:g}"
        return text
    return str(threshold)


def chance_text(value: Any) -> str:
    """A chance level for people: 3 significant digits, ``-`` where unknown."""
    return "-" if value is None else number(value)


def criterion_text(criterion: Mapping[str, Any], *, probe: bool = False, chance: bool = False) -> str:
    """``attention_pattern(pattern=prefix_matching) >= 0.4`` (with ``with:`` targets if any, and ``on PROBE``
    where ``probe`` is set; with ``chance``, the chance level after the threshold: ``>= 0.4 (chance 0.0947)``,
    ``(chance -)`` where unknown, nothing for a report written before chance levels)."""
    params = criterion.get("params") or {}
    inner = ", ".join(f"{key}={value}" for key, value in params.items())
    text = f"{criterion['checker']}({inner})" if inner else criterion["checker"]
    text += f" {threshold_text(criterion['threshold'])}"
    if chance and "chance" in criterion:
        text += f" (chance {chance_text(criterion['chance'])})"
    if criterion.get("with"):
        text += f" with {', '.join(criterion['with'])}"
    if probe and criterion.get("probe"):
        text += f" on {criterion['probe']}"
    return text


def definition_criteria_text(definition: DefinitionEntry) -> str:
    """The criteria joined by their combinator. A checker used twice on different probes (e.g. a reward in
    training and in deployment) names its probe, so that the two do not read as a contradiction."""
    criteria = definition["criteria"]
    probes: dict[str, set[Any]] = {}
    for criterion in criteria:
        probes.setdefault(criterion["checker"], set()).add(criterion.get("probe"))
    joiner = " and " if definition.get("combinator", "all") == "all" else " or "
    texts = [criterion_text(c, probe=len(probes[c["checker"]]) > 1, chance=True) for c in criteria]
    notes = list(dict.fromkeys(note for c in criteria if (note := c.get("probe_note"))))
    return joiner.join(texts) + "".join(f" [probe {note}]" for note in notes)


@dataclass(frozen=True)
class Grid:
    """A concept's heatmap layout: row and column labels and the unit in each cell (row-major)."""

    rows: list[str]
    columns: list[str]
    cells: list[list[str]]

    def wrapped(self, width: int) -> list[tuple[str, list[str]]]:
        """The grid's rows cut into lines of at most ``width`` cells: ``(label, units)`` per line. A row wider
        than ``width`` becomes several lines labelled ``ROW:FIRST-LAST`` (first and last column labels)."""
        lines = []
        for label, cells in zip(self.rows, self.cells, strict=True):
            if len(cells) <= width:
                lines.append((label, cells))
                continue
            for start in range(0, len(cells), width):
                stop = min(start + width, len(cells))
                lines.append((f"{label}:{self.columns[start]}-{self.columns[stop - 1]}", cells[start:stop]))
        return lines


def concept_units(concept: ConceptEntry) -> list[str]:
    """Every unit of the concept in its unit kind's order (``units``; older reports: the scores' order)."""
    units = concept.get("units")
    return list(units) if units is not None else all_units(concept)


def concept_grid(data: ReportDocument, concept: ConceptEntry) -> Grid | None:
    """The concept's heatmap layout, or ``None`` when its units are shown as a table (layers, models).

    Reports since unit kinds carry ``grid`` (row and column labels) and ``units``; an older report's head
    addresses ``L.H`` are laid out from the model's ``n_layers`` x ``n_heads``.
    """
    if "grid" in concept:
        grid = concept["grid"]
        units = concept_units(concept)
        if grid is None or not units:
            return None
        rows, columns = list(grid["rows"]), list(grid["columns"])
        if len(rows) * len(columns) != len(units):
            return None
        width = len(columns)
        return Grid(rows, columns, [units[r * width : (r + 1) * width] for r in range(len(rows))])
    units = all_units(concept)
    if not units or any(split_unit(u) is None for u in units):
        return None
    layers, heads = grid_shape(data["model"], units)
    if not layers or not heads:
        return None
    cells = [[f"{layer}.{head}" for head in range(heads)] for layer in range(layers)]
    return Grid([str(layer) for layer in range(layers)], [str(head) for head in range(heads)], cells)


def grid_shape(model: ModelEntry, units: list[str]) -> tuple[int, int]:
    """(layers, heads) of the grid: from the model, else from the largest unit address."""
    layers, heads = model.get("n_layers"), model.get("n_heads")
    if isinstance(layers, int) and isinstance(heads, int):
        return layers, heads
    pairs = [pair for pair in (split_unit(u) for u in units) if pair is not None]
    if not pairs:
        return 0, 0
    return max(p[0] for p in pairs) + 1, max(p[1] for p in pairs) + 1


def split_unit(unit: str) -> tuple[int, int] | None:
    layer, _, index = unit.partition(".")
    try:
        return int(layer), int(index)
    except ValueError:
        return None


def all_units(concept: ConceptEntry) -> list[str]:
    """Every unit address the concept's scores mention, in their order."""
    seen: dict[str, None] = {}
    for definition in concept["definitions"].values():
        for criterion in definition["criteria"]:
            for unit in criterion.get("scores") or {}:
                seen.setdefault(unit)
    return list(seen)


def compared(concept: ConceptEntry) -> bool:
    """Whether the concept's behavioral and mechanistic definitions were compared (its overlap is not empty)."""
    overlap = concept.get("overlap")
    return overlap is not None and overlap.get("reason") is None


def categories(concept: ConceptEntry, units: list[str]) -> dict[str, str]:
    """Each unit's overlap category (``both``, ``behavioral_only``, ``mechanistic_only``, ``neither``); empty
    when the kinds were not compared."""
    overlap = concept["overlap"]
    if not compared(concept):
        return {}
    out = dict.fromkeys(units, "neither")
    for category in ("both", "behavioral_only", "mechanistic_only"):
        for unit in overlap[category]:
            out[unit] = category
    return out


def unit_plural(concept: ConceptEntry) -> str:
    """The unit kind's plural noun (``heads``), as the report carries it; older reports: the kind's name."""
    return concept.get("unit_plural") or concept.get("unit") or "units"


def unit_noun(concept: ConceptEntry) -> str:
    """The unit kind's singular noun (``head``), as the report carries it; older reports: the kind's name."""
    return concept.get("unit_noun") or concept.get("unit") or "unit"


def marked_units(concept: ConceptEntry) -> list[str]:
    """The units some definition admits or an overlap category names, in the unit kind's order."""
    marked: set[str] = set()
    for definition in concept["definitions"].values():
        marked.update(definition.get("members") or [])
    overlap = concept["overlap"]
    for key in ("both", "behavioral_only", "mechanistic_only"):
        marked.update(overlap[key])
    return [unit for unit in concept_units(concept) if unit in marked]


def table_units(concept: ConceptEntry, limit: int) -> tuple[list[str], int]:
    """The units a table shows, in the unit kind's order, and how many it leaves out: all of them when they are
    at most ``limit``, else the marked units (:func:`marked_units`) first, then the others, up to ``limit``."""
    units = concept_units(concept)
    if len(units) <= limit:
        return units, 0
    marked = marked_units(concept)
    others = [unit for unit in units if unit not in set(marked)]
    chosen = set(marked[:limit] + others[: max(limit - len(marked), 0)])
    return [unit for unit in units if unit in chosen], len(units) - len(chosen)


def model_line(data: ReportDocument) -> str:
    """``random-0: 2 layers x 8 heads, d_model 64, attention only; seed 0``."""
    model = data["model"]
    bits = []
    if "n_layers" in model and "n_heads" in model:
        bits.append(f"{model['n_layers']} layers x {model['n_heads']} heads")
    if model.get("model_names"):
        bits.append(f"{len(model['model_names'])} models")
    if "d_model" in model:
        bits.append(f"d_model {model['d_model']}")
    if "d_mlp" in model:
        bits.append(f"MLP {model['d_mlp']}")
    if model.get("attn_only"):
        bits.append("attention only")
    if model.get("normalization"):
        bits.append(f"{model['normalization']} normalization")
    shape = f": {', '.join(bits)}" if bits else ""
    return f"{model.get('name', 'model')}{shape}; seed {data['seed']}"


def skipped_text(data: ReportDocument) -> str | None:
    """``Not evaluated on this model: token_detector_neuron (no mlp_neuron units: ...).``, or ``None``; concepts
    skipped for the same reason (every head concept on a set of policies) share one parenthesis."""
    skipped = data.get("skipped") or {}
    if not skipped:
        return None
    by_reason: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        by_reason.setdefault(reason.strip().rstrip("."), []).append(name)
    listing = "; ".join(f"{', '.join(names)} ({reason})" for reason, names in by_reason.items())
    return f"Not evaluated on this model: {listing}."


def unit_details(concept: ConceptEntry, definition: DefinitionEntry, unit: str) -> list[str]:
    """Lines describing one unit under one definition: each criterion's score, pass/fail, reasons, evidence."""
    lines = []
    members = definition.get("members")
    if definition["status"] == "errored":
        lines.append(f"errored: {definition['error']}")
    elif definition["status"] == "not_applicable":
        lines.append(f"not applicable: {definition['not_applicable']}")
    else:
        lines.append("member" if members and unit in members else "not a member")
    for criterion in definition["criteria"]:
        head = f"{criterion['checker']} ({threshold_text(criterion['threshold'])})"
        if criterion.get("probe_note"):
            lines.append(f"{head}: probe {criterion['probe_note']}")
        if criterion.get("error"):
            lines.append(f"{head}: errored: {criterion['error']}")
            continue
        if criterion.get("not_applicable"):
            lines.append(f"{head}: not applicable: {criterion['not_applicable']}")
            continue
        scores = criterion.get("scores") or {}
        value = scores.get(unit)
        if value is None:
            reason = (criterion.get("undefined") or {}).get(unit, "no score")
            lines.append(f"{head}: undefined: {reason}")
        else:
            passed = unit in (criterion.get("passed") or [])
            lines.append(f"{head}: {number(value, 4)} {'pass' if passed else 'fail'}")
        evidence = (criterion.get("evidence") or {}).get(unit)
        if evidence:
            shown = ", ".join(f"{key} {number(val, 4)}" for key, val in evidence.items())
            lines.append(f"  evidence: {shown}")
    return lines


def overlap_details(concept: ConceptEntry, unit: str, category: str) -> list[str]:
    """Lines describing one unit's overlap category: who admits it, or why it is on one side only."""
    overlap = concept["overlap"]
    lines = [f"{unit}: {CATEGORY_LABELS[category]}"]
    admitting = [
        name
        for name, definition in concept["definitions"].items()
        if unit in (definition.get("members") or []) and definition["status"] == "ok"
    ]
    if admitting:
        lines.append(f"admitted by {', '.join(admitting)}")
    if unit in overlap.get("divergences", {}):
        lines.append(overlap["divergences"][unit])
    if unit in overlap.get("undetermined", {}):
        lines.append(f"rests on an undefined score: {overlap['undetermined'][unit]}")
    return lines
