"""Helpers shared by the report formats; they read the JSON document (see docs/report-format.md)."""

from __future__ import annotations

from typing import Any

CATEGORIES = ("both", "behavioral_only", "mechanistic_only", "neither")
CATEGORY_LABELS = {
    "both": "both",
    "behavioral_only": "behavioral only",
    "mechanistic_only": "mechanistic only",
    "neither": "neither",
}
UNIT_PLURALS = {"attention_head": "heads", "mlp_neuron": "neurons", "layer": "layers", "model": "models"}


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


def criterion_text(criterion: dict[str, Any]) -> str:
    """``attention_pattern(pattern=prefix_matching) >= 0.4`` (with ``with:`` targets if any)."""
    params = criterion.get("params") or {}
    inner = ", ".join(f"{key}={value}" for key, value in params.items())
    text = f"{criterion['checker']}({inner})" if inner else criterion["checker"]
    text += f" {threshold_text(criterion['threshold'])}"
    if criterion.get("with"):
        text += f" with {', '.join(criterion['with'])}"
    return text


def definition_criteria_text(definition: dict[str, Any]) -> str:
    joiner = " and " if definition.get("combinator", "all") == "all" else " or "
    return joiner.join(criterion_text(c) for c in definition["criteria"])


def grid_shape(model: dict[str, Any], units: list[str]) -> tuple[int, int]:
    """(layers, heads) of the grid: from the model, else from the largest unit address."""
    layers, heads = model.get("n_layers"), model.get("n_heads")
    if isinstance(layers, int) and isinstance(heads, int):
        return layers, heads
    pairs = [split_unit(u) for u in units]
    pairs = [p for p in pairs if p is not None]
    if not pairs:
        return 0, 0
    return max(p[0] for p in pairs) + 1, max(p[1] for p in pairs) + 1


def split_unit(unit: str) -> tuple[int, int] | None:
    layer, _, index = unit.partition(".")
    try:
        return int(layer), int(index)
    except ValueError:
        return None


def all_units(concept: dict[str, Any]) -> list[str]:
    """Every unit address the concept's scores mention, in their order."""
    seen: dict[str, None] = {}
    for definition in concept["definitions"].values():
        for criterion in definition["criteria"]:
            for unit in criterion.get("scores") or {}:
                seen.setdefault(unit)
    return list(seen)


def categories(concept: dict[str, Any], units: list[str]) -> dict[str, str]:
    """Each unit's overlap category (``both``, ``behavioral_only``, ``mechanistic_only``, ``neither``)."""
    overlap = concept.get("overlap")
    if overlap is None:
        return {}
    out = dict.fromkeys(units, "neither")
    for category in ("both", "behavioral_only", "mechanistic_only"):
        for unit in overlap[category]:
            out[unit] = category
    return out


def unit_plural(concept: dict[str, Any]) -> str:
    return UNIT_PLURALS.get(concept.get("unit", ""), "units")


def model_line(data: dict[str, Any]) -> str:
    """``random-0: 2 layers x 8 heads, d_model 64, attention only; seed 0``."""
    model = data["model"]
    bits = []
    if "n_layers" in model and "n_heads" in model:
        bits.append(f"{model['n_layers']} layers x {model['n_heads']} heads")
    if "d_model" in model:
        bits.append(f"d_model {model['d_model']}")
    if model.get("attn_only"):
        bits.append("attention only")
    if model.get("normalization"):
        bits.append(f"{model['normalization']} normalization")
    shape = f": {', '.join(bits)}" if bits else ""
    return f"{model.get('name', 'model')}{shape}; seed {data['seed']}"


def unit_details(concept: dict[str, Any], definition: dict[str, Any], unit: str) -> list[str]:
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


def overlap_details(concept: dict[str, Any], unit: str, category: str) -> list[str]:
    """Lines describing one unit's overlap category: who admits it, or why it is on one side only."""
    overlap = concept["overlap"]
    lines = [f"{unit}: {CATEGORY_LABELS[category]}"]
    admitting = [
        name
        for name, definition in concept["definitions"].items()
        if definition.get("members") and unit in definition["members"] and definition["status"] == "ok"
    ]
    if admitting:
        lines.append(f"admitted by {', '.join(admitting)}")
    if unit in overlap.get("divergences", {}):
        lines.append(overlap["divergences"][unit])
    if unit in overlap.get("undetermined", {}):
        lines.append(f"rests on an undefined score: {overlap['undetermined'][unit]}")
    return lines
