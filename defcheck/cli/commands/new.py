"""``defcheck new``: a commented starter concept file."""

from __future__ import annotations

from pathlib import Path

import click

from defcheck.cli.output import STDOUT, report_plugin_problems, stderr_console, write_file, write_output
from defcheck.cli.settings import Settings
from defcheck.diagnostics import DefcheckError, did_you_mean
from defcheck.language.starter import starter_file


@click.command()
@click.argument("name")
@click.option(
    "--unit",
    metavar="KIND",
    default="attention_head",
    show_default=True,
    help="The unit kind the concept categorizes: a built-in one (attention_head, mlp_neuron, layer, model) or a "
    "plugin's (see `defcheck plugins`).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the file here instead of NAME.yaml ('-': stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def new(ctx: click.Context, name: str, unit: str, output: Path | None, force: bool) -> None:
    """Write a commented starter concept file with one behavioral and one mechanistic definition."""
    settings: Settings = ctx.obj
    path = output or Path(f"{name}.yaml")
    text = starter_file(name, unit, file="" if path == STDOUT else str(path))  # refuses a bad name first
    report_plugin_problems(settings)
    kinds = settings.extensions.unit_kinds
    if unit not in kinds:
        hint = did_you_mean(unit, kinds) or f" (known: {', '.join(sorted(kinds))})"
        raise click.BadParameter(f"unknown unit kind '{unit}'{hint}", ctx=ctx, param_hint="'--unit'")
    if path != STDOUT and path.exists() and not force:
        raise DefcheckError(f"{path} exists; use --force to overwrite it")
    if path == STDOUT:
        write_output(settings, path, text)
        return
    write_file(path, text)
    if not settings.quiet:
        stderr_console().print(f"wrote {path}; check it with `defcheck validate {path}`", markup=False)
