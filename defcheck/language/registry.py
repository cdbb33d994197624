"""The registry: every loaded concept, validated against the plugins, with references resolved and ordered."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from defcheck.diagnostics import DefcheckError, Diagnostic, did_you_mean
from defcheck.hooks.manager import Extensions
from defcheck.language.concept_file import ConceptFile, _message, find_concept_files, load_concept_file
from defcheck.language.lint import lint_kinds
from defcheck.language.schema import Concept, Criterion, Definition
from defcheck.language.yaml_source import MAX_FILE_BYTES, FieldPath, format_field


@dataclass
class Registry:
    """The loaded concepts and definitions, in evaluation order, with every diagnostic found."""

    files: dict[str, ConceptFile] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def concepts(self) -> dict[str, Concept]:
        return {name: file.concept for name, file in self.files.items()}

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def definition(self, definition_id: str) -> tuple[ConceptFile, Definition]:
        """The concept file and definition for ``concept.definition``."""
        concept, _, name = definition_id.partition(".")
        file = self.files[concept]
        return file, file.concept.definitions[name]

    def definition_ids(self) -> list[str]:
        return [f"{name}.{d}" for name, file in self.files.items() for d in file.concept.definitions]


def builtin_paths(extensions: Extensions) -> list[Path]:
    """The concept folders that installed plugins ship (the built-in ones among them)."""
    paths = []
    for folder in extensions.concept_folders:
        path = folder.path
        if not isinstance(path, Path):
            path = Path(str(importlib.resources.files(path))) if isinstance(path, str) else Path(path)
        paths.append(path)
    return paths


def load_registry(
    paths: Sequence[Path],
    extensions: Extensions,
    *,
    include_builtin: bool = True,
) -> Registry:
    """Load concept files from ``paths`` (files or folders) and the plugins' folders; collect every problem.

    Errors do not stop loading: all files are read, and every error in every file is reported in one pass.
    """
    registry = Registry()
    sources: list[tuple[Path, bool]] = []
    if include_builtin:
        sources += [(path, True) for path in builtin_paths(extensions)]
    for path in paths:
        if not path.exists():
            raise DefcheckError(f"{path}: no such file or folder")
        sources.append((path, False))
    seen: dict[Path, bytes] = {}
    builtin_texts: dict[bytes, Path] = {}
    loaded: list[ConceptFile] = []
    for root, is_builtin in sources:
        for path in find_concept_files(root):
            resolved = path.resolve()
            if resolved in seen:
                continue
            content = _small_file_bytes(path)
            seen[resolved] = content
            if not is_builtin and content and content in builtin_texts:
                continue  # the same file as a built-in one (e.g. the repository's own definitions/)
            if is_builtin:
                builtin_texts[content] = path
            label = f"<builtin>/{path.relative_to(root)}" if is_builtin and root.is_dir() else None
            file, problems = load_concept_file(path, label)
            registry.diagnostics += problems
            if file is not None:
                loaded.append(file)
    for file in loaded:
        name = file.concept.concept
        if name in registry.files:
            first = registry.files[name]
            line = first.position("concept")[0]
            registry.diagnostics.append(
                file.diagnostic(
                    ("concept",),
                    f"the concept '{name}' is already defined in {first.label}:{line}; concept names are unique",
                    "duplicate-concept",
                )
            )
            continue
        registry.files[name] = file
    for file in registry.files.values():
        registry.diagnostics += _check_semantics(file, extensions)
        registry.diagnostics += lint_kinds(file, extensions)
    references = _resolve_references(registry)
    registry.order = _evaluation_order(registry, references)
    registry.diagnostics = sorted(set(registry.diagnostics), key=_sort_key)
    return registry


def _small_file_bytes(path: Path) -> bytes:
    """The bytes of a file small enough to be a concept file (for duplicate detection), else empty."""
    try:
        return path.read_bytes() if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES else b""
    except OSError:
        return b""  # read_yaml reports the problem with the file's name


def _sort_key(d: Diagnostic) -> tuple:
    return (d.file, d.line or 0, d.column or 0, d.field, d.message)


def criteria_paths(definition_name: str, definition: Definition) -> Iterable[tuple[FieldPath, Criterion]]:
    """Each criterion of a definition with its field path in the file."""
    for index, criterion in enumerate(definition.criteria):
        yield ("definitions", definition_name, definition.combinator, index), criterion


def _check_semantics(file: ConceptFile, extensions: Extensions) -> list[Diagnostic]:
    """Check names against the plugins: units, checkers, parameters, probes and ``with:`` use."""
    out: list[Diagnostic] = []
    concept = file.concept
    kinds = sorted(extensions.unit_kinds)
    unit_known = concept.unit in extensions.unit_kinds
    if not unit_known:
        known = (
            f"known: {', '.join(kinds)}" if kinds else "no unit kinds are registered; is the plugin 'units' installed?"
        )
        out.append(
            file.diagnostic(
                ("unit",),
                f"unknown unit kind '{concept.unit}'{did_you_mean(concept.unit, kinds)} ({known})",
                "unknown-unit",
            )
        )
    for name, definition in concept.definitions.items():
        for path, criterion in criteria_paths(name, definition):
            checker = extensions.checkers.get(criterion.checker)
            if checker is None:
                known = sorted(extensions.checkers)
                listing = f" (registered: {', '.join(known)})" if known else " (no checkers are registered)"
                out.append(
                    file.diagnostic(
                        (*path, "checker"),
                        f"unknown checker '{criterion.checker}'{did_you_mean(criterion.checker, known)}{listing}",
                        "unknown-checker",
                    )
                )
                continue
            if unit_known and concept.unit not in checker.units:  # an unknown unit is reported once, above
                out.append(
                    file.diagnostic(
                        (*path, "checker"),
                        f"the checker '{checker.name}' scores {' or '.join(checker.units)} units, but the concept "
                        f"'{concept.concept}' categorizes {concept.unit} units",
                        "unit-mismatch",
                    )
                )
            out += _validate_params(file, (*path, "params"), checker.params, criterion.params, "checker", checker.name)
            out += _check_probe(file, path, criterion, checker.name, checker.probe, extensions)
            if checker.relation == "required" and not criterion.with_:
                out.append(
                    file.diagnostic(
                        path,
                        f"the checker '{checker.name}' needs 'with:', the definition(s) whose members it "
                        "relates to (e.g. with: previous_token_head.attends_previous)",
                        "missing-with",
                    )
                )
            if checker.relation == "none" and criterion.with_:
                out.append(
                    file.diagnostic((*path, "with"), f"the checker '{checker.name}' takes no 'with:'", "unused-with")
                )
    return out


def _check_probe(
    file: ConceptFile, path: FieldPath, criterion: Criterion, checker: str, need: str, extensions: Extensions
) -> list[Diagnostic]:
    if criterion.probe is None:
        if need == "required":
            known = ", ".join(sorted(extensions.probes)) or "none registered"
            return [
                file.diagnostic(
                    path,
                    f"the checker '{checker}' needs a 'probe:' (inputs to observe; probes: {known})",
                    "missing-probe",
                )
            ]
        return []
    if need == "none":
        return [
            file.diagnostic(
                (*path, "probe"),
                f"the checker '{checker}' reads weights only and takes no 'probe:'; remove it",
                "unused-probe",
            )
        ]
    probe = extensions.probes.get(criterion.probe.name)
    if probe is None:
        known = sorted(extensions.probes)
        return [
            file.diagnostic(
                (*path, "probe", "name"),
                f"unknown probe '{criterion.probe.name}'{did_you_mean(criterion.probe.name, known)} "
                f"(registered: {', '.join(known) or 'none'})",
                "unknown-probe",
            )
        ]
    return _validate_params(file, (*path, "probe"), probe.params, criterion.probe.params, "probe", probe.name)


def _validate_params(
    file: ConceptFile, path: FieldPath, model: type[BaseModel], values: dict, what: str, name: str
) -> list[Diagnostic]:
    try:
        model.model_validate(values)
    except ValidationError as error:
        out = []
        allowed = sorted(model.model_fields)
        for entry in error.errors():
            loc = (*path, *entry["loc"])
            if entry["type"] == "extra_forbidden":
                key = str(entry["loc"][-1])
                line, column = file.position(*loc, key=True)
                message = (
                    f"the {what} '{name}' has no parameter '{key}'{did_you_mean(key, allowed)} "
                    f"(parameters: {', '.join(allowed) or 'none'})"
                )
                out.append(Diagnostic(file.label, line, column, format_field(loc), message, code="unknown-param"))
            elif entry["type"] == "missing":
                out.append(file.diagnostic(loc, f"the {what} '{name}' needs the parameter '{loc[-1]}'", "param"))
            else:
                out.append(file.diagnostic(loc, _message(entry["type"], entry, entry.get("input")), "param"))
        return out
    return []


def _resolve_references(registry: Registry) -> dict[str, list[str]]:
    """Map each definition id to the ids its criteria name in ``with:``; report dangling ones."""
    known = set(registry.definition_ids())
    references: dict[str, list[str]] = {}
    for name, file in registry.files.items():
        for def_name, definition in file.concept.definitions.items():
            targets: list[str] = []
            for path, criterion in criteria_paths(def_name, definition):
                for index, raw in enumerate(criterion.with_ or []):
                    target = raw if "." in raw else f"{name}.{raw}"
                    if target not in known:
                        registry.diagnostics.append(
                            file.diagnostic(
                                (*path, "with", index),
                                f"'{raw}' names no loaded definition{did_you_mean(target, known)}",
                                "dangling-reference",
                            )
                        )
                    elif target not in targets:
                        targets.append(target)
            references[f"{name}.{def_name}"] = targets
    return references


def _evaluation_order(registry: Registry, references: dict[str, list[str]]) -> list[str]:
    """Definitions ordered so that each comes after the ones it refers to; cycles are reported."""
    order: list[str] = []
    state: dict[str, str] = {}
    reported: set[frozenset[str]] = set()

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == "done":
            return
        if state.get(node) == "active":
            cycle = [*trail[trail.index(node) :], node]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                file, _ = registry.definition(cycle[0])
                field_path = ("definitions", cycle[0].partition(".")[2])
                registry.diagnostics.append(
                    file.diagnostic(
                        field_path,
                        f"definitions refer to each other in a cycle: {' -> '.join(cycle)}",
                        "reference-cycle",
                    )
                )
            return
        state[node] = "active"
        for target in references.get(node, []):
            visit(target, [*trail, node])
        state[node] = "done"
        order.append(node)

    for node in references:
        visit(node, [])
    return order
