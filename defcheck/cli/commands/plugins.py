"""``defcheck plugins``: the installed plugins and what they register."""

from __future__ import annotations

import json
from pathlib import Path

import click

from defcheck.cli.options import chosen_format, format_option, json_option, output_option
from defcheck.cli.output import output_console, report_plugin_problems, write_output
from defcheck.cli.settings import Settings


@click.command()
@json_option
@format_option("table")
@output_option
@click.pass_obj
def plugins(settings: Settings, as_json: bool, format_name: str | None, output: Path | None) -> None:
    """List installed plugins, where they come from and what they register (a failure shows in its row)."""
    from defcheck.cli.tables import plugins_table

    extensions = settings.extensions
    report_plugin_problems(settings, failures=False)  # the table and the JSON show them
    if chosen_format(as_json, format_name, "table") == "json":
        payload = {"plugins": [info.to_dict() for info in extensions.plugins], "disabled": extensions.disabled}
        write_output(settings, output, json.dumps(payload, indent=2) + "\n")
        return
    with output_console(settings, output) as console:
        console.print(plugins_table(extensions.plugins, extensions.disabled, console.width))
