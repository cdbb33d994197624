"""The project file, ``defcheck.yaml``: which models to check, which definitions, and what to expect.

It is found by walking up from the working directory (stopping at the repository's root, the first folder
with a ``.git``), or given with ``--config``. It is read with the same safe YAML reader as concept files, and
every schema error is a located :class:`~defcheck.diagnostics.Diagnostic` (``defcheck.yaml:12:7: field:
message``). References to concepts and definitions are checked against the loaded registry before anything
runs (:func:`check_project`).

```yaml
models:
  - builtin:toy-induction
  - {name: small, ref: checkpoints/small.pt, config: checkpoints/small.json}
definitions: [definitions]
expectations:
  - {unit: "1.4", concept: induction_head, in: both}
  - {concept: induction_head, metric: jaccard, threshold: ">= 0.5"}
  - {concept: previous_token_head, in: mechanistic_only, count: 0}
  - {definition: induction_head.k_composition, count: {min: 1, max: 3}}
```

Expectations come in three kinds, told apart by their keys: ``count`` (how many units a definition admits,
or how many are in an overlap category), ``metric`` (an overlap metric against a comparison) and ``unit``
(where units fall). docs/ci.md documents every key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from defcheck.diagnostics import DefcheckError, Diagnostic, did_you_mean, display_path
from defcheck.language.concept_file import _message, allowed_keys, key_diagnostic
from defcheck.language.schema import NAME_PATTERN, REFERENCE_PATTERN
from defcheck.language.thresholds import Comparison, parse_threshold
from defcheck.language.yaml_source import FieldPath, YamlDocument, format_field, read_yaml

PROJECT_FILE_NAMES = ("defcheck.yaml", "defcheck.yml")
DEFAULT_TOLERANCE = 1e-3
CATEGORIES = ("both", "behavioral", "mechanistic", "behavioral_only", "mechanistic_only", "neither")
METRICS = ("jaccard", "precision", "recall", "spearman")
UNIT_PATTERN = r"^(\d+(\.\d+)?|[A-Za-z][A-Za-z0-9._-]*)$"  # L.H / L.N, L, or a model's name
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
KIND_KEYS = {"count": "count", "metric": "metric", "unit": "membership"}
DEFINITION_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
PATTERN_HELP = {
    UNIT_PATTERN: "a unit address is LAYER.INDEX, e.g. '1.4' (head 4 of layer 1), a LAYER, or a model's name",
    DEFINITION_PATTERN: "a definition is named 'concept.definition', e.g. 'induction_head.k_composition'",
    MODEL_NAME_PATTERN: "a model name uses letters, digits, '.', '_' and '-'",
}

Category = Literal["both", "behavioral", "mechanistic", "behavioral_only", "mechanistic_only", "neither"]
Metric = Literal["jaccard", "precision", "recall", "spearman"]
UnitAddress = Annotated[str, Field(pattern=UNIT_PATTERN)]
ConceptName = Annotated[str, Field(pattern=NAME_PATTERN)]
DefinitionRef = Annotated[str, Field(pattern=DEFINITION_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ModelSpec(_Strict):
    """A model to check: a reference (``builtin:NAME``, ``tl:NAME``, a checkpoint path) and how to load it."""

    ref: str = Field(min_length=1, description="builtin:NAME, tl:NAME, or a checkpoint path (relative to this file).")
    name: str | None = Field(
        None,
        pattern=MODEL_NAME_PATTERN,
        description="The model's name in outputs and in '{model}' paths (default: from the reference).",
    )
    config: str | None = Field(None, description="The checkpoint's config, when not beside it.")
    bos_token_id: int | None = Field(None, ge=0, description="Override the model's BOS token id.")
    token_ids: str | None = Field(None, description="Override the ids probes draw from, 'START:STOP'.")

    @field_validator("token_ids", mode="before")
    @classmethod
    def _range(cls, raw: Any) -> Any:
        if isinstance(raw, list) and len(raw) == 2 and all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            return f"{raw[0]}:{raw[1]}"
        return raw

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        return {"ref": raw} if isinstance(raw, str) else raw


class CountRange(_Strict):
    """``{min: 1, max: 3}``: between ``min`` and ``max`` units, both included."""

    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> CountRange:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both, e.g. {min: 1, max: 3}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is larger than max {self.max}")
        return self


class _Expectation(_Strict):
    name: str | None = Field(None, min_length=1, description="How reports name this expectation.")
    model: str | None = Field(None, description="Only check it on this model of 'models:' (by name).")


class MembershipExpectation(_Expectation):
    """Where units fall: ``{unit: "1.4", concept: induction_head, in: both}`` or
    ``{unit: "0.3", definition: induction_head.k_composition, member: false}``."""

    unit: UnitAddress | list[UnitAddress] = Field(description="A unit address ('1.4') or a list of them.")
    concept: ConceptName | None = None
    definition: DefinitionRef | None = None
    in_: Category | None = Field(None, alias="in")
    member: bool | None = None

    @field_validator("unit")
    @classmethod
    def _some(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one unit address, e.g. '1.4'")
        return value

    @model_validator(mode="after")
    def _subject(self) -> MembershipExpectation:
        if (self.concept is None) == (self.definition is None):
            raise ValueError("give either 'concept' (with 'in') or 'definition' (optionally with 'member')")
        if self.concept is not None and self.in_ is None:
            raise ValueError(f"say where the unit falls: in: {' | '.join(CATEGORIES)}")
        if self.concept is not None and self.member is not None:
            raise ValueError("'member' goes with 'definition'; for a concept use in: neither (or another category)")
        if self.definition is not None and self.in_ is not None:
            raise ValueError("'in' goes with 'concept'; for a definition use member: true or member: false")
        return self

    @property
    def units(self) -> list[str]:
        return [self.unit] if isinstance(self.unit, str) else list(self.unit)


class MetricExpectation(_Expectation):
    """An overlap metric of a concept: ``{concept: induction_head, metric: jaccard, threshold: ">= 0.5"}``."""

    concept: ConceptName
    metric: Metric
    threshold: str = Field(description="A comparison, e.g. '>= 0.5'.")

    @field_validator("threshold", mode="before")
    @classmethod
    def _comparison(cls, raw: Any) -> Any:
        rule = parse_threshold(raw)
        if not isinstance(rule, Comparison):
            raise ValueError("a metric is compared with a number, e.g. '>= 0.5', not a rank rule")
        return str(rule)

    @property
    def comparison(self) -> Comparison:
        rule = parse_threshold(self.threshold)
        assert isinstance(rule, Comparison)
        return rule


class CountExpectation(_Expectation):
    """How many units: ``{definition: X, count: {min: 1, max: 3}}`` or
    ``{concept: previous_token_head, in: mechanistic_only, count: 0}``."""

    concept: ConceptName | None = None
    definition: DefinitionRef | None = None
    in_: Category | None = Field(None, alias="in")
    count: int | CountRange | str = Field(description="An exact number, {min, max}, or a comparison ('>= 1').")

    @field_validator("count", mode="before")
    @classmethod
    def _count(cls, raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError("a count is a number, {min, max}, or a comparison such as '>= 1'")
        if isinstance(raw, int) and raw < 0:
            raise ValueError(f"a count cannot be negative, got {raw}")
        if isinstance(raw, str):
            return str(parse_threshold(raw))
        return raw

    @model_validator(mode="after")
    def _subject(self) -> CountExpectation:
        if (self.concept is None) == (self.definition is None):
            raise ValueError("give either 'definition' (count its members) or 'concept' with 'in' (a category)")
        if self.concept is not None and self.in_ is None:
            raise ValueError(f"say which units to count: in: {' | '.join(CATEGORIES)}")
        if self.definition is not None and self.in_ is not None:
            raise ValueError("'in' goes with 'concept'; with 'definition' the count is of its members")
        return self

    def accepts(self, number: int) -> bool:
        if isinstance(self.count, int):
            return number == self.count
        if isinstance(self.count, CountRange):
            low, high = self.count.min, self.count.max
            return (low is None or number >= low) and (high is None or number <= high)
        rule = parse_threshold(self.count)
        return {">=": number >= rule.value, ">": number > rule.value, "<=": number <= rule.value}.get(
            rule.op,  # type: ignore[union-attr]
            number < rule.value,  # type: ignore[union-attr]
        )

    @property
    def wanted(self) -> str:
        if isinstance(self.count, int):
            return f"exactly {self.count}"
        if isinstance(self.count, CountRange):
            low, high = self.count.min, self.count.max
            if low is not None and high is not None:
                return f"between {low} and {high}"
            return f"at least {low}" if low is not None else f"at most {high}"
        return self.count


EXPECTATION_MODELS: dict[str, type[_Expectation]] = {
    "membership": MembershipExpectation,
    "metric": MetricExpectation,
    "count": CountExpectation,
}
AnyExpectation = MembershipExpectation | MetricExpectation | CountExpectation


class Project(_Strict):
    """The project file's top level (``expectations`` are validated one by one, by kind)."""

    models: list[ModelSpec] = Field(default_factory=list, description="The models to check (default: the toy model).")
    definitions: list[str] = Field(default_factory=list, description="Concept files or folders, relative to this file.")
    builtin: bool = Field(True, description="Also load the concept files that plugins ship.")
    concepts: list[Annotated[str, Field(pattern=REFERENCE_PATTERN)]] = Field(
        default_factory=list, description="Only these concepts or concept.definitions (default: all)."
    )
    seed: int = Field(0, ge=0, description="Seed of the probes.")
    tolerance: float = Field(DEFAULT_TOLERANCE, ge=0, description="How far a score may move from the baseline.")
    expectations: list[Any] = Field(default_factory=list, description="What must hold (see docs/ci.md).")

    @field_validator("definitions", "concepts", mode="before")
    @classmethod
    def _one_or_many(cls, raw: Any) -> Any:
        return [raw] if isinstance(raw, str) else raw


