"""``defcheck checkers``: the registered checkers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from defcheck.cli.options import chosen_format, format_option, json_option, output_option
from defcheck.cli.output import output_console, report_plugin_problems, write_output
from defcheck.cli.settings import Settings


@click.command()
@click.option(
    "--markdown", is_flag=True, help="Print the reference page (docs/checkers.md) instead of a table; = -f markdown."
)
@json_option
@format_option("table", "markdown")
@output_option
@click.pass_obj
def checkers(settings: Settings, markdown: bool, as_json: bool, format_name: str | None, output: Path | None) -> None:
    """List the registered checkers: what each observes, its parameters, probe and `with:` needs."""
    from defcheck.cli.listings import checker_rows
    from defcheck.cli.tables import checkers_table
    from defcheck.hooks.reference import checkers_markdown

    if markdown and (as_json or format_name not in (None, "markdown")):
        raise click.UsageError("--markdown and --json/--format ask for two formats; give one")
    chosen = "markdown" if markdown else chosen_format(as_json, format_name, "table")
    extensions = settings.extensions
    report_plugin_problems(settings)
    if chosen == "markdown":
        write_output(settings, output, checkers_markdown(extensions))
    elif chosen == "json":
        write_output(settings, output, json.dumps({"checkers": checker_rows(extensions)}, indent=2) + "\n")
    else:
        with output_console(settings, output) as console:
            console.print(checkers_table(checker_rows(extensions), console.width))
