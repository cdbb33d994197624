"""The terminal format: first a summary table (a row per concept: the overlap categories, the Jaccard, the units
unstable across seeds), then per concept a rich panel with the summary, the overlap (categories in color), the
definitions, a map of the categories on the unit kind's grid (layers x heads; a wide grid such as 256 neurons a
layer in lines of one-character cells) or, for units without a grid (layers, models), a table of each unit's
primary scores and category, and the threshold sensitivity."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from defcheck.report.common import (
    CATEGORY_LABELS,
    categories,
    compared,
    concept_grid,
    concept_units,
    definition_criteria_text,
    model_line,
    number,
    skipped_text,
    table_units,
    unit_plural,
)
from defcheck.report.document import ConceptEntry, DefinitionEntry, OverlapEntry, ReportDocument
from defcheck.report.escaping import printable
from defcheck.report.heatmap import concept_unstable
from defcheck.report.seeds import (
    margin_lines,
    margin_scale,
    marked_members,
    overlap_line,
    seed_count,
    stability_line,
)

STYLES = {
    "both": "bold white on green",
    "behavioral_only": "bold black on yellow",
    "mechanistic_only": "bold white on magenta",
    "neither": "dim",
}
MARKS = {"both": "B+M", "behavioral_only": " B ", "mechanistic_only": " M ", "neither": " · "}
MAX_MAP_HEADS = 32  # wider grids are drawn in lines of one-character cells
COMPACT_WIDTH = 64  # cells per line of such a compact map
COMPACT_MARKS = {"both": "+", "behavioral_only": "B", "mechanistic_only": "M", "neither": "·"}
NARROW = 100  # consoles narrower than this list the definitions one below the other instead of in a table
TABLE_ROWS = 40  # units listed in the table of units without a grid (members and overlap units first)
SUMMARY_UNITS = 6  # units named per category in the summary table


def print_report(data: ReportDocument, console: Console | None = None) -> None:
    console = console or Console()
    console.print(_text(f"defcheck report: {model_line(data)}", style="bold"))
    skipped = skipped_text(data)
    if skipped:
        console.print(_text(skipped, style="yellow"))
    if not data["concepts"]:
        console.print("No definitions were evaluated.")
    else:
        console.print(_summary(data, console.width))
    for name, concept in data["concepts"].items():
        console.print(_concept(data, name, concept, console.width))


def _summary(data: ReportDocument, width: int = NARROW) -> Table:
    """One row per concept: the overlap categories (counts, and the units on a wide console), the Jaccard, and
    the units unstable across seeds (``-`` without ``--seeds``)."""
    listed = width >= NARROW
    uncompared = not all(compared(concept) for concept in data["concepts"].values())
    note = "—: the kinds were not compared (see the concept below)" if uncompared else None
    table = Table(title="summary", title_justify="left", caption=note, caption_justify="left")
    longest = max((len(name) for name in data["concepts"]), default=7)
    table.add_column("concept", overflow="ellipsis", no_wrap=True, min_width=min(longest, max(width // 3, 8)))
    for column in ("both", "B-only", "M-only"):
        table.add_column(column, overflow="ellipsis")
    table.add_column("Jaccard", justify="right")
    table.add_column("unstable", overflow="ellipsis")
    for name, concept in data["concepts"].items():
        overlap = concept["overlap"]
        unstable = concept_unstable(concept)
        ordered = [unit for unit in concept_units(concept) if unstable is not None and unit in unstable]
        shown = Text("-", style="dim") if unstable is None else _counted(ordered, "bold red", listed)
        if not compared(concept):
            dash = Text("—", style="dim")
            table.add_row(_text(name), dash, dash, dash, dash, shown)
            continue
        both, behavioral, mechanistic = overlap["both"], overlap["behavioral_only"], overlap["mechanistic_only"]
        counts = [
            _counted(both, STYLES["both"], listed),
            _counted(behavioral, STYLES["behavioral_only"], listed),
            _counted(mechanistic, STYLES["mechanistic_only"], listed),
        ]
        table.add_row(_text(name), *counts, _plain(number(overlap["jaccard"])), shown)
    return table


def _counted(units: list[str], style: str, listed: bool) -> Text:
    """``3 (0.1, 0.3, 1.2)``: how many units, and the first few where ``listed``."""
    if not units:
        return Text("0", style="dim")
    text = Text(printable(len(units)), style=style)
    if listed:
        more = ", …" if len(units) > SUMMARY_UNITS else ""
        text.append(printable(f" ({', '.join(units[:SUMMARY_UNITS])}{more})"))
    text.overflow = "ellipsis"
    return text


def _text(text: Any, style: str = "") -> Text:
    """Text that wraps between words only: a word (a name) wider than the line ends in an ellipsis. It is user
    text, never markup, and its control characters are shown, not sent (:func:`~defcheck.report.escaping.printable`)."""
    return Text(printable(text), style=style, overflow="ellipsis")


def _plain(value: Any) -> Text:
    """A number or count as text (never markup, even from a damaged saved report)."""
    return Text(printable(value))


def _units(units: list[str] | None, style: str = "") -> Text:
    return _text(", ".join(units) if units else "—", style=style if units else "dim")


def _concept(data: ReportDocument, name: str, concept: ConceptEntry, width: int = NARROW) -> Panel:
    parts: list[Any] = []
    if concept.get("summary"):
        parts.append(_text(concept["summary"] or "", style="italic"))
    overlap = concept["overlap"]
    parts.append(_text(overlap["narrative"]))
    spread = overlap_line(overlap)
    if spread:
        parts.append(_text(spread))
    plural = unit_plural(concept)
    if compared(concept):
        table = Table(title="overlap (union of each kind)", title_justify="left", show_header=False)
        table.add_column("category", overflow="ellipsis")
        table.add_column(_text(plural), overflow="ellipsis")
        for key in ("both", "behavioral_only", "mechanistic_only"):
            units = overlap[key]
            table.add_row(_text(f"{CATEGORY_LABELS[key]} ({len(units)})", STYLES[key]), _units(units))
        table.add_row(Text("neither", style=STYLES["neither"]), _plain(overlap["neither_count"]))
        metrics = ("jaccard", overlap["jaccard"]), ("precision", overlap["precision"]), ("recall", overlap["recall"])
        for key, value in (*metrics, ("spearman", overlap["spearman"])):
            shown = number(value) if value is not None else f"— ({overlap['undefined'].get(key, '')})"
            table.add_row(key, _text(shown))
        parts.append(table)
    parts.append(_definitions(concept) if width >= NARROW else _definition_list(concept))
    stability = _stability(data, concept)
    if stability is not None:
        parts.append(stability)
    grid = _category_map(data, concept) if compared(concept) or concept_grid(data, concept) is None else None
    if grid is not None:
        parts.append(grid)
    if compared(concept):
        parts.append(_sensitivity(overlap))
    title = Text.assemble((printable(name), "bold"), printable(f" ({concept.get('unit', '')})"), overflow="ellipsis")
    return Panel(Group(*parts), title=title, title_align="left")


def _status(definition: DefinitionEntry) -> Text:
    if definition["status"] == "errored":
        return _text(f"errored: {definition['error']}", "red")
    if definition["status"] == "not_applicable":
        return _text(f"not applicable: {definition['not_applicable']}", "yellow")
    return _text(definition["status"].replace("_", " "))


def _definition_list(concept: ConceptEntry) -> Group:
    """The definitions on a narrow console: one block per definition, so that its name keeps a whole line."""
    blocks: list[Any] = [Text("definitions", style="italic")]
    for name, definition in concept["definitions"].items():
        line = Text.assemble(
            (printable(name), "bold"), printable(f" ({definition['kind']}): "), _status(definition), overflow="ellipsis"
        )
        blocks.append(line)
        blocks.append(Padding(_text(definition_criteria_text(definition)), (0, 0, 0, 2)))
        members = marked_members(definition)
        blocks.append(Padding(Text.assemble("members: ", _units(members), overflow="ellipsis"), (0, 0, 0, 2)))
    return Group(*blocks)


def _definitions(concept: ConceptEntry) -> Table:
    table = Table(title="definitions", title_justify="left")
    for column in ("definition", "kind", "criteria", "members", "status"):
        table.add_column(column, overflow="ellipsis")
    for name, definition in concept["definitions"].items():
        status = _status(definition)
        criteria = _text(definition_criteria_text(definition))
        table.add_row(_text(name), _text(definition["kind"]), criteria, _units(marked_members(definition)), status)
    return table


def _stability(data: ReportDocument, concept: ConceptEntry) -> Table | None:
    """``--seeds K``: each definition's unstable units (marked ``~`` in the members); with it or ``--bootstrap B``
    the margins nearest the threshold; ``None`` for a report with neither."""
    seeds, scale = seed_count(data), margin_scale(data)
    if scale is None:
        return None
    title = f"stability across {seeds} probe seeds (margins in {scale})" if seeds >= 2 else f"margins in {scale}"
    table = Table(title=title, title_justify="left")
    for column in ("definition", "members", "margins nearest the threshold"):
        table.add_column(column, overflow="fold")
    for name, definition in concept["definitions"].items():
        line = stability_line(definition, seeds) or "—"
        table.add_row(_text(name), _text(line), _text("; ".join(margin_lines(definition)) or "—"))
    return table


def _category_map(data: ReportDocument, concept: ConceptEntry) -> Table | None:
    grid = concept_grid(data, concept)
    if grid is None:
        return _unit_table(concept)
    category = categories(concept, concept_units(concept))
    axes = "layer x head" if concept.get("unit") == "attention_head" else "layer x neuron"
    if concept.get("unit") not in ("attention_head", "mlp_neuron"):
        axes = "rows x columns"
    if len(grid.columns) > MAX_MAP_HEADS:
        table = Table(
            title=f"{axes} ({COMPACT_MARKS['both']}: both, B: behavioral only, M: mechanistic only)",
            title_justify="left",
            show_header=False,
            padding=(0, 0),
        )
        table.add_column("cells", justify="right", overflow="ellipsis")
        table.add_column("map")
        for label, cells in grid.wrapped(COMPACT_WIDTH):
            line = Text()
            for unit in cells:
                kind = category.get(unit, "neither")
                line.append(COMPACT_MARKS[kind], style=STYLES[kind])
            table.add_row(_text(f"{label} "), line)
        return table
    table = Table(title=f"{axes} (B: behavioral, M: mechanistic)", title_justify="left", padding=(0, 0))
    table.add_column(
        "L" if concept.get("unit") in ("attention_head", "mlp_neuron") else "", justify="right", overflow="ellipsis"
    )
    for column in grid.columns:
        table.add_column(_text(column), justify="center")
    for label, cells in zip(grid.rows, grid.cells, strict=True):
        marks = []
        for unit in cells:
            kind = category.get(unit, "neither")
            marks.append(Text(MARKS[kind], style=STYLES[kind]))
        table.add_row(_text(label), *marks)
    return table


def _unit_table(concept: ConceptEntry) -> Table:
    """Units without a grid: each unit's primary score per definition (members in bold) and its category."""
    units, left_out = table_units(concept, TABLE_ROWS)
    definitions = concept["definitions"]
    category = categories(concept, concept_units(concept))
    title = "primary scores (bold: member)" + (
        f"; {left_out} more {unit_plural(concept)} in the JSON" if left_out else ""
    )
    table = Table(title=_text(title), title_justify="left")
    table.add_column(_text(concept.get("unit", "unit")), overflow="ellipsis")
    for name, definition in definitions.items():
        table.add_column(_text(f"{name} ({definition['kind'][:1].upper()})"), justify="right", overflow="ellipsis")
    table.add_column("overlap", overflow="ellipsis")
    for unit in units:
        row: list[Any] = [_text(unit)]
        for definition in definitions.values():
            scores = definition.get("scores")
            member = unit in (definition.get("members") or [])
            row.append(_text("n/a" if scores is None else number(scores.get(unit)), style="bold" if member else ""))
        kind = category.get(unit, "neither") if compared(concept) else None
        row.append(Text(CATEGORY_LABELS[kind], style=STYLES[kind]) if kind else Text("—", style="dim"))
        table.add_row(*row)
    return table


def _sensitivity(overlap: OverlapEntry) -> Table:
    table = Table(title="threshold sensitivity (Jaccard of the unions)", title_justify="left")
    for column in ("factor", "all scaled", "behavioral scaled", "mechanistic scaled", "B", "M", "both"):
        table.add_column(column, justify="right")
    for row in overlap["sensitivity"]:
        table.add_row(
            Text(f"{row['factor']:g}", style="bold" if row["factor"] == 1 else ""),
            *(
                _plain(number(row[key]))
                for key in ("jaccard", "jaccard_behavioral_scaled", "jaccard_mechanistic_scaled")
            ),
            *(_plain(row[key]) for key in ("behavioral", "mechanistic", "both")),
        )
    return table
