"""The names in a project file: its models against each other, and its concepts, definitions and
expectations against the loaded registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from defcheck.diagnostics import Diagnostic, did_you_mean
from defcheck.language.yaml_source import FieldPath

if TYPE_CHECKING:
    from defcheck.ci.project_file import ProjectFile
    from defcheck.language.registry import Registry


def check_names(project: ProjectFile) -> list[Diagnostic]:
    """Checks that need no registry: model names unique, ``model:`` of expectations among them."""
    out: list[Diagnostic] = []
    seen: dict[str, int] = {}
    for index, (name, _) in enumerate(project.models()):
        if name in seen:
            out.append(
                project.diagnostic(
                    ("models", index),
                    f"two models are named '{name}' (also models[{seen[name]}]); give one a different 'name:'",
                    "duplicate-model",
                )
            )
        seen.setdefault(name, index)
    names = list(seen)
    for expectation in project.expectations:
        wanted = expectation.spec.model
        if wanted is None or wanted in names:
            continue
        known = f"models here: {', '.join(names)}" if names else "'models:' lists none"
        out.append(
            project.diagnostic(
                ("expectations", expectation.index, "model"),
                f"no model is named '{wanted}'{did_you_mean(wanted, names)} ({known})",
                "unknown-model",
            )
        )
    for index, entry in enumerate(project.project.definitions):
        if not (project.root / entry).exists():
            out.append(
                project.diagnostic(
                    ("definitions", index), f"'{entry}' does not exist (relative to {project.label})", "io"
                )
            )
    return out


def check_project(project: ProjectFile, registry: Registry) -> list[Diagnostic]:
    """Check the names in a project file against the loaded registry: concepts, definitions and selections.

    A name in a concept file that was checked but not loaded (it has errors, reported on their own) is not
    reported again here.
    """
    concepts = set(registry.files)
    definitions = set(registry.definition_ids())
    unloaded = set(getattr(registry, "unloaded", ()))
    unloaded_concepts = {definition.partition(".")[0] for definition in unloaded}
    out: list[Diagnostic] = []

    def unknown_concept(where: FieldPath, name: str) -> None:
        if name in unloaded_concepts:
            return
        listing = ", ".join(sorted(concepts)) or "none loaded"
        out.append(
            project.diagnostic(
                where,
                f"no concept '{name}' is loaded{did_you_mean(name, concepts)} (concepts: {listing})",
                "unknown-concept",
            )
        )

    def unknown_definition(where: FieldPath, ref: str) -> None:
        if ref in unloaded:
            return
        concept = ref.partition(".")[0]
        if concept not in concepts:
            unknown_concept(where, concept)
            return
        names = sorted(d for d in definitions if d.startswith(f"{concept}."))
        out.append(
            project.diagnostic(
                where,
                f"no definition '{ref}'{did_you_mean(ref, definitions)} (in {concept}: {', '.join(names)})",
                "unknown-definition",
            )
        )

    for index, selected in enumerate(project.project.concepts):
        where: FieldPath = ("concepts", index)
        if "." in selected:
            if selected not in definitions:
                unknown_definition(where, selected)
        elif selected not in concepts:
            unknown_concept(where, selected)
    for expectation in project.expectations:
        spec = expectation.spec
        base: FieldPath = ("expectations", expectation.index)
        definition = getattr(spec, "definition", None)
        if definition is not None:
            if definition not in definitions:
                unknown_definition((*base, "definition"), definition)
        elif spec.concept not in concepts:
            unknown_concept((*base, "concept"), str(spec.concept))
    return out
