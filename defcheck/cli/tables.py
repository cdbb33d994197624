"""The Rich tables of ``list``, ``plugins`` and ``checkers``: names are never broken mid-word.

A name column is as wide as its longest name and does not wrap, so on a narrow terminal (or ``COLUMNS``) the
other columns wrap at spaces instead; only when even the names do not fit is a name cut, with an ellipsis.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from defcheck.cli.output import threshold_text
from defcheck.hooks.declarations import PluginInfo

WORD_CAP = 40
"""A column is never narrower than its longest word, up to this many characters (a long URL may still wrap)."""


def _table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> Table:
    """A table of ``rows`` (Rich markup) whose columns are at least as wide as their longest word (names have no
    spaces), so that Rich wraps cells at spaces and never inside a name while the terminal is wide enough."""
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        words = [word for row in rows for word in Text.from_markup(row[index]).plain.split()]
        table.add_column(column, min_width=min(WORD_CAP, max(map(len, [column, *words]))))
    for row in rows:
        table.add_row(*row)
    return table


def concept_table(concept: dict[str, Any]) -> Table:
    """One concept of ``defcheck list``: a row per definition (see ``list_payload`` for the shape)."""
    rows = []
    for definition in concept["definitions"]:
        checkers = f" {definition['combine']} ".join(
            f"{c['checker']} {threshold_text(c['threshold'])}" for c in definition["criteria"]
        )
        kind_style = "cyan" if definition["kind"] == "behavioral" else "magenta"
        source = escape(definition["source"]) if definition["source"] else "[yellow](no source)[/]"
        rows.append([definition["id"], f"[{kind_style}]{definition['kind']}[/]", escape(checkers), source])
    title = f"{concept['name']} ({concept['unit']}): {concept['summary']}"
    return _table(title, ("definition", "kind", "checkers", "source"), rows)


def checkers_table(rows: list[dict[str, Any]]) -> Table:
    """``defcheck checkers``: a row per checker (the rows of its JSON output)."""
    cells = []
    for row in rows:
        style = "cyan" if row["observes"] == "behavior" else "magenta"
        unit = row["unit"] if isinstance(row["unit"], str) else " or ".join(row["unit"])
        params = ", ".join(row["params"]) or "-"
        cells.append(
            [row["name"], f"[{style}]{row['observes']}[/]", unit, row["probe"], row["with"], params, row["plugin"]]
        )
    return _table("defcheck checkers", ("checker", "observes", "unit", "probe", "with", "params", "plugin"), cells)


def plugins_table(plugins: list[PluginInfo], disabled: list[str]) -> Table:
    """``defcheck plugins``: where each plugin comes from and what it registers (or why it failed)."""
    rows = []
    for info in plugins:
        origin = f"{info.distribution or 'in-process'}{' (built-in)' if info.builtin else ''}\n{info.module}"
        if info.error:
            registers = f"[red]error: {escape(info.error)}[/]"
        else:
            registers = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in info.registers.items()) or "-"
        rows.append([info.name, escape(origin), registers])
    rows += [[name, "-", f"[yellow]left out (-p no:{escape(name)})[/]"] for name in disabled]
    return _table("defcheck plugins", ("plugin", "from", "registers"), rows)
