"""The Markdown format, sized for a pull-request comment: a table of concepts, then per concept its summary,
the overlap, the definitions, the threshold sensitivity and (folded) every unit's scores."""

from __future__ import annotations

from typing import Any

from defcheck.report.common import (
    all_units,
    definition_criteria_text,
    grid_shape,
    model_line,
    number,
    split_unit,
    unit_plural,
)

LISTED = 40  # unit addresses listed in a table cell before "and N more"


def render(report: Any) -> str:
    """The ``markdown`` report format."""
    return report.to_markdown()


def _cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _units(units: list[str] | None) -> str:
    if not units:
        return "—"
    shown = ", ".join(units[:LISTED])
    return shown + (f", and {len(units) - LISTED} more" if len(units) > LISTED else "")


def _metric(overlap: dict[str, Any], key: str) -> str:
    value = overlap.get(key)
    if value is None:
        reason = overlap.get("undefined", {}).get(key)
        return f"— ({reason})" if reason else "—"
    return number(value)


def render_markdown(data: dict[str, Any]) -> str:
    lines = [f"# defcheck report: {data['model'].get('name', 'model')}", ""]
    lines += [f"Model {model_line(data)}. Report version {data['report_version']}.", ""]
    concepts = data["concepts"]
    if not concepts:
        return "\n".join([*lines, "No definitions were evaluated.", ""])
    lines += [
        "| concept | both | behavioral only | mechanistic only | Jaccard |",
        "|---|---|---|---|---|",
    ]
    for name, concept in concepts.items():
        overlap = concept["overlap"]
        if overlap is None:
            lines.append(f"| [{name}](#{name}) | {_cell(concept['note'] or 'no overlap')} | | | |")
        else:
            lines.append(
                f"| [{name}](#{name}) | {_units(overlap['both'])} | {_units(overlap['behavioral_only'])} "
                f"| {_units(overlap['mechanistic_only'])} | {number(overlap['jaccard'])} |"
            )
    lines.append("")
    for name, concept in concepts.items():
        lines += _concept(data, name, concept)
    return "\n".join(lines).rstrip() + "\n"


def _concept(data: dict[str, Any], name: str, concept: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", ""]
    if concept.get("description"):
        lines += [f"> {concept['description']}", ""]
    lines += [concept["summary"], ""]
    overlap = concept["overlap"]
    plural = unit_plural(concept)
    if overlap is not None:
        lines += [
            f"| overlap | {plural} |",
            "|---|---|",
            f"| both ({len(overlap['both'])}) | {_units(overlap['both'])} |",
            f"| behavioral only ({len(overlap['behavioral_only'])}) | {_units(overlap['behavioral_only'])} |",
            f"| mechanistic only ({len(overlap['mechanistic_only'])}) | {_units(overlap['mechanistic_only'])} |",
            f"| neither | {overlap['neither_count']} |",
            "",
            f"Jaccard **{_cell(_metric(overlap, 'jaccard'))}** · precision {_cell(_metric(overlap, 'precision'))} · "
            f"recall {_cell(_metric(overlap, 'recall'))} · Spearman {_cell(_metric(overlap, 'spearman'))}"
            + (f" over {overlap['spearman_units']} {plural}" if overlap.get("spearman") is not None else ""),
            "",
        ]
    lines += ["| definition | kind | criteria | members | status |", "|---|---|---|---|---|"]
    for def_name, definition in concept["definitions"].items():
        status = definition["status"]
        if status == "errored":
            status = f"errored: {definition['error']}"
        elif status == "not_applicable":
            status = f"not applicable: {definition['not_applicable']}"
        lines.append(
            f"| {def_name} | {definition['kind']} | {_cell(definition_criteria_text(definition))} "
            f"| {_units(definition['members'])} | {_cell(status)} |"
        )
    lines.append("")
    if overlap is not None:
        lines += _sensitivity(overlap)
        if len(overlap["pairs"]) > 1:
            lines += _pairs(overlap)
    lines += _scores(data, concept)
    return lines


def _sensitivity(overlap: dict[str, Any]) -> list[str]:
    lines = [
        "Threshold sensitivity (Jaccard of the unions, thresholds scaled by the factor):",
        "",
        "| factor | all scaled | behavioral scaled | mechanistic scaled | behavioral | mechanistic | both |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in overlap["sensitivity"]:
        factor = f"**{row['factor']:g}**" if row["factor"] == 1 else f"{row['factor']:g}"
        lines.append(
            f"| {factor} | {number(row['jaccard'])} | {number(row['jaccard_behavioral_scaled'])} "
            f"| {number(row['jaccard_mechanistic_scaled'])} | {row['behavioral']} | {row['mechanistic']} "
            f"| {row['both']} |"
        )
    return [*lines, ""]


def _pairs(overlap: dict[str, Any]) -> list[str]:
    lines = [
        "| behavioral | mechanistic | both | behavioral only | mechanistic only | Jaccard | precision | recall "
        "| Spearman |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in overlap["pairs"]:
        lines.append(
            f"| {pair['behavioral'][0]} | {pair['mechanistic'][0]} | {_units(pair['both'])} "
            f"| {_units(pair['behavioral_only'])} | {_units(pair['mechanistic_only'])} | {number(pair['jaccard'])} "
            f"| {number(pair['precision'])} | {number(pair['recall'])} | {number(pair['spearman'])} |"
        )
    return [*lines, ""]


def _scores(data: dict[str, Any], concept: dict[str, Any]) -> list[str]:
    """Folded grids of each definition's primary score: layers down, heads across; members in bold."""
    units = all_units(concept)
    layers, heads = grid_shape(data["model"], units)
    if not units or not layers or not heads or any(split_unit(u) is None for u in units):
        return []
    lines = ["<details><summary>Scores (primary criterion; members in bold, — undefined)</summary>", ""]
    for def_name, definition in concept["definitions"].items():
        lines.append(f"**{def_name}** ({definition['kind']})")
        lines.append("")
        scores = definition.get("scores")
        if scores is None:
            reason = definition.get("not_applicable") or definition.get("error") or "no scores"
            lines += [f"no scores: {_cell(reason)}", ""]
            continue
        members = set(definition.get("members") or [])
        lines.append("| layer | " + " | ".join(str(h) for h in range(heads)) + " |")
        lines.append("|---" * (heads + 1) + "|")
        for layer in range(layers):
            cells = []
            for head in range(heads):
                unit = f"{layer}.{head}"
                text = number(scores.get(unit))
                cells.append(f"**{text}**" if unit in members else text)
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
        lines.append("")
    return [*lines, "</details>", ""]
