"""``defcheck validate``: schema, references and the kind lint of concept files and the project file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from defcheck.cli.options import (
    chosen_format,
    config_option,
    format_option,
    json_option,
    no_builtin_option,
    no_config_option,
    output_option,
)
from defcheck.cli.output import output_console, print_diagnostics, report_plugin_problems, write_output
from defcheck.cli.settings import EXIT_FINDINGS, EXIT_OK, Settings


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@no_builtin_option
@json_option
@format_option("text")
@output_option
@config_option
@no_config_option
@click.pass_obj
def validate(
    settings: Settings,
    paths: tuple[Path, ...],
    no_builtin: bool,
    as_json: bool,
    format_name: str | None,
    output: Path | None,
    config_path: Path | None,
    no_config: bool,
) -> None:
    """Validate concept files and the project file: schema, references, and the kind lint.

    PATHS are concept files, folders of them, or a project file (defcheck.yaml). Without PATHS, the project
    file (--config's, else the nearest) and its definitions are validated (or only the built-in concepts when
    there is no project file). A YAML file given by name without a top-level 'concept:' or 'definitions:' key
    (a CI workflow, say) is skipped with a warning, so the command works as a pre-commit hook on every changed
    *.yaml. The project's definitions are loaded so that references between files resolve, but only the files
    given are reported. The built-in concepts are loaded too unless --no-builtin is given. Exit 0 when there
    are no errors, 1 when there are.
    """
    from defcheck.cli.validation import validate_paths

    fmt = chosen_format(as_json, format_name, "text")
    result = validate_paths(settings, paths, no_builtin, config_path, no_config)
    report_plugin_problems(settings, failures=False)  # they are among the diagnostics
    errors = result.errors
    if fmt == "json":
        payload = {"diagnostics": [d.to_dict() for d in result.diagnostics], "errors": len(errors)}
        write_output(settings, output, json.dumps(payload, indent=2) + "\n")
    else:
        with output_console(settings, output) as console:
            print_diagnostics(console, errors if settings.quiet else result.diagnostics)
            if not settings.quiet:
                console.print(
                    f"{result.project_note}{result.concepts} concept(s), {result.definitions} definition(s): "
                    f"{len(errors)} error(s), {len(result.diagnostics) - len(errors)} warning(s)",
                    style="red" if errors else "green",
                )
    sys.exit(EXIT_FINDINGS if errors else EXIT_OK)
