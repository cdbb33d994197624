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
from defcheck.report.escaping import printable


def _cell(value: Any) -> str:
    """User text (from a concept file or a plugin) as Rich markup that prints as the text itself: brackets
    escaped, control characters shown (:func:`~defcheck.report.escaping.printable`)."""
    return escape(printable(value))


def _fill(room: int, caps: list[int]) -> list[int]:
    """Share ``room`` among columns, none above its cap: the smallest caps are met first, the rest split evenly."""
    shares = [0] * len(caps)
    for place, index in enumerate(sorted(range(len(caps)), key=lambda i: caps[i])):
        shares[index] = max(0, min(caps[index], room // (len(caps) - place)))
        room -= shares[index]
    return shares


def _table(title: str | Text, columns: tuple[str, ...], rows: list[list[str]], width: int) -> Table:
    """A table of ``rows`` (Rich markup) that fits a console ``width`` wide and keeps the first column's names whole.

    Rich wraps cells at spaces but, when a table is too wide, shortens columns without regard to their words,
    names included. So the first column is as wide as its longest name (up to half the line), and when the
    others do not fit beside it, each gets a width of its own: first enough for its longest word (the
    narrowest first), then what is left, up to its widest line; a word too long for its share ends in "…".
    """
    plain = [[Text.from_markup(cell).plain for cell in row] for row in rows]
    words = [max([len(column), *(len(w) for row in plain for w in row[i].split())]) for i, column in enumerate(columns)]
    lines = [
        max([len(column), *(len(line) for row in plain for line in row[i].splitlines())])
        for i, column in enumerate(columns)
    ]
    first = min(words[0], width // 2)
    room = width - first - 3 * len(columns) - 1  # each column has 2 of padding and a border, plus the last border
    shares: list[int | None] = [None] * (len(columns) - 1)
    if sum(lines[1:]) > room:
        whole_words = _fill(room, words[1:])
        more = _fill(room - sum(whole_words), [line - word for line, word in zip(lines[1:], whole_words, strict=True)])
        shares = [max(1, word + extra) for word, extra in zip(whole_words, more, strict=True)]
    table = Table(title=title, title_justify="left")
    table.add_column(columns[0], min_width=first, max_width=first, no_wrap=first >= words[0])
    for column, share in zip(columns[1:], shares, strict=True):
        table.add_column(column, max_width=share)
    for row in rows:
        table.add_row(*row)
    return table


def concept_table(concept: dict[str, Any], width: int) -> Table:
    """One concept of ``defcheck list``: a row per definition (see ``list_payload`` for the shape)."""
    rows = []
    for definition in concept["definitions"]:
        checkers = f" {definition['combine']} ".join(
            f"{c['checker']} {threshold_text(c['threshold'])}" for c in definition["criteria"]
        )
        kind_style = "cyan" if definition["kind"] == "behavioral" else "magenta"
        source = _cell(definition["source"]) if definition["source"] else "[yellow](no source)[/]"
        rows.append([_cell(definition["id"]), f"[{kind_style}]{_cell(definition['kind'])}[/]", _cell(checkers), source])
    title = Text(printable(f"{concept['name']} ({concept['unit']}): {concept['summary']}"))
    return _table(title, ("definition", "kind", "checkers", "source"), rows, width)


def checkers_table(rows: list[dict[str, Any]], width: int) -> Table:
    """``defcheck checkers``: a row per checker (the rows of its JSON output)."""
    cells = []
    for row in rows:
        style = "cyan" if row["observes"] == "behavior" else "magenta"
        unit = row["unit"] if isinstance(row["unit"], str) else " or ".join(row["unit"])
        params = ", ".join(row["params"]) or "-"
        plain = [_cell(value) for value in (row["name"], row["observes"], unit, row["probe"], row["with"], params)]
        cells.append([plain[0], f"[{style}]{plain[1]}[/]", *plain[2:], _cell(row["plugin"])])
    return _table(
        "defcheck checkers", ("checker", "observes", "unit", "probe", "with", "params", "plugin"), cells, width
    )


def plugins_table(plugins: list[PluginInfo], disabled: list[str], width: int) -> Table:
    """``defcheck plugins``: where each plugin comes from and what it registers (or why it failed)."""
    rows = []
    for info in plugins:
        origin = f"{info.distribution or 'in-process'}{' (built-in)' if info.builtin else ''}\n{info.module}"
        if info.error:
            registers = f"[red]error: {_cell(info.error)}[/]"
        else:
            registers = "\n".join(_cell(f"{kind}: {', '.join(names)}") for kind, names in info.registers.items()) or "-"
        rows.append([_cell(info.name), _cell(origin), registers])
    rows += [[_cell(name), "-", f"[yellow]left out (-p no:{_cell(name)})[/]"] for name in disabled]
    return _table("defcheck plugins", ("plugin", "from", "registers"), rows, width)