# --- the loaded file -------------------------------------------------------------------------------------------


@dataclass
class Expectation:
    """One expectation as written: its index in the file, its kind, and the validated spec."""

    index: int
    kind: str  # membership | metric | count
    spec: AnyExpectation
    line: int | None = None

    @property
    def concept(self) -> str:
        spec = self.spec
        if getattr(spec, "definition", None):
            return str(spec.definition).partition(".")[0]  # type: ignore[union-attr]
        return str(spec.concept)  # type: ignore[union-attr]

    @property
    def definition(self) -> str | None:
        """The definition's name within its concept, when the expectation is about one definition."""
        ref = getattr(self.spec, "definition", None)
        return ref.partition(".")[2] if ref else None

    def describe(self) -> str:
        """What it asks, in words (its ``name:`` when it has one)."""
        if self.spec.name:
            return self.spec.name
        return describe(self.spec)


def describe(spec: AnyExpectation) -> str:
    """``subject: claim``, e.g. ``induction_head: 1.4 is in both kinds``."""
    if isinstance(spec, MembershipExpectation):
        units = ", ".join(spec.units)
        verb = "is" if len(spec.units) == 1 else "are"
        if spec.concept is not None:
            return f"{spec.concept}: {units} {verb} {_category_words(spec.in_)}"
        negation = "" if spec.member is not False else "not "
        return f"{spec.definition}: {units} {verb} {negation}{'a member' if verb == 'is' else 'members'}"
    if isinstance(spec, MetricExpectation):
        return f"{spec.concept}: {spec.metric} {spec.threshold}"
    if spec.definition is not None:
        return f"{spec.definition}: {spec.wanted} member(s)"
    return f"{spec.concept}: {spec.wanted} unit(s) {_category_words(spec.in_)}".rstrip()


