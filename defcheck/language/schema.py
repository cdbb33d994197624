"""The definition language: pydantic models of a concept file (``definitions/*.yaml``)."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.functional_validators import BeforeValidator

from defcheck.language.thresholds import THRESHOLD_JSON_SCHEMA, Comparison, TopK, parse_threshold

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
REFERENCE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$"
DefinitionKind = Literal["behavioral", "mechanistic"]
BuiltinRule = Literal["extend", "replace"]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]

ThresholdField = Annotated[
    Comparison | TopK,
    BeforeValidator(parse_threshold),
    PlainSerializer(lambda rule: rule.to_json()),
    WithJsonSchema(THRESHOLD_JSON_SCHEMA),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ProbeRef(BaseModel):
    """A probe by name with its parameters, e.g. ``{name: repeated_random_tokens, length: 32}``.

    The parameters are checked against the probe plugin's own parameter model once plugins are loaded.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Name = Field(description="A registered probe, e.g. repeated_random_tokens.")

    @property
    def params(self) -> dict[str, Any]:
        """The probe's parameters as written (everything but ``name``)."""
        return dict(self.model_extra or {})

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        return {"name": raw} if isinstance(raw, str) else raw


class Criterion(_Strict):
    """One test a unit must pass: a checker's score on a probe, compared with a threshold."""

    checker: Name = Field(description="A registered checker, e.g. attention_pattern.")
    params: dict[str, Any] = Field(default_factory=dict, description="The checker's parameters.")
    probe: ProbeRef | None = Field(None, description="The inputs, for checkers that observe behavior.")
    threshold: ThresholdField
    with_: list[Annotated[str, Field(pattern=REFERENCE_PATTERN)]] | None = Field(
        None,
        alias="with",
        description="Definitions whose members this criterion relates to ('concept.definition' or a name in "
        "this concept).",
    )

    @field_validator("with_", mode="before")
    @classmethod
    def _one_or_many(cls, raw: Any) -> Any:
        if isinstance(raw, (bool, int, float)):
            raise ValueError(
                f"'with' takes a definition name ('concept.definition' or a name in this concept) or a list of "
                f"them, not the number {raw!r}"
            )
        return [raw] if isinstance(raw, str) else raw


class Definition(_Strict):
    """One way of deciding membership: ``kind`` plus criteria combined with ``all`` or ``any``."""

    kind: DefinitionKind = Field(description="behavioral (observed on inputs) or mechanistic (how it is built).")
    summary: str | None = None
    source: str | None = Field(None, description="Where the definition comes from: paper and section.")
    all: list[Criterion] | None = Field(None, min_length=1, description="Every criterion must pass.")
    any: list[Criterion] | None = Field(None, min_length=1, description="At least one criterion must pass.")

    @model_validator(mode="after")
    def _one_combinator(self) -> Definition:
        if self.all is not None and self.any is not None:
            raise ValueError("a definition has either 'all' or 'any', not both; keep one")
        if self.all is None and self.any is None:
            raise ValueError("a definition needs its criteria: 'all' (every one must pass) or 'any' (one must)")
        return self

    @property
    def combinator(self) -> Literal["all", "any"]:
        return "all" if self.all is not None else "any"

    @property
    def criteria(self) -> list[Criterion]:
        return list(self.all if self.all is not None else self.any or [])


class Concept(_Strict):
    """A concept file: a named category of units and its behavioral and mechanistic definitions."""

    concept: Name = Field(description="The concept's name, unique across all loaded files.")
    builtin: BuiltinRule | None = Field(
        None,
        description="For a concept named like a built-in one (shipped by a plugin): 'extend' adds this file's "
        "definitions to the built-in concept, 'replace' uses this file instead of the built-in one.",
    )
    unit: Name = Field("attention_head", description="The kind of unit it categorizes, e.g. attention_head.")
    summary: str
    references: list[str] = Field(default_factory=list)
    definitions: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Definition] = Field(min_length=1)


def concept_json_schema() -> dict[str, Any]:
    """A draft-07 JSON Schema of a concept file, for editors (yaml-language-server, PyCharm)."""
    schema = Concept.model_json_schema(by_alias=True)
    schema = _to_draft7(copy.deepcopy(schema))
    criterion = schema["definitions"]["Criterion"]["properties"]
    name = schema["definitions"]["ProbeRef"]["properties"]["name"]
    # The models accept shorthands that pydantic's schema does not show: `probe: NAME` and `with: ID`.
    criterion["probe"]["anyOf"].insert(0, {"type": "string", "pattern": name["pattern"]})
    reference = criterion["with"]["anyOf"][0]["items"]
    criterion["with"]["anyOf"].insert(0, dict(reference))
    schema["definitions"]["Definition"]["oneOf"] = [{"required": ["all"]}, {"required": ["any"]}]
    schema["properties"]["definitions"]["propertyNames"] = {"pattern": NAME_PATTERN}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://defcheck.invalid/concept.schema.json",
        "title": "defcheck concept file",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def _to_draft7(node: Any) -> Any:
    """Rewrite pydantic's 2020-12 output (``$defs``) into draft 07 (``definitions``)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$defs":
                out["definitions"] = _to_draft7(value)
            elif key == "$ref" and isinstance(value, str):
                out[key] = value.replace("#/$defs/", "#/definitions/")
            else:
                out[key] = _to_draft7(value)
        return out
    if isinstance(node, list):
        return [_to_draft7(item) for item in node]
    return node
