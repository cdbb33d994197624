"""The terminal format: per concept a rich panel with the summary, the overlap (categories in color), the
definitions, a layer x head map of the categories, and the threshold sensitivity."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from defcheck.report.common import (
    CATEGORY_LABELS,
    all_units,
    categories,
    definition_criteria_text,
    grid_shape,
    model_line,
    number,
    split_unit,
    unit_plural,
)

STYLES = {
    "both": "bold white on green",
    "behavioral_only": "bold black on yellow",
    "mechanistic_only": "bold white on magenta",
    "neither": "dim",
}
MARKS = {"both": "B+M", "behavioral_only": " B ", "mechanistic_only": " M ", "neither": " · "}
MAX_MAP_HEADS = 32  # wider models get no category map (it would not fit a terminal)


def print_report(data: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(Text(f"defcheck report: {model_line(data)}", style="bold"))
    if not data["concepts"]:
        console.print("No definitions were evaluated.")
    for name, concept in data["concepts"].items():
        console.print(_concept(data, name, concept))


def _units(units: list[str] | None, style: str = "") -> Text:
    return Text(", ".join(units) if units else "—", style=style if units else "dim")


def _concept(data: dict[str, Any], name: str, concept: dict[str, Any]) -> Panel:
    parts: list[Any] = []
    if concept.get("description"):
        parts.append(Text(concept["description"], style="italic"))
    parts.append(Text(concept["summary"]))
    overlap = concept["overlap"]
    plural = unit_plural(concept)
    if overlap is not None:
        table = Table(title="overlap (union of each kind)", title_justify="left", show_header=False)
        table.add_column("category")
        table.add_column(plural)
        for key in ("both", "behavioral_only", "mechanistic_only"):
            label = Text(f"{CATEGORY_LABELS[key]} ({len(overlap[key])})", style=STYLES[key])
            table.add_row(label, _units(overlap[key]))
        table.add_row(Text("neither", style=STYLES["neither"]), str(overlap["neither_count"]))
        for key in ("jaccard", "precision", "recall", "spearman"):
            value = overlap[key]
            shown = number(value) if value is not None else f"— ({overlap['undefined'].get(key, '')})"
            table.add_row(key, shown)
        parts.append(table)
    parts.append(_definitions(concept))
    grid = _category_map(data, concept) if overlap is not None else None
    if grid is not None:
        parts.append(grid)
    if overlap is not None:
        parts.append(_sensitivity(overlap))
    return Panel(Group(*parts), title=f"[bold]{name}[/bold] ({concept.get('unit', '')})", title_align="left")


def _definitions(concept: dict[str, Any]) -> Table:
    table = Table(title="definitions", title_justify="left")
    for column in ("definition", "kind", "criteria", "members", "status"):
        table.add_column(column, overflow="fold")
    for name, definition in concept["definitions"].items():
        status = Text(definition["status"].replace("_", " "))
        if definition["status"] == "errored":
            status = Text(f"errored: {definition['error']}", style="red")
        elif definition["status"] == "not_applicable":
            status = Text(f"not applicable: {definition['not_applicable']}", style="yellow")
        members = definition.get("members")
        table.add_row(name, definition["kind"], definition_criteria_text(definition), _units(members), status)
    return table


def _category_map(data: dict[str, Any], concept: dict[str, Any]) -> Table | None:
    units = all_units(concept)
    layers, heads = grid_shape(data["model"], units)
    if not units or heads > MAX_MAP_HEADS or any(split_unit(u) is None for u in units):
        return None
    category = categories(concept, units)
    table = Table(title="layer x head (B: behavioral, M: mechanistic)", title_justify="left", padding=(0, 0))
    table.add_column("L", justify="right")
    for head in range(heads):
        table.add_column(str(head), justify="center")
    for layer in range(layers):
        cells = []
        for head in range(heads):
            kind = category.get(f"{layer}.{head}", "neither")
            cells.append(Text(MARKS[kind], style=STYLES[kind]))
        table.add_row(str(layer), *cells)
    return table


def _sensitivity(overlap: dict[str, Any]) -> Table:
    table = Table(title="threshold sensitivity (Jaccard of the unions)", title_justify="left")
    for column in ("factor", "all scaled", "behavioral scaled", "mechanistic scaled", "B", "M", "both"):
        table.add_column(column, justify="right")
    for row in overlap["sensitivity"]:
        table.add_row(
            Text(f"{row['factor']:g}", style="bold" if row["factor"] == 1 else ""),
            number(row["jaccard"]),
            number(row["jaccard_behavioral_scaled"]),
            number(row["jaccard_mechanistic_scaled"]),
            str(row["behavioral"]),
            str(row["mechanistic"]),
            str(row["both"]),
        )
    return table
