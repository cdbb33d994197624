"""``defcheck new``: a commented starter concept file."""

from __future__ import annotations

from pathlib import Path

import click

from defcheck.cli.output import (
    stdout_console,
    write_file,
)
from defcheck.cli.settings import Settings
from defcheck.diagnostics import DefcheckError
from defcheck.hooks.declarations import UNIT_KINDS
from defcheck.language.starter import starter_file


@click.command()
@click.argument("name")
@click.option(
    "--unit",
    type=click.Choice(UNIT_KINDS),
    default="attention_head",
    show_default=True,
    help="The unit kind the concept categorizes.",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Where to write (default: NAME.yaml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def new(settings: Settings, name: str, unit: str, output: Path | None, force: bool) -> None:
    """Write a commented starter concept file with one behavioral and one mechanistic definition."""
    path = output or Path(f"{name}.yaml")
    text = starter_file(name, unit, file=str(path))  # refuses a bad name before touching the disk
    if path.exists() and not force:
        raise DefcheckError(f"{path} exists; use --force to overwrite it")
    write_file(path, text)
    if not settings.quiet:
        stdout_console().print(f"wrote {path}; check it with `defcheck validate {path}`")
