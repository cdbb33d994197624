"""``defcheck validate``: schema, references and the kind lint of concept files and the project file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from defcheck.cli.options import (
    config_option,
    json_option,
    no_builtin_option,
    no_config_option,
)
from defcheck.cli.output import (
    print_diagnostics,
    stdout_console,
)
from defcheck.cli.settings import EXIT_FINDINGS, EXIT_OK, Settings
from defcheck.diagnostics import Diagnostic, display_path
from defcheck.language.registry import load_registry


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@no_builtin_option
@json_option
@config_option
@no_config_option
@click.pass_obj
def validate(
    settings: Settings,
    paths: tuple[Path, ...],
    no_builtin: bool,
    as_json: bool,
    config_path: Path | None,
    no_config: bool,
) -> None:
    """Validate concept files and the project file: schema, references, and the kind lint.

    PATHS are concept files, folders of them, or a project file (defcheck.yaml). Without PATHS, the project
    file and its definitions are validated (or only the built-in concepts when there is no project file). A
    YAML file given by name without a top-level 'concept:' or 'definitions:' key (a CI workflow, say) is
    skipped with a warning, so the command works as a pre-commit hook on every changed *.yaml. The project's
    definitions are loaded so that references between files resolve, but only the files given are reported.
    The built-in concepts are loaded too unless --no-builtin is given. Exit 0 when there are no errors, 1
    when there are.
    """
    from defcheck.ci.project import (
        check_project,
        is_project_file,
        load_project,
        looks_like_concept_file,
        resolve_project,
    )
    from defcheck.language.concept_file import find_concept_files

    project_path = resolve_project(config_path, no_config)
    given_projects = [p for p in paths if p.is_file() and is_project_file(p)]
    if given_projects:
        project_path = given_projects[0]
    skipped: list[Diagnostic] = []
    concept_inputs: list[Path] = []
    for path in paths:
        if path in given_projects:
            continue
        if path.is_dir() or looks_like_concept_file(path):
            concept_inputs.append(path)
        else:
            message = "skipped: not a concept file (it has no top-level 'concept:' or 'definitions:' key)"
            skipped.append(Diagnostic(display_path(path), None, None, "", message, "warning", "not-a-concept-file"))
    project, project_diagnostics = (None, []) if project_path is None else load_project(project_path)
    check_project_file = project_path is not None and (not paths or bool(given_projects))
    context: list[Path] = []
    if project is not None:
        context = [p for p in project.definition_paths() if p.exists()]
    inputs = concept_inputs if paths else context
    include_builtin = not no_builtin and (project.project.builtin if project is not None else True)
    registry = load_registry([*context, *inputs], settings.extensions, include_builtin=include_builtin)
    reported = {display_path(f) for path in inputs for f in find_concept_files(path)}
    context_only = {display_path(f) for path in context for f in find_concept_files(path)} - reported
    diagnostics = settings.extensions.problems + [d for d in registry.diagnostics if d.file not in context_only]
    if check_project_file:
        diagnostics += project_diagnostics
        if project is not None:
            diagnostics += check_project(project, registry)
    diagnostics += skipped
    errors = [d for d in diagnostics if d.severity == "error"]
    if as_json:
        click.echo(json.dumps({"diagnostics": [d.to_dict() for d in diagnostics], "errors": len(errors)}, indent=2))
    else:
        console = stdout_console()
        shown = errors if settings.quiet else diagnostics
        print_diagnostics(console, shown)
        if not settings.quiet:
            warnings = len(diagnostics) - len(errors)
            project_note = f"project file {display_path(project_path)}, " if check_project_file and project_path else ""
            console.print(
                f"{project_note}{len(registry.files)} concept(s), {len(registry.order)} definition(s): "
                f"{len(errors)} error(s), {warnings} warning(s)",
                style="red" if errors else "green",
            )
    sys.exit(EXIT_FINDINGS if errors else EXIT_OK)
