"""Reading ``defcheck.yaml``: the validated project with the position of every value (:class:`ProjectFile`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from defcheck.ci.project_checks import check_names
from defcheck.ci.project_errors import _as_project_problem, _diagnostic, _key_hint, _one_per_field, _with_raw_units
from defcheck.ci.project_schema import EXPECTATION_MODELS, KIND_KEYS, AnyExpectation, Expectation, ModelSpec, Project
from defcheck.diagnostics import Diagnostic, Severity, display_path
from defcheck.language.yaml_source import FieldPath, YamlDocument, format_field, read_yaml


@dataclass
class ProjectFile:
    """A validated project file: the model, where it is, and the position of every value."""

    project: Project
    path: Path
    label: str
    document: YamlDocument
    expectations: list[Expectation] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """The folder paths in the file are relative to."""
        return self.path.parent

    def position(self, *field_path: str | int, key: bool = False) -> tuple[int | None, int | None]:
        found = self.document.position(tuple(field_path), key=key)
        return found if found else (None, None)

    def diagnostic(self, field_path: FieldPath, message: str, code: str, severity: Severity = "error") -> Diagnostic:
        line, column = self.position(*field_path)
        return Diagnostic(self.label, line, column, format_field(field_path), message, severity, code)

    def definition_paths(self) -> list[Path]:
        return [self.root / entry for entry in self.project.definitions]

    def models(self) -> list[tuple[str, ModelSpec]]:
        """Each model with its name (its ``name:``, or one made from the reference)."""
        return [(spec.name or model_name(spec.ref), spec) for spec in self.project.models]

    def model_reference(self, spec: ModelSpec) -> str:
        """The reference to load: a relative checkpoint path is relative to the project file."""
        ref = spec.ref
        prefix, sep, rest = ref.partition(":")
        if sep and len(prefix) > 1 and "/" not in prefix and "\\" not in prefix:
            return f"checkpoint:{self._relative(rest)}" if prefix == "checkpoint" else ref
        return self._relative(ref)

    def model_config_path(self, spec: ModelSpec) -> str | None:
        return None if spec.config is None else self._relative(spec.config)

    def _relative(self, path: str) -> str:
        """A path written in the file (relative to it) as seen from the working directory."""
        return path if Path(path).is_absolute() else display_path(self.root / path)


def model_name(reference: str) -> str:
    """A short name for a model reference: ``builtin:toy-induction`` -> ``toy-induction``, ``a/m.pt`` -> ``m``."""
    text = reference
    prefix, sep, rest = text.partition(":")
    if sep and len(prefix) > 1:
        text = rest
    if Path(text).suffix.lower() in (".pt", ".pth", ".bin", ".ckpt"):
        text = Path(text).stem
    text = text.rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"
    return slug


def load_project(path: Path) -> tuple[ProjectFile | None, list[Diagnostic]]:
    """Read and schema-validate a project file; every schema error in it is returned at once.

    The project comes back whenever its top level is valid, with the expectations that are: so that
    :func:`check_project` can report unknown names in the same pass. Use :func:`read_project` to refuse a file
    with any error.
    """
    label = display_path(path)
    if path.is_dir() or not path.exists():  # anything else that is not a regular file: read_yaml says what it is
        what = "is a folder" if path.is_dir() else "does not exist"
        return None, [Diagnostic(label, None, None, "", f"the project file {what}", code="io")]
    document, problems = read_yaml(path, label)
    if document is None:
        return None, [_as_project_problem(d) for d in problems]
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else f"the value {document.data!r}"
        return None, [Diagnostic(label, 1, 1, "", f"a project file is a mapping (key: value), not {kind}")]
    raw = _with_raw_units(document, path)
    diagnostics = [_as_project_problem(d) for d in problems]  # a duplicate key: reported, the first value kept
    project: Project | None = None
    try:
        project = Project.model_validate(raw)
    except ValidationError as error:
        diagnostics += [_diagnostic(document, entry, Project, ()) for entry in _one_per_field(error.errors())]
    expectations: list[Expectation] = []
    items: list[Any] = raw["expectations"] if isinstance(raw.get("expectations"), list) else []
    for index, item in enumerate(items):
        where: FieldPath = ("expectations", index)
        if not isinstance(item, dict):
            line, column = document.position(where) or (None, None)
            diagnostics.append(
                Diagnostic(
                    label,
                    line,
                    column,
                    format_field(where),
                    "an expectation is a mapping, e.g. {concept: induction_head, metric: jaccard, threshold: '>= 0.5'}",
                )
            )
            continue
        kinds = [kind for key, kind in KIND_KEYS.items() if key in item]
        if len(kinds) != 1:
            line, column = document.position(where) or (None, None)
            message = (
                "an expectation has one of 'unit' (where units fall), 'metric' (an overlap metric) or 'count' "
                "(how many units)"
            )
            if kinds:
                message += f"; this one has {' and '.join(repr(k) for k in KIND_KEYS if k in item)}"
            else:
                message += f"{_key_hint(item)}"
            diagnostics.append(Diagnostic(label, line, column, format_field(where), message))
            continue
        model = EXPECTATION_MODELS[kinds[0]]
        try:
            spec = cast("AnyExpectation", model.model_validate(item))  # one of the three kinds
        except ValidationError as error:
            diagnostics += [_diagnostic(document, entry, model, where) for entry in _one_per_field(error.errors())]
            continue
        line = (document.position(where) or (None, None))[0]
        expectations.append(Expectation(index, kinds[0], spec, line))
    if project is None:
        return None, _sorted(diagnostics)
    loaded = ProjectFile(project, path, label, document, expectations)
    return loaded, _sorted(diagnostics + check_names(loaded))


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.line or 0, d.column or 0, d.field))


def read_project(path: Path) -> ProjectFile:
    """Load a project file or raise :class:`~defcheck.diagnostics.DiagnosticsError` with its diagnostics."""
    from defcheck.diagnostics import DiagnosticsError

    loaded, diagnostics = load_project(path)
    errors = [d for d in diagnostics if d.severity == "error"]
    if loaded is None or errors:
        raise DiagnosticsError(errors or diagnostics)
    return loaded
