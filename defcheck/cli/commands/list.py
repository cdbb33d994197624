"""``defcheck list``: the loaded concepts and their definitions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from defcheck.cli.options import (
    chosen_format,
    definitions_option,
    format_option,
    json_option,
    no_builtin_option,
    output_option,
)
from defcheck.cli.output import (
    output_console,
    print_diagnostics,
    report_plugin_problems,
    stderr_console,
    write_output,
)
from defcheck.cli.settings import Settings


@click.command("list")
@definitions_option
@no_builtin_option
@json_option
@format_option("table")
@output_option
@click.pass_obj
def list_(
    settings: Settings,
    definition_paths: tuple[Path, ...],
    no_builtin: bool,
    as_json: bool,
    format_name: str | None,
    output: Path | None,
) -> None:
    """List concepts and their definitions: kind, checkers, source."""
    from defcheck.cli.listings import list_payload
    from defcheck.cli.tables import concept_table
    from defcheck.language.registry import load_registry

    registry = load_registry(list(definition_paths), settings.extensions, include_builtin=not no_builtin)
    payload = list_payload(registry, settings.extensions)
    as_json = chosen_format(as_json, format_name, "table") == "json"
    report_plugin_problems(settings, failures=not as_json)  # the JSON holds them among its diagnostics
    if as_json:
        write_output(settings, output, json.dumps(payload, indent=2) + "\n")
        return
    with output_console(settings, output) as console:
        if not payload["concepts"]:
            console.print(
                "No concepts loaded. Add some with --definitions PATH, or start one with `defcheck new NAME`."
            )
        for concept in payload["concepts"]:
            console.print(concept_table(concept, console.width))
    if registry.errors:
        print_diagnostics(stderr_console(), registry.errors)
        stderr_console().print(f"{len(registry.errors)} error(s): run `defcheck validate` for details", style="red")
