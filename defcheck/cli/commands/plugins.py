"""``defcheck plugins``: the installed plugins and what they register."""

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
@json_option
@click.pass_obj
def plugins(settings: Settings, as_json: bool) -> None:
    """List installed plugins, where they come from and what they register."""
    extensions = settings.extensions
    if as_json:
        click.echo(json.dumps({"plugins": [info.to_dict() for info in extensions.plugins]}, indent=2))
        return
    table = Table(title="defcheck plugins", title_justify="left")
    for column in ("plugin", "from", "registers"):
        table.add_column(column)
    for info in extensions.plugins:
        origin = f"{info.distribution or 'in-process'}{' (built-in)' if info.builtin else ''}\n{info.module}"
        if info.error:
            registers = f"[red]error: {info.error}[/]"
        else:
            registers = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in info.registers.items()) or "-"
        table.add_row(info.name, origin, registers)
    stdout_console().print(table)
