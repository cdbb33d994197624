"""Read concept files into :class:`~defcheck.language.schema.Concept` objects, with every error located."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from defcheck.diagnostics import Diagnostic, Severity, did_you_mean, display_path
from defcheck.language.salvage import validate_concept
from defcheck.language.schema import NAME_PATTERN, REFERENCE_PATTERN, Concept
from defcheck.language.yaml_source import FieldPath, YamlDocument, format_field, read_yaml

CONCEPT_SUFFIXES = (".yaml", ".yml")


@dataclass
class ConceptFile:
    """A concept as loaded: the validated model, where it came from, and the position of every value.

    A file with schema errors is *incomplete*: ``concept`` is what could be salvaged, ``broken`` holds the
    paths of the refused values (placeholders now; no check reads them) and ``set_aside`` the definitions
    that could not stand. A concept that extends a built-in one (``builtin: extend``) is the built-in's
    file with the extension files in ``parts``; each definition keeps the position in its own file.
    """

    concept: Concept
    path: Path
    label: str
    document: YamlDocument
    complete: bool = True
    broken: frozenset[FieldPath] = frozenset()
    set_aside: frozenset[str] = frozenset()
    parts: tuple[ConceptFile, ...] = ()

    def source(self, definition: str | int) -> ConceptFile:
        """The file a definition is written in: an extension file among ``parts``, else this one."""
        for part in self.parts:
            if definition in part.concept.definitions:
                return part
        return self

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file the concept is read from (the built-in's and its extensions')."""
        return (self.path, *(part.path for part in self.parts))

    def is_broken(self, *field: str | int) -> bool:
        """Whether the value at ``field``, or a value that encloses it, was refused by the schema."""
        return any(field[: len(path)] == path for path in self.broken)

    def position(self, *field: str | int, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of a field (``"definitions", "k", "all", 0``), or of its nearest parent."""
        if len(field) > 1 and field[0] == "definitions" and self.source(field[1]) is not self:
            return self.source(field[1]).position(*field, key=key)
        found = self.document.position(tuple(field), key=key)
        return found if found else (None, None)

    def diagnostic(self, field: FieldPath, message: str, code: str, severity: Severity = "error") -> Diagnostic:
        if len(field) > 1 and field[0] == "definitions" and self.source(field[1]) is not self:
            return self.source(field[1]).diagnostic(field, message, code, severity)
        line, column = self.position(*field)
        return Diagnostic(self.label, line, column, format_field(field), message, severity, code)


def find_concept_files(path: Path) -> list[Path]:
    """The concept files at ``path``: the file itself, or every ``*.yaml``/``*.yml`` below a folder, sorted."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in CONCEPT_SUFFIXES and p.is_file())
    return [path]


def load_concept_file(path: Path, label: str | None = None) -> tuple[ConceptFile | None, list[Diagnostic]]:
    """Read and schema-validate one concept file; all schema errors in it are returned at once."""
    file, problems = read_concept_file(path, label)
    return (None, problems) if problems else (file, [])


def read_concept_file(path: Path, label: str | None = None) -> tuple[ConceptFile | None, list[Diagnostic]]:
    """Like :func:`load_concept_file`, but a file with schema errors comes back incomplete (``complete`` is
    false) when enough of it is valid for the plugins' checks to run on the rest."""
    label = label or display_path(path)
    document, problems = read_yaml(path, label)
    if document is None:
        return None, problems
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else f"the value {document.data!r}"
        return None, [Diagnostic(label, 1, 1, "", f"a concept file is a mapping (key: value), not {kind}")]
    result = validate_concept(document.data)
    problems += [_diagnostic(document, entry) for entry in result.errors]
    if result.concept is None:
        return None, problems
    file = ConceptFile(
        result.concept,
        path,
        label,
        document,
        complete=not problems,
        broken=frozenset(result.broken),
        set_aside=frozenset(result.set_aside),
    )
    return file, problems


def _diagnostic(document: YamlDocument, error: Any) -> Diagnostic:
    loc: FieldPath = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if (loc and loc[-1] == "[key]") or kind == "invalid_key":
        # a mapping key was refused (e.g. a definition named 'Wide'): point at the key itself
        loc = loc[:-1] if loc and loc[-1] == "[key]" else loc
        line, column = document.position(loc, key=True) or (None, None)
        return Diagnostic(document.file, line, column, format_field(loc), _message(kind, error, value))
    if kind in ("missing", "extra_forbidden"):
        allowed = allowed_keys(loc) if kind == "extra_forbidden" or isinstance(document.data, dict) else []
        return key_diagnostic(document, loc, kind, allowed)
    line, column = document.position(loc) or (None, None)
    return Diagnostic(document.file, line, column, format_field(loc), _message(kind, error, value))


def _message(kind: str, error: Any, value: Any) -> str:
    got = f"got {_describe(value)}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        choices = [part.strip(" '") for part in expected.replace(" or ", ",").split(",") if part.strip(" '")]
        return f"must be one of {', '.join(choices)}; {got}{did_you_mean(str(value), choices)}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern == REFERENCE_PATTERN:
            return f"{got}; a reference is 'concept.definition' or a definition name in this concept"
        if pattern == NAME_PATTERN:
            return f"{got}; names use lowercase letters, digits and '_', starting with a letter"
        return f"{got}; must match the pattern {pattern}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "invalid_key":
        return f"a key must be a string; got {_describe(value)} (write it in quotes)"
    if kind == "too_short":
        return f"needs at least {error.get('ctx', {}).get('min_length', 1)} item(s); {got}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping (key: value); {got}"
    if kind == "list_type":
        return f"must be a list; {got}"
    if kind == "string_type":
        return f"must be a string; {got}"
    return f"{str(error['msg']).rstrip('.')}; {got}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def key_diagnostic(document: YamlDocument, loc: FieldPath, kind: str, allowed: list[str]) -> Diagnostic:
    """A required key that is missing (``kind`` "missing") or a key no model accepts ("extra_forbidden") at
    ``loc``, with the keys that mapping accepts (``allowed``) and a did-you-mean."""
    if kind == "missing":
        line, column = document.position(loc[:-1]) or (None, None)
        message = f"'{loc[-1]}' is required"
        if allowed:
            message += f" (keys here: {', '.join(allowed)})"
        return Diagnostic(document.file, line, column, format_field(loc), message)
    line, column = document.position(loc, key=True) or (None, None)
    message = f"unknown key '{loc[-1]}'{did_you_mean(str(loc[-1]), allowed)}"
    if allowed:
        message += f" (allowed: {', '.join(allowed)})"
    return Diagnostic(document.file, line, column, format_field(loc), message, code="unknown-key")


def allowed_keys(loc: FieldPath, root: type[BaseModel] = Concept) -> list[str]:
    """The keys a mapping at ``loc[:-1]`` accepts, found by walking the pydantic models from ``root``."""
    annotation: Any = root
    for part in loc[:-1]:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _model_in(annotation)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    model = _model_in(annotation)
    if model is not None:
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    for option in _options(annotation):
        origin = typing.get_origin(option)
        if origin is list and isinstance(part, int):
            return typing.get_args(option)[0]
        if origin is dict:
            return typing.get_args(option)[1]
    return None


def _options(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [inner for arg in typing.get_args(annotation) for inner in _options(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None
