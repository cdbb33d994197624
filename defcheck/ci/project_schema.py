"""The project file's language: the pydantic models of ``defcheck.yaml``, its models and its expectations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from defcheck.language.schema import NAME_PATTERN, REFERENCE_PATTERN
from defcheck.language.thresholds import Comparison, parse_threshold

PROJECT_FILE_NAMES = ("defcheck.yaml", "defcheck.yml")
DEFAULT_TOLERANCE = 1e-3
MAX_SEEDS = 1000  # the same as defcheck.engine.stability.MAX_SEEDS
MAX_BOOTSTRAP = 10_000  # the same as defcheck.engine.bootstrap.MAX_REPLICATES
MAX_SEED = 2**32 - 1  # seeds are 32-bit: within what torch.manual_seed and NumPy's generators accept
DEFAULT_CHECKER_TIMEOUT = 600.0
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
    stable: bool = Field(
        False, description="The unit(s) must also be where they are in every probe seed (a run with --seeds K >= 2)."
    )
    min_share: float | None = Field(
        None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="With 'definition': the unit(s) must be where they are in at least this share of the seeds.",
    )

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
        if self.concept is not None and self.min_share is not None:
            raise ValueError("'min_share' goes with 'definition'; for a concept's category use stable: true")
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
        if not isinstance(rule, Comparison):  # the field's validator admits comparisons only
            return False
        return {">=": number >= rule.value, ">": number > rule.value, "<=": number <= rule.value}.get(
            rule.op, number < rule.value
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
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of the probes (0 to 2**32 - 1).")
    seeds: int = Field(
        1, ge=1, le=MAX_SEEDS, description="Draw every probe under this many seeds (seed, seed + 1, ...): stability."
    )
    bootstrap: int = Field(
        0,
        ge=0,
        le=MAX_BOOTSTRAP,
        description="Resample each probe's sequences this many times (0: none): standard errors, margins, intervals.",
    )
    tolerance: float = Field(
        DEFAULT_TOLERANCE, ge=0, allow_inf_nan=False, description="How far a score may move from the baseline."
    )
    checker_timeout: float = Field(
        DEFAULT_CHECKER_TIMEOUT,
        ge=0,
        allow_inf_nan=False,
        description="Seconds one checker may take before it is stopped as its definition's error (0: no limit).",
    )
    allow_outside_files: bool = Field(
        False, description="Let probes read files outside this file's folder (token_file paths, text corpora)."
    )
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
        definition = getattr(self.spec, "definition", None)
        if definition:
            return str(definition).partition(".")[0]
        return str(self.spec.concept)

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
        seeds = " in every probe seed" if spec.stable else ""
        if spec.min_share is not None and not spec.stable:
            seeds = f" in at least {spec.min_share:.0%} of the probe seeds"
        if spec.concept is not None:
            return f"{spec.concept}: {units} {verb} {_category_words(spec.in_)}{seeds}"
        negation = "" if spec.member is not False else "not "
        return f"{spec.definition}: {units} {verb} {negation}{'a member' if verb == 'is' else 'members'}{seeds}"
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


EXPECTATION_KEYS = sorted({f.alias or n for m in EXPECTATION_MODELS.values() for n, f in m.model_fields.items()})
