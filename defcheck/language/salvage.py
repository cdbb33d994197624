"""The valid rest of a concept file with schema errors, so that the plugins' checks still run on it.

A bad threshold must not hide an unknown checker in the same file. Each refused value is replaced by a
placeholder and its path is marked *broken* (no later check reads it); an unknown key is dropped; a definition
that cannot stand (no criteria, or both ``all`` and ``any``) is set aside. Validation then repeats, which also
brings out the errors pydantic reports only once the fields below them are valid.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from defcheck.language.schema import Concept
from defcheck.language.yaml_source import FieldPath

MAX_ROUNDS = 6
_CONCEPT_PLACEHOLDERS: dict[str, Any] = {
    "concept": "unnamed",
    "unit": "attention_head",
    "summary": "",
    "references": [],
    "builtin": None,
}
_DEFINITION_PLACEHOLDERS: dict[str, Any] = {"kind": "behavioral", "summary": None, "source": None}
_CRITERION_PLACEHOLDERS: dict[str, Any] = {
    "checker": "unknown",
    "params": {},
    "probe": None,
    "threshold": ">= 0",
    "with": None,
}
_CRITERION = {"checker": "unknown", "threshold": ">= 0"}


@dataclass
class Salvage:
    """What validation found: every schema error, and the concept that is left (``None`` if nothing is)."""

    errors: list[Any] = field(default_factory=list)  # pydantic's ErrorDetails
    concept: Concept | None = None
    broken: set[FieldPath] = field(default_factory=set)
    set_aside: set[str] = field(default_factory=set)


class _Unsalvageable(Exception):
    """The file's shape leaves nothing to check (no definitions mapping, say)."""


def validate_concept(data: dict[Any, Any]) -> Salvage:
    """Validate a concept file's data; on errors, keep validating what can be salvaged, collecting errors."""
    result = Salvage()
    work = copy.deepcopy(data)
    seen: set[tuple[FieldPath, str]] = set()
    for _ in range(MAX_ROUNDS):
        try:
            result.concept = Concept.model_validate(work)
            return result
        except ValidationError as error:
            entries = list(error.errors())
            for entry in entries:
                entry["loc"] = actual_location(work, tuple(entry["loc"]))
            entries = [entry for entry in entries if (tuple(entry["loc"]), entry["type"]) not in seen]
        if result.set_aside and any(len(entry["loc"]) < 2 for entry in entries):
            break  # setting definitions aside emptied the mapping: the rest is nothing to check
        if not entries:
            break
        for entry in entries:
            seen.add((tuple(entry["loc"]), entry["type"]))
            result.errors.append(entry)
        try:
            for entry in entries:
                _repair(work, tuple(entry["loc"]), entry["type"], result)
        except (_Unsalvageable, KeyError, IndexError, TypeError, AttributeError):
            break
    result.concept = None
    return result


def actual_location(data: Any, loc: FieldPath) -> FieldPath:
    """``loc`` with each key as ``data`` holds it: pydantic names every key as a string (``'None'`` for a null
    key, ``'3'`` for the number 3), but positions are recorded under the key YAML read."""
    out: list[Any] = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node:
            part = next((key for key in node if not isinstance(key, str) and str(key) == part), part)
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _repair(work: dict[Any, Any], loc: FieldPath, kind: str, result: Salvage) -> None:
    """Make the value at ``loc`` valid (a placeholder), drop it, or set its definition aside."""
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        kind = "invalid_key"
    if kind in ("extra_forbidden", "invalid_key"):
        _parent(work, loc).pop(loc[-1], None)
        if len(loc) == 2 and loc[0] == "definitions":
            result.set_aside.add(str(loc[1]))
        return
    head = loc[0] if loc else None
    if head != "definitions":
        if head not in _CONCEPT_PLACEHOLDERS:
            raise _Unsalvageable(loc)
        _replace(work, (head,), _CONCEPT_PLACEHOLDERS[head], result)
        return
    if len(loc) < 2 or not isinstance(work.get("definitions"), dict):
        raise _Unsalvageable(loc)
    name = loc[1]
    if len(loc) >= 4 and loc[2] in ("all", "any"):
        if len(loc) >= 5 and loc[4] in _CRITERION_PLACEHOLDERS:
            _replace(work, loc[:5], copy.deepcopy(_CRITERION_PLACEHOLDERS[str(loc[4])]), result)
        else:
            _replace(work, loc[:4], dict(_CRITERION), result)
        return
    if len(loc) >= 3 and loc[2] in _DEFINITION_PLACEHOLDERS:
        _replace(work, loc[:3], _DEFINITION_PLACEHOLDERS[str(loc[2])], result)
        return
    work["definitions"].pop(name, None)  # the definition itself, or its 'all'/'any' list, cannot stand
    result.set_aside.add(str(name))


def _parent(work: Any, loc: FieldPath) -> Any:
    target = work
    for part in loc[:-1]:
        target = target[part]
    return target


def _replace(work: dict[Any, Any], loc: FieldPath, value: Any, result: Salvage) -> None:
    parent = _parent(work, loc)
    if isinstance(parent, list) and not isinstance(loc[-1], int):
        raise _Unsalvageable(loc)
    parent[loc[-1]] = value
    result.broken.add(loc)
