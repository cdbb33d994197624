"""``defcheck checkers``: the registered checkers."""

from __future__ import annotations

import json

import click
from rich.table import Table

from defcheck.cli.options import (
    json_option,
)
from defcheck.cli.output import (
    stdout_console,
)
from defcheck.cli.settings import Settings


@click.command()
@click.option("--markdown", is_flag=True, help="Print the reference page (docs/checkers.md) instead of a table.")
@json_option
@click.pass_obj
def checkers(settings: Settings, markdown: bool, as_json: bool) -> None:
    """List the registered checkers: what each observes, its parameters, probe and `with:` needs."""
    from defcheck.hooks.reference import checkers_markdown

    extensions = settings.extensions
    if markdown:
        click.echo(checkers_markdown(extensions), nl=False)
        return
    rows = [
        {
            "name": checker.name,
            "observes": checker.observes,
            "unit": checker.unit,
            "probe": checker.probe,
            "with": checker.relation,
            "params": sorted(checker.params.model_fields),
            "plugin": extensions.owner("checkers", checker.name),
            "summary": checker.summary,
            "source": checker.source,
        }
        for checker in sorted(extensions.checkers.values(), key=lambda c: c.name)
    ]
    if as_json:
        click.echo(json.dumps({"checkers": rows}, indent=2))
        return
    table = Table(title="defcheck checkers", title_justify="left")
    for column in ("checker", "observes", "unit", "probe", "with", "params", "plugin"):
        table.add_column(column)
    for row in rows:
        style = "cyan" if row["observes"] == "behavior" else "magenta"
        table.add_row(
            row["name"],
            f"[{style}]{row['observes']}[/]",
            row["unit"] if isinstance(row["unit"], str) else " or ".join(row["unit"]),
            row["probe"],
            row["with"],
            ", ".join(row["params"]) or "-",
            row["plugin"],
        )
    stdout_console().print(table)
