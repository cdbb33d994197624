"""Which file defines each concept: duplicate names, and the ``builtin: extend | replace`` rule.

A user's concept file named like a built-in concept (one a plugin ships) is an error unless it says what it
means: ``builtin: extend`` adds its definitions to the built-in concept, ``builtin: replace`` loads it instead
of the built-in one. A file that is not loaded (a clash, a duplicate, schema errors) is still checked, and
its definitions stay *quiet*: a ``with:`` naming one of them is not reported a second time as dangling.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from defcheck.diagnostics import Diagnostic, did_you_mean
from defcheck.language.concept_file import ConceptFile

EXTEND_HINT = (
    "to add definitions to it, write 'builtin: extend' in this file; to use this file instead of it, write "
    "'builtin: replace'; or give the concept another name"
)


@dataclass
class Placement:
    """The loaded concepts by name, and what the rest of the registry needs to know about the others."""

    files: dict[str, ConceptFile] = field(default_factory=dict)
    checked: list[ConceptFile] = field(default_factory=list)
    quiet: set[str] = field(default_factory=set)
    replaced: dict[str, ConceptFile] = field(default_factory=dict)
    builtin: set[int] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def is_loaded(self, file: ConceptFile) -> bool:
        """Whether ``file`` is a loaded concept or one of its extensions."""
        loaded = self.files.get(file.concept.concept)
        return loaded is not None and (loaded is file or any(part is file for part in loaded.parts))


def place_files(read: list[tuple[ConceptFile, bool]], *, include_builtin: bool) -> Placement:
    """Place each file read (``(file, is_builtin)``, built-in ones first) under its concept's name."""
    out = Placement()
    builtin: dict[str, ConceptFile] = {}
    user: dict[str, ConceptFile] = {}
    for file, is_builtin in read:
        out.checked.append(file)
        if is_builtin:
            out.builtin.add(id(file))
        if file.is_broken("concept"):
            _keep_quiet(out, file)
            continue
        name = file.concept.concept
        rule = None if file.is_broken("builtin") else file.concept.builtin
        first = (builtin if is_builtin else user).get(name)
        if first is not None:
            _duplicate(out, file, first)
            continue
        if is_builtin:
            if rule is not None:
                message = f"'builtin: {rule}' is for your own concept files; a plugin's concept folder cannot use it"
                out.diagnostics.append(file.diagnostic(("builtin",), message, "builtin-rule"))
            builtin[name] = file
            _load(out, name, file)
            continue
        user[name] = file
        base = builtin.get(name)
        if base is None:
            if rule is not None and include_builtin:
                message = (
                    f"'builtin: {rule}' names no built-in concept: none is called '{name}'"
                    f"{did_you_mean(name, builtin)}; remove the key or use the built-in concept's name"
                )
                out.diagnostics.append(file.diagnostic(("builtin",), message, "builtin-rule"))
            _load(out, name, file)
        elif rule is None:
            if not file.is_broken("builtin"):  # a misspelt rule is reported by the schema
                line = base.position("concept")[0]
                message = f"the concept '{name}' is built in ({base.label}:{line}); {EXTEND_HINT}"
                out.diagnostics.append(file.diagnostic(("concept",), message, "builtin-clash"))
            _keep_quiet(out, file)
        elif rule == "replace":
            if _load(out, name, file):
                out.replaced[name] = file
                out.checked = [f for f in out.checked if f is not base]
        else:
            _extend(out, name, base, file)
    return out


def _load(out: Placement, name: str, file: ConceptFile) -> bool:
    """Load a complete file under ``name`` (in the slot of a built-in it replaces); keep an incomplete one quiet."""
    if not file.complete:
        _keep_quiet(out, file)
        return False
    out.files[name] = file
    return True


def _keep_quiet(out: Placement, file: ConceptFile) -> None:
    name = file.concept.concept
    out.quiet |= {f"{name}.{definition}" for definition in (*file.concept.definitions, *file.set_aside)}


def _duplicate(out: Placement, file: ConceptFile, first: ConceptFile) -> None:
    name = file.concept.concept
    line = first.position("concept")[0]
    message = f"the concept '{name}' is already defined in {first.label}:{line}; concept names are unique"
    out.diagnostics.append(file.diagnostic(("concept",), message, "duplicate-concept"))
    _keep_quiet(out, file)


def _extend(out: Placement, name: str, base: ConceptFile, file: ConceptFile) -> None:
    """Add the definitions of ``file`` to the built-in concept ``base``: same unit, new definition names."""
    problems = []
    concept, own = base.concept, file.concept
    if own.unit != concept.unit and not file.is_broken("unit"):
        message = (
            f"'builtin: extend' adds definitions to the built-in '{name}', which categorizes {concept.unit} "
            f"units, not {own.unit}; write 'unit: {concept.unit}'"
        )
        problems.append(file.diagnostic(("unit",), message, "builtin-extend"))
    for definition in own.definitions:
        if definition in concept.definitions:
            line = base.position("definitions", definition, key=True)[0]
            message = (
                f"the built-in '{name}' already has a definition '{definition}' ({base.label}:{line}); give yours "
                "another name, or write 'builtin: replace' to use this file instead of the built-in concept"
            )
            line, column = file.position("definitions", definition, key=True)
            where = f"definitions.{definition}"
            problems.append(Diagnostic(file.label, line, column, where, message, code="builtin-extend"))
    out.diagnostics += problems
    if problems or not file.complete:
        _keep_quiet(out, file)
        return
    merged = concept.model_copy(
        update={
            "definitions": {**concept.definitions, **own.definitions},
            "references": list(dict.fromkeys([*concept.references, *own.references])),
        }
    )
    out.files[name] = dataclasses.replace(base, concept=merged, parts=(*base.parts, file))
