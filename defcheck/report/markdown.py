"""The Markdown format, sized for a pull-request comment: a table of concepts, then per concept its summary,
the overlap, the definitions, the threshold sensitivity and (folded) the units' scores: a grid (layers x heads)
where the unit kind has one no wider than ``GRID_COLUMNS``, else a table with a row per unit (layers, models; for
wide grids such as 256 neurons a layer, only the units some definition admits or the overlap names)."""

from __future__ import annotations

from typing import Any

from defcheck.report.common import (
    CATEGORY_LABELS,
    categories,
    compared,
    concept_grid,
    concept_units,
    definition_criteria_text,
    marked_units,
    model_line,
    number,
    skipped_text,
    table_units,
    unit_plural,
)
from defcheck.report.document import ConceptEntry, DefinitionEntry, OverlapEntry, ReportDocument
from defcheck.report.escaping import html_text, md_name, md_slug, md_text
from defcheck.report.seeds import (
    margin_lines,
    margin_scale,
    marked_members,
    overlap_line,
    seed_count,
    stability_line,
)

LISTED = 40  # unit addresses listed in a table cell before "and N more"
GRID_COLUMNS = 32  # wider grids (neurons) are listed as a table of the units that matter instead
TABLE_ROWS = 64  # rows of such a table at most


def render(report: Any) -> str:
    """The ``markdown`` report format."""
    return report.to_markdown()


def _cell(text: Any) -> str:
    """User text in a table cell, a heading or a paragraph (:func:`~defcheck.report.escaping.md_text`)."""
    return md_text(text)


def _number(value: Any) -> str:
    """A number (:func:`~defcheck.report.common.number`); from a damaged saved report, escaped text."""
    return md_text(number(value))


def _units(units: list[str] | None) -> str:
    if not units:
        return "—"
    shown = md_text(", ".join(units[:LISTED]))
    return shown + (f", and {len(units) - LISTED} more" if len(units) > LISTED else "")


def _metric(overlap: OverlapEntry, key: str) -> str:
    value = overlap.get(key)
    if value is None:
        reason = overlap.get("undefined", {}).get(key)
        return f"— ({reason})" if reason else "—"
    return number(value)


def render_markdown(data: ReportDocument) -> str:
    lines = [f"# defcheck report: {_cell(data['model'].get('name', 'model'))}", ""]
    lines += [f"Model {_cell(model_line(data))}. Report version {_cell(data['report_version'])}.", ""]
    skipped = skipped_text(data)
    if skipped:
        lines += [_cell(skipped), ""]
    concepts = data["concepts"]
    if not concepts:
        return "\n".join([*lines, "No definitions were evaluated.", ""])
    lines += [
        "| concept | both | behavioral only | mechanistic only | Jaccard |",
        "|---|---|---|---|---|",
    ]
    for name, concept in concepts.items():
        overlap = concept["overlap"]
        link = f"[{md_name(name, table=True)}](#{md_slug(name)})"
        if not compared(concept):
            lines.append(f"| {link} | {_cell(overlap['reason'] or 'no overlap')} | | | |")
        else:
            lines.append(
                f"| {link} | {_units(overlap['both'])} | {_units(overlap['behavioral_only'])} "
                f"| {_units(overlap['mechanistic_only'])} | {_number(overlap['jaccard'])} |"
            )
    lines.append("")
    for name, concept in concepts.items():
        lines += _concept(data, name, concept)
    return "\n".join(lines).rstrip() + "\n"


def _concept(data: ReportDocument, name: str, concept: ConceptEntry) -> list[str]:
    lines = [f"## {md_name(name)}", ""]
    if concept.get("summary"):
        lines += [f"> {_cell(concept['summary'])}", ""]
    overlap = concept["overlap"]
    lines += [_cell(overlap["narrative"]), ""]
    spread = overlap_line(overlap)
    if spread:
        lines += [_cell(spread), ""]
    plural = _cell(unit_plural(concept))
    if compared(concept):
        lines += [
            f"| overlap | {plural} |",
            "|---|---|",
            f"| both ({len(overlap['both'])}) | {_units(overlap['both'])} |",
            f"| behavioral only ({len(overlap['behavioral_only'])}) | {_units(overlap['behavioral_only'])} |",
            f"| mechanistic only ({len(overlap['mechanistic_only'])}) | {_units(overlap['mechanistic_only'])} |",
            f"| neither | {_cell(overlap['neither_count'])} |",
            "",
            f"Jaccard **{_cell(_metric(overlap, 'jaccard'))}** · precision {_cell(_metric(overlap, 'precision'))} · "
            f"recall {_cell(_metric(overlap, 'recall'))} · Spearman {_cell(_metric(overlap, 'spearman'))}"
            + (f" over {_cell(overlap['spearman_units'])} {plural}" if overlap.get("spearman") is not None else ""),
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
            f"| {md_name(def_name, table=True)} | {_cell(definition['kind'])} "
            f"| {_cell(definition_criteria_text(definition))} | {_units(_marked(definition))} | {_cell(status)} |"
        )
    lines.append("")
    lines += _stability(data, concept)
    if compared(concept):
        lines += _sensitivity(overlap)
        if len(overlap["pairs"]) > 1:
            lines += _pairs(overlap)
    lines += _scores(data, concept)
    return lines


def _marked(definition: DefinitionEntry) -> list[str] | None:
    """The members, unstable ones marked (``1.3~ (70%)``); ``None`` where the definition has none computed."""
    return None if definition["members"] is None else marked_members(definition)


