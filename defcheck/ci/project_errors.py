"""A project file's schema errors as located diagnostics: one per field (of a union's branches, the one that
fits the value), in the project file's words, with unit addresses read as written (``1.10``, not ``1.1``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from defcheck.ci.project_schema import EXPECTATION_KEYS, PATTERN_HELP
from defcheck.diagnostics import Diagnostic, did_you_mean
from defcheck.language.concept_file import _message, allowed_keys, key_diagnostic
from defcheck.language.salvage import actual_location
from defcheck.language.yaml_source import FieldPath, YamlDocument, format_field


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
    loc: FieldPath = actual_location(document.data, (*prefix, *_clean_loc(error["loc"])))
    kind = error["type"]
    value = error.get("input")
    if kind in ("missing", "extra_forbidden"):
        return key_diagnostic(document, loc, kind, allowed_keys(loc[len(prefix) :], root))
    line, column = document.position(loc, key=kind == "invalid_key") or (None, None)
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
