"""The registry: every loaded concept, validated against the plugins, with references resolved and ordered."""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from defcheck.diagnostics import DefcheckError, Diagnostic, did_you_mean
from defcheck.files import FileScope, read_regular_file
from defcheck.hooks.manager import Extensions
from defcheck.language.concept_file import ConceptFile, find_concept_files, read_concept_file
from defcheck.language.lint import lint_kinds
from defcheck.language.placement import Placement, place_files
from defcheck.language.schema import Concept, Definition
from defcheck.language.semantics import check_semantics, criteria_paths
from defcheck.language.yaml_source import MAX_FILE_BYTES, FieldPath


@dataclass
class Registry:
    """The loaded concepts and definitions, in evaluation order, with every diagnostic found."""

    files: dict[str, ConceptFile] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    unloaded: set[str] = field(default_factory=set)  # ids in files checked but not loaded (errors, clashes)
    project_root: Path | None = None  # the folder files named in definitions may reach (else each file's own)
    allow_outside_files: bool = False

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
        return file.source(name), file.concept.definitions[name]

    def file_scope(self, definition_id: str) -> FileScope:
        """Where the files a definition's probes name start (its concept file's folder) and may lead (the
        project's folder, else that folder; anywhere with ``allow_outside_files``)."""
        base = self.definition(definition_id)[0].path.parent.absolute()
        return FileScope(base, self.project_root or base, self.allow_outside_files)

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
    project_root: Path | None = None,
    allow_outside_files: bool = False,
) -> Registry:
    """Load concept files from ``paths`` (files or folders) and the plugins' folders; collect every problem.

    Errors do not stop loading: all files are read, and every error in every file is reported in one pass.
    ``project_root`` and ``allow_outside_files`` decide which files the definitions' probes may read
    (:meth:`Registry.file_scope`).
    """
    registry = Registry(project_root=project_root.absolute() if project_root else None)
    registry.allow_outside_files = allow_outside_files
    sources: list[tuple[Path, bool]] = []
    if include_builtin:
        sources += [(path, True) for path in builtin_paths(extensions)]
    for path in paths:
        if not path.exists():
            raise DefcheckError(f"{path}: no such file or folder")
        sources.append((path, False))
    read, problems = _read_files(sources)
    placement = place_files(read, include_builtin=include_builtin)
    registry.files = placement.files
    registry.unloaded = placement.quiet - set(registry.definition_ids())
    registry.diagnostics = problems + placement.diagnostics
    for file in placement.checked:
        registry.diagnostics += check_semantics(file, extensions)
        registry.diagnostics += lint_kinds(file, extensions)
    references = _resolve_references(registry, placement)
    registry.order = _evaluation_order(registry, references)
    registry.diagnostics = sorted(set(registry.diagnostics), key=_sort_key)
    return registry


def _read_files(sources: list[tuple[Path, bool]]) -> tuple[list[tuple[ConceptFile, bool]], list[Diagnostic]]:
    """Read every concept file below ``sources`` once: ``(file, is_builtin)`` for each one that has something
    to check (incomplete ones included), and the problems found reading them."""
    seen: set[Path] = set()
    builtin_texts: set[bytes] = set()
    read: list[tuple[ConceptFile, bool]] = []
    problems: list[Diagnostic] = []
    for root, is_builtin in sources:
        for path in find_concept_files(root):
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            content = _small_file_bytes(path)
            if not is_builtin and content and content in builtin_texts:
                continue  # the same file as a built-in one (e.g. the repository's own definitions/)
            if is_builtin:
                builtin_texts.add(content)
            label = f"<builtin>/{path.relative_to(root)}" if is_builtin and root.is_dir() else None
            file, found = read_concept_file(path, label)
            problems += found
            if file is not None:
                read.append((file, is_builtin))
    return read, problems


def _small_file_bytes(path: Path) -> bytes:
    """The bytes of a file small enough to be a concept file (for duplicate detection), else empty."""
    try:
        return read_regular_file(path, MAX_FILE_BYTES)
    except DefcheckError:
        return b""  # read_yaml reports the problem with the file's name


def _sort_key(d: Diagnostic) -> tuple:
    return (d.file, d.line or 0, d.column or 0, d.field, d.message)


def _resolve_references(registry: Registry, placement: Placement) -> dict[str, list[str]]:
    """Map each loaded definition id to the ids its criteria name in ``with:``; report dangling ones (in every
    file checked, loaded or not)."""
    known = set(registry.definition_ids())
    references: dict[str, list[str]] = {definition_id: [] for definition_id in registry.definition_ids()}
    for file in placement.checked:
        name = file.concept.concept
        loaded = placement.is_loaded(file)
        own = {f"{name}.{definition}" for definition in file.concept.definitions}
        for def_name, definition in file.concept.definitions.items():
            targets = references.get(f"{name}.{def_name}") if loaded else None
            for path, criterion in criteria_paths(def_name, definition):
                for index, raw in enumerate(criterion.with_ or []):
                    target = raw if "." in raw else f"{name}.{raw}"
                    if target in known or target in own or target in placement.quiet:
                        mismatch = _unit_mismatch(registry, file, target) if target in known else None
                        if mismatch is not None:
                            registry.diagnostics.append(
                                file.diagnostic((*path, "with", index), mismatch, "unit-mismatch")
                            )
                        elif targets is not None and target in known and target not in targets:
                            targets.append(target)
                        continue
                    registry.diagnostics.append(_dangling(file, (*path, "with", index), raw, target, known, placement))
    return references


def _unit_mismatch(registry: Registry, file: ConceptFile, target: str) -> str | None:
    """Why a ``with:`` from ``file`` may not name ``target`` (a definition of another unit kind), else ``None``."""
    other = registry.files.get(target.partition(".")[0])
    if other is None or file.is_broken("unit") or other.is_broken("unit"):
        return None
    if other.concept.unit == file.concept.unit:
        return None
    return (
        f"'{target}' categorizes {other.concept.unit} units, but the concept '{file.concept.concept}' categorizes "
        f"{file.concept.unit} units; 'with:' relates definitions of the same unit kind"
    )


def _dangling(
    file: ConceptFile, path: FieldPath, raw: str, target: str, known: set[str], placement: Placement
) -> Diagnostic:
    """A ``with:`` that names no loaded definition; located in the replacing file when a built-in file names a
    definition that the user's ``builtin: replace`` dropped."""
    replacement = placement.replaced.get(target.partition(".")[0])
    if replacement is None or id(file) not in placement.builtin:
        return file.diagnostic(
            path, f"'{raw}' names no loaded definition{did_you_mean(target, known)}", "dangling-reference"
        )
    line = file.position(*path)[0]
    dropped = target.partition(".")[2]
    message = (
        f"the built-in definition {file.concept.concept}.{path[1]} refers to '{target}' ({file.label}:{line}), "
        f"which this file does not define; define '{dropped}' here, or write 'builtin: extend' instead of replace"
    )
    return replacement.diagnostic(("definitions",), message, "dangling-reference")


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
