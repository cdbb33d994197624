"""What ``defcheck validate`` checks: the given concept files and project file, in the context of the project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from defcheck.cli.settings import Settings
from defcheck.diagnostics import Diagnostic, display_path


@dataclass
class Validation:
    """The diagnostics of one ``validate``, and what its summary line counts."""

    diagnostics: list[Diagnostic]
    concepts: int
    definitions: int
    project_note: str

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def validate_paths(
    settings: Settings, paths: tuple[Path, ...], no_builtin: bool, config_path: Path | None, no_config: bool
) -> Validation:
    """Validate ``paths`` (concept files, folders, a project file) or, without any, the project and its definitions.

    The project file is ``--config``'s, else the nearest one (unless ``--no-config``), as in every command that
    reads it; a project file among ``paths`` takes its place. Its definitions are loaded so that references
    resolve, but only the files given are reported.
    """
    from defcheck.ci.project import (
        check_project,
        is_project_file,
        load_project,
        looks_like_concept_file,
        resolve_project,
    )
    from defcheck.language.concept_file import find_concept_files
    from defcheck.language.registry import load_registry

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
    note = f"project file {display_path(project_path)}, " if check_project_file and project_path else ""
    return Validation(diagnostics, len(registry.files), len(registry.order), note)