def _stability(data: ReportDocument, concept: ConceptEntry) -> list[str]:
    """``--seeds K`` or ``--bootstrap B``: a table of each definition's stability and the margins nearest the
    threshold."""
    seeds, scale = seed_count(data), margin_scale(data)
    if scale is None:
        return []
    title = f"Stability across {seeds} probe seeds (margins in {scale})" if seeds >= 2 else f"Margins in {scale}"
    lines = [
        f"{title}:",
        "",
        "| definition | members | margins nearest the threshold |",
        "|---|---|---|",
    ]
    for name, definition in concept["definitions"].items():
        line = stability_line(definition, seeds) or "—"
        margins = "; ".join(margin_lines(definition)) or "—"
        lines.append(f"| {md_name(name, table=True)} | {_cell(line)} | {_cell(margins)} |")
    return [*lines, ""]


def _sensitivity(overlap: OverlapEntry) -> list[str]:
    lines = [
        "Threshold sensitivity (Jaccard of the unions, thresholds scaled by the factor):",
        "",
        "| factor | all scaled | behavioral scaled | mechanistic scaled | behavioral | mechanistic | both |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in overlap["sensitivity"]:
        factor = f"**{row['factor']:g}**" if row["factor"] == 1 else f"{row['factor']:g}"
        lines.append(
            f"| {factor} | {_number(row['jaccard'])} | {_number(row['jaccard_behavioral_scaled'])} "
            f"| {_number(row['jaccard_mechanistic_scaled'])} | {row['behavioral']} | {row['mechanistic']} "
            f"| {row['both']} |"
        )
    return [*lines, ""]


def _pairs(overlap: OverlapEntry) -> list[str]:
    lines = [
        "| behavioral | mechanistic | both | behavioral only | mechanistic only | Jaccard | precision | recall "
        "| Spearman |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in overlap["pairs"]:
        lines.append(
            f"| {md_name(pair['behavioral'][0], table=True)} | {md_name(pair['mechanistic'][0], table=True)} "
            f"| {_units(pair['both'])} "
            f"| {_units(pair['behavioral_only'])} | {_units(pair['mechanistic_only'])} | {_number(pair['jaccard'])} "
            f"| {_number(pair['precision'])} | {_number(pair['recall'])} | {_number(pair['spearman'])} |"
        )
    return [*lines, ""]


def _scores(data: ReportDocument, concept: ConceptEntry) -> list[str]:
    """Folded scores of each definition's primary criterion: a grid per definition (rows down, e.g. layers, columns
    across, e.g. heads; members in bold) where the unit kind has a narrow one, else one table of units."""
    grid = concept_grid(data, concept)
    if grid is None or len(grid.columns) > GRID_COLUMNS:
        return _score_table(concept, narrowed=grid is not None)
    lines = ["<details><summary>Scores (primary criterion; members in bold, — undefined)</summary>", ""]
    for def_name, definition in concept["definitions"].items():
        lines.append(f"**{md_name(def_name)}** ({_cell(definition['kind'])})")
        lines.append("")
        scores = definition.get("scores")
        if scores is None:
            reason = definition.get("not_applicable") or definition.get("error") or "no scores"
            lines += [f"no scores: {_cell(reason)}", ""]
            continue
        members = set(definition.get("members") or [])
        axis = "layer" if concept.get("unit") in ("attention_head", "mlp_neuron") else ""
        lines.append(f"| {axis} | " + " | ".join(_cell(column) for column in grid.columns) + " |")
        lines.append("|---" * (len(grid.columns) + 1) + "|")
        for label, cells in zip(grid.rows, grid.cells, strict=True):
            shown = []
            for unit in cells:
                text = _number(scores.get(unit))
                shown.append(f"**{text}**" if unit in members else text)
            lines.append(f"| {_cell(label)} | " + " | ".join(shown) + " |")
        lines.append("")
    return [*lines, "</details>", ""]


def _score_table(concept: ConceptEntry, narrowed: bool) -> list[str]:
    """A row per unit: each definition's primary score (members in bold) and the overlap category. Past
    ``TABLE_ROWS`` units only the members and overlap units are listed (``narrowed``: always, for a wide grid)."""
    units = concept_units(concept)
    if not units:
        return []
    if narrowed:
        marked = marked_units(concept)
        shown, left_out = marked[:TABLE_ROWS], len(units) - min(len(marked), TABLE_ROWS)
    else:
        shown, left_out = table_units(concept, TABLE_ROWS)
    definitions = concept["definitions"]
    category = categories(concept, units)
    title = "Scores (primary criterion; members in bold, — undefined)"
    if narrowed:
        title += f"; the {len(shown)} {unit_plural(concept)} some definition admits"
    lines = [f"<details><summary>{html_text(title, quote=False)}</summary>", ""]
    header = ["unit", *(f"{md_name(name, table=True)} ({_cell(d['kind'])})" for name, d in definitions.items())]
    if compared(concept):
        header.append("overlap")
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for unit in shown:
        row = [_cell(unit)]
        for definition in definitions.values():
            scores = definition.get("scores")
            text = "n/a" if scores is None else _number(scores.get(unit))
            row.append(f"**{text}**" if unit in (definition.get("members") or []) else text)
        if compared(concept):
            row.append(CATEGORY_LABELS[category.get(unit, "neither")])
        lines.append("| " + " | ".join(row) + " |")
    if left_out:
        lines += ["", f"{left_out} more {_cell(unit_plural(concept))} not shown (their scores are in the JSON report)"]
    return [*lines, "", "</details>", ""]