def _category_words(category: str | None) -> str:
    return {
        "both": "in both kinds",
        "behavioral": "behavioral (with or without mechanistic)",
        "mechanistic": "mechanistic (with or without behavioral)",
        "behavioral_only": "behavioral only",
        "mechanistic_only": "mechanistic only",
        "neither": "in neither kind",
    }.get(category or "", str(category))


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

    def diagnostic(self, field_path: FieldPath, message: str, code: str, severity: str = "error") -> Diagnostic:
        line, column = self.position(*field_path)
        return Diagnostic(self.label, line, column, format_field(field_path), message, severity, code)  # type: ignore[arg-type]

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


def find_project(start: Path | None = None) -> Path | None:
    """The nearest ``defcheck.yaml`` (or ``.yml``) in ``start`` or above it, up to the repository's root."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in PROJECT_FILE_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        if (folder / ".git").exists():
            return None
    return None


def is_project_file(path: Path) -> bool:
    return path.name in PROJECT_FILE_NAMES


_MENTIONS_CONCEPT = re.compile(r"\bconcept\s*:")


def looks_like_concept_file(path: Path) -> bool:
    """Whether a YAML file given by name is meant as a concept file (else ``validate`` skips it).

    ``defcheck validate`` runs as a pre-commit hook on every changed ``*.yaml``, so it is handed workflow
    files, compose files, OpenAPI specs and the like. A file counts as a concept file when

    - its YAML has a top-level ``concept:`` key (or is a list of mappings with one), or a ``definitions:``
      mapping whose entries have ``kind``, ``all`` or ``any`` (a concept file with its ``concept:`` misspelled);
    - or it is empty, or not YAML that parses, and is empty or mentions ``concept:`` (even in a comment).

    Anything else is skipped. A file that cannot be read counts, so that its problem is reported.
    """
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    try:
        raw = path.read_bytes()
    except OSError:
        return True
    text = raw[:1_000_000].decode("utf-8-sig", errors="replace")
    if not text.strip() or b"\x00" in raw:
        return True

    def keys(node: object) -> dict[str, object]:
        if not isinstance(node, MappingNode):
            return {}
        return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode)}

    try:
        documents = [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]
    except yaml.YAMLError:
        return bool(_MENTIONS_CONCEPT.search(text))
    if not documents:
        return bool(_MENTIONS_CONCEPT.search(text)) or not text.strip()
    for document in documents:
        top = keys(document)
        if "concept" in top:
            return True
        if isinstance(document, SequenceNode) and any("concept" in keys(item) for item in document.value):
            return True
        entries = keys(top.get("definitions"))
        if any({"kind", "all", "any"} & set(keys(entry)) for entry in entries.values()):
            return True
    return False


def load_project(path: Path) -> tuple[ProjectFile | None, list[Diagnostic]]:
    """Read and schema-validate a project file; every schema error in it is returned at once.

    The project comes back whenever its top level is valid, with the expectations that are: so that
    :func:`check_project` can report unknown names in the same pass. Use :func:`read_project` to refuse a file
    with any error.
    """
    label = display_path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        return None, [Diagnostic(label, None, None, "", f"the project file {what}", code="io")]
    document, problems = read_yaml(path, label)
    if document is None:
        return None, [_as_project_problem(d) for d in problems]
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else f"the value {document.data!r}"
        return None, [Diagnostic(label, 1, 1, "", f"a project file is a mapping (key: value), not {kind}")]
    raw = _with_raw_units(document, path)
    diagnostics: list[Diagnostic] = []
    project: Project | None = None
    try:
        project = Project.model_validate(raw)
    except ValidationError as error:
        diagnostics += [_diagnostic(document, entry, Project, ()) for entry in _one_per_field(error.errors())]
    expectations: list[Expectation] = []
    items = raw.get("expectations") if isinstance(raw.get("expectations"), list) else []
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
            spec = model.model_validate(item)
        except ValidationError as error:
            diagnostics += [_diagnostic(document, entry, model, where) for entry in _one_per_field(error.errors())]
            continue
        line = (document.position(where) or (None, None))[0]
        expectations.append(Expectation(index, kinds[0], spec, line))  # type: ignore[arg-type]
    if project is None:
        return None, _sorted(diagnostics)
    loaded = ProjectFile(project, path, label, document, expectations)
    return loaded, _sorted(diagnostics + _check_names(loaded))


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.line or 0, d.column or 0, d.field))


EXPECTATION_KEYS = sorted({f.alias or n for m in EXPECTATION_MODELS.values() for n, f in m.model_fields.items()})


def _key_hint(item: dict[Any, Any]) -> str:
    for key in item:
        if key in EXPECTATION_KEYS:
            continue
        hint = did_you_mean(str(key), EXPECTATION_KEYS)
        if hint:
            return f" (unknown key '{key}'{hint})"
    return ""


def _branch(loc: Iterable[Any]) -> str | None:
    """The union branch a pydantic error location names (``str``, ``list[...]``, ``CountRange``...)."""
    return next((part for part in loc if _is_tag(part) and part != "[key]"), None)


def _fits(branch: str, value: Any) -> bool:
    if isinstance(value, dict):
        return branch[:1].isupper() or branch.startswith("dict") or bool(re.search(r"[ \[][A-Z]\w*\]$", branch))
    if isinstance(value, list):
        return branch.startswith("list")
    if isinstance(value, str):
        return branch == "str" or branch.startswith("constrained-str")
    if isinstance(value, bool):
        return branch == "bool"
    if isinstance(value, (int, float)):
        return branch in ("int", "float")
    return False


def _one_per_field(errors: list[Any]) -> list[Any]:
    """One error per field: of a union's branches, the one that fits the value's type (a mapping's error for a
    mapping, a string's for a string), not one message per branch."""
    grouped: dict[FieldPath, list[Any]] = {}
    for entry in errors:
        grouped.setdefault(_clean_loc(entry["loc"]), []).append(entry)
    out = []
    for entries in grouped.values():
        branches = [entry for entry in entries if _branch(entry["loc"]) is not None]
        if len(branches) < 2:
            out += entries
            continue
        fitting = [entry for entry in branches if _fits(_branch(entry["loc"]) or "", entry.get("input"))]
        out += [entry for entry in entries if entry not in branches] + (fitting or branches[:1])
    return out


def _as_project_problem(diagnostic: Diagnostic) -> Diagnostic:
    """The YAML reader speaks of concept files; say project file instead."""
    message = diagnostic.message.replace("a concept file is", "a project file is").replace(
        "concept files are", "project files are"
    )
    return Diagnostic(
        diagnostic.file,
        diagnostic.line,
        diagnostic.column,
        diagnostic.field,
        message,
        diagnostic.severity,
        diagnostic.code,
    )


def _with_raw_units(document: YamlDocument, path: Path) -> dict[str, Any]:
    """The data with unquoted unit addresses as written: YAML reads ``unit: 1.10`` as the number 1.1."""
    data = dict(document.data)
    items = data.get("expectations")
    if not isinstance(items, list):
        return data
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return data
    fixed = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and "unit" in item:
            item = dict(item)
            value = item["unit"]
            where: FieldPath = ("expectations", index, "unit")
            if isinstance(value, list):
                item["unit"] = [_raw(document, lines, (*where, i), v) for i, v in enumerate(value)]
            else:
                item["unit"] = _raw(document, lines, where, value)
        fixed.append(item)
    data["expectations"] = fixed
    return data


_NUMBER = re.compile(r"[0-9][0-9.]*")


def _raw(document: YamlDocument, lines: list[str], where: FieldPath, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    position = document.values.get(where)
    if position is None:
        return str(value)
    line, column = position
    match = _NUMBER.match(lines[line - 1][column - 1 :]) if line - 1 < len(lines) else None
    return match.group(0) if match else str(value)


def _diagnostic(document: YamlDocument, error: Any, root: type[BaseModel], prefix: FieldPath) -> Diagnostic:
    loc: FieldPath = (*prefix, *_clean_loc(error["loc"]))
    kind = error["type"]
    value = error.get("input")
    if kind in ("missing", "extra_forbidden"):
        return key_diagnostic(document, loc, kind, allowed_keys(loc[len(prefix) :], root))
    line, column = document.position(loc) or (None, None)
    pattern = error.get("ctx", {}).get("pattern") if kind == "string_pattern_mismatch" else None
    if pattern in PATTERN_HELP:
        return Diagnostic(document.file, line, column, format_field(loc), f"got {value!r}; {PATTERN_HELP[pattern]}")
    return Diagnostic(document.file, line, column, format_field(loc), _message(kind, error, value))


def _clean_loc(loc: Iterable[Any]) -> FieldPath:
    """A pydantic error location without the union branches it names (``str``, ``CountRange``, ...)."""
    return tuple(part for part in loc if not _is_tag(part))


def _is_tag(part: Any) -> bool:
    """Whether a part of a pydantic error location is a type tag rather than a field name or index."""
    if not isinstance(part, str):
        return False
    models = {"CountRange", "ModelSpec", "MembershipExpectation", "MetricExpectation", "CountExpectation"}
    return (
        part in ("str", "int", "bool", "float", "[key]")
        or part in models
        or part.startswith(("list[", "dict[", "constrained-str", "function-", "literal["))
    )


def _check_names(project: ProjectFile) -> list[Diagnostic]:
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


def check_project(project: ProjectFile, registry: Any) -> list[Diagnostic]:
    """Check the names in a project file against the loaded registry: concepts, definitions and selections."""
    concepts = set(registry.files)
    definitions = set(registry.definition_ids())
    out: list[Diagnostic] = []

    def unknown_concept(where: FieldPath, name: str) -> None:
        listing = ", ".join(sorted(concepts)) or "none loaded"
        out.append(
            project.diagnostic(
                where,
                f"no concept '{name}' is loaded{did_you_mean(name, concepts)} (concepts: {listing})",
                "unknown-concept",
            )
        )

    def unknown_definition(where: FieldPath, ref: str) -> None:
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
        elif spec.concept not in concepts:  # type: ignore[union-attr]
            unknown_concept((*base, "concept"), spec.concept)  # type: ignore[union-attr]
    return out


def read_project(path: Path) -> ProjectFile:
    """Load a project file or raise :class:`~defcheck.diagnostics.DiagnosticsError` with its diagnostics."""
    from defcheck.diagnostics import DiagnosticsError

    loaded, diagnostics = load_project(path)
    errors = [d for d in diagnostics if d.severity == "error"]
    if loaded is None or errors:
        raise DiagnosticsError(errors or diagnostics)
    return loaded


def resolve_project(config: Path | None, no_config: bool) -> Path | None:
    """The project file to use: ``--config``, else the nearest one (unless ``--no-config``)."""
    if config is not None:
        if not config.exists():
            raise DefcheckError(f"the project file {config} does not exist")
        if config.is_dir():
            for name in PROJECT_FILE_NAMES:
                if (config / name).is_file():
                    return config / name
            raise DefcheckError(f"{config} is a folder without a defcheck.yaml")
        return config
    if no_config:
        return None
    return find_project()
