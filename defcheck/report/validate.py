"""The check of a report read back from disk (``defcheck report``, ``--baseline``, a resumed sweep): its shape
against the document of docs/report-format.md, so that a damaged or hand-edited file is refused with the JSON
path of its first problem instead of failing somewhere in a renderer.

The shapes below follow :mod:`defcheck.report.document`. Keys a renderer can do without (those added within
version 1: ``units``, ``grid``, ``skipped``, ``probes``, ``file``, ``line``, ``note``) may be missing; keys this
defcheck does not know are allowed (a later minor version may add some). Numbers must be finite (JSON readers
accept ``NaN``, ``Infinity`` and ``1e999``) and of a size a float holds; strings must be valid Unicode (JSON
allows a lone surrogate, ``"\\ud800"``, which no UTF-8 output can write). Written in plain Python: the runtime
does not depend on ``jsonschema``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

MAX_DEPTH = 64  # how deep a report may nest (evidence and params hold plugins' values); reports need ~10
MAX_INT = 2**63 - 1

Path = tuple[str | int, ...]
Check = Callable[[Any, Path], None]


class ReportShapeError(ValueError):
    """The document's first problem: ``path`` (``concepts.x.definitions.y.scores["1.2"]``) and what is wrong."""

    def __init__(self, path: Path, message: str):
        super().__init__(f"{json_path(path)}: {message}" if path else message)
        self.path = path
        self.message = message


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(path: Path) -> str:
    """``("concepts", "x", "units", 3)`` -> ``concepts.x.units[3]``; keys that are not names are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _NAME.match(part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        text = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return f"the string {text[:40]!r}" + ("..." if len(text) > 40 else "")
    if isinstance(value, int) and abs(value) > MAX_INT:
        return "an integer too large"
    return f"the number {value!r}"


def _fail(path: Path, wanted: str, value: Any) -> None:
    raise ReportShapeError(path, f"must be {wanted}, not {_describe(value)}")


def _unicode(text: str, path: Path) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ReportShapeError(path, "holds a lone surrogate, which is not valid Unicode") from None


def string(value: Any, path: Path) -> None:
    if not isinstance(value, str):
        _fail(path, "a string", value)
    _unicode(value, path)


def integer(value: Any, path: Path) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_INT:
        _fail(path, "an integer", value)


def count(value: Any, path: Path) -> None:
    integer(value, path)
    if value < 0:
        _fail(path, "a count (an integer >= 0)", value)


def number(value: Any, path: Path) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, "a number", value)
    if isinstance(value, int):
        integer(value, path)
    elif not math.isfinite(value):
        _fail(path, "a finite number", value)


def boolean(value: Any, path: Path) -> None:
    if not isinstance(value, bool):
        _fail(path, "true or false", value)


def anything(value: Any, path: Path) -> None:
    """Any JSON value (a plugin's evidence, parameters, a model's info), with its numbers and strings checked."""
    if isinstance(value, dict):
        for key, item in value.items():
            _unicode(key, (*path, key))
            anything(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            anything(item, (*path, index))
    elif isinstance(value, str):
        _unicode(value, path)
    elif value is not None and not isinstance(value, bool):
        number(value, path)


def optional(check: Check) -> Check:
    def run(value: Any, path: Path) -> None:
        if value is not None:
            check(value, path)

    return run


def one_of(*choices: str) -> Check:
    def run(value: Any, path: Path) -> None:
        if value not in choices or not isinstance(value, str):
            _fail(path, "one of " + ", ".join(choices), value)

    return run


def list_of(check: Check) -> Check:
    def run(value: Any, path: Path) -> None:
        if not isinstance(value, list):
            _fail(path, "a list", value)
        for index, item in enumerate(value):
            check(item, (*path, index))

    return run


def map_of(check: Check) -> Check:
    def run(value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            _fail(path, "an object", value)
        for key, item in value.items():
            _unicode(key, (*path, key))
            check(item, (*path, key))

    return run


def record(required: Mapping[str, Check], optional_keys: Mapping[str, Check] | None = None) -> Check:
    """An object with these keys (more are allowed)."""
    extra = dict(optional_keys or {})

    def run(value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            _fail(path, "an object", value)
        for key, check in required.items():
            if key not in value:
                raise ReportShapeError((*path, key), "is missing")
            check(value[key], (*path, key))
        for key, check in extra.items():
            if key in value:
                check(value[key], (*path, key))
        for key in value:
            if key not in required and key not in extra:
                _unicode(key, (*path, key))
                anything(value[key], (*path, key))

    return run


names = list_of(string)
reasons = map_of(string)
maybe_str = optional(string)
maybe_number = optional(number)
scores = optional(map_of(maybe_number))
threshold_rule = record({"top_k": count}, {"min": maybe_number})


def some_names(value: Any, path: Path) -> None:
    names(value, path)
    if not value:
        _fail(path, "a list of at least one name", value)


def threshold(value: Any, path: Path) -> None:
    if isinstance(value, str):
        string(value, path)
    elif isinstance(value, dict):
        threshold_rule(value, path)
    else:
        _fail(path, "a threshold ('>= 0.4' or {\"top_k\": 3})", value)


criterion = record(
    {
        "checker": string,
        "params": map_of(anything),
        "probe": maybe_str,
        "with": names,
        "threshold": threshold,
        "scores": scores,
        "passed": optional(names),
        "undefined": reasons,
        "not_applicable": maybe_str,
        "evidence": map_of(map_of(anything)),
        "error": maybe_str,
    },
    {
        "probe_note": string,
        "chance": maybe_number,
        "margins": optional(map_of(maybe_number)),
        "sd": optional(map_of(maybe_number)),
    },
)
definition = record(
    {
        "kind": one_of("behavioral", "mechanistic"),
        "combinator": one_of("all", "any"),
        "source": maybe_str,
        "summary": maybe_str,
        "status": one_of("ok", "errored", "not_applicable"),
        "members": optional(names),
        "scores": scores,
        "undefined": reasons,
        "criteria": list_of(criterion),
        "not_applicable": maybe_str,
        "error": maybe_str,
    },
    {
        "file": maybe_str,
        "line": optional(count),
        "stability": optional(record({"share": map_of(number), "unstable": names})),
    },
)
_PAIR: dict[str, Check] = {
    "behavioral": names,
    "mechanistic": names,
    "both": names,
    "behavioral_only": names,
    "mechanistic_only": names,
    "neither_count": count,
    "jaccard": maybe_number,
    "precision": maybe_number,
    "recall": maybe_number,
    "spearman": maybe_number,
    "spearman_units": count,
    "undefined": reasons,
}
sensitivity_row = record(
    {
        "factor": number,
        "jaccard": maybe_number,
        "jaccard_behavioral_scaled": maybe_number,
        "jaccard_mechanistic_scaled": maybe_number,
        "behavioral": count,
        "mechanistic": count,
        "both": count,
        "thresholds": map_of(names),
        "undefined": reasons,
    }
)
overlap = record(
    {
        **_PAIR,
        "pairs": list_of(record({**_PAIR, "behavioral": some_names, "mechanistic": some_names})),
        "sensitivity": list_of(sensitivity_row),
        "divergences": reasons,
        "undetermined": reasons,
        "excluded": reasons,
        "reason": maybe_str,
        "narrative": string,
    },
    {
        "stability": optional(
            record(
                {
                    "seeds": count,
                    "jaccard": record(dict.fromkeys(("min", "median", "max"), maybe_number)),
                    "unstable": names,
                    "stable_disagreements": names,
                    "unstable_disagreements": names,
                }
            )
        ),
        "bootstrap": record(
            {
                "replicates": count,
                "level": number,
                "jaccard": optional(list_of(number)),
                "within_noise": names,
                "fixed": names,
            }
        ),
    },
)
_concept_fields = record(
    {
        "unit": string,
        "unit_noun": string,
        "unit_plural": string,
        "summary": maybe_str,
        "references": names,
        "definitions": map_of(definition),
        "overlap": overlap,
    },
    {
        "units": names,
        "grid": optional(record({"rows": names, "columns": names})),
        "note": maybe_str,
        "file": maybe_str,
        "line": optional(count),
    },
)


def concept(value: Any, path: Path) -> None:
    """A concept, and its parts consistent with its ``units``: a grid that lays them out, a score for every unit
    (a baseline whose scores were emptied would otherwise compare as "no differences"), members among them."""
    _concept_fields(value, path)
    grid, units = value.get("grid"), value.get("units")
    if grid is not None and units is not None and len(grid["rows"]) * len(grid["columns"]) != len(units):
        raise ReportShapeError(
            (*path, "grid"),
            f"{len(grid['rows'])} rows x {len(grid['columns'])} columns do not lay out the {len(units)} units",
        )
    if units is None:
        return  # a report from before `units` was written: nothing to compare with
    known = set(units)
    if len(known) != len(units):
        raise ReportShapeError((*path, "units"), "names a unit twice")
    for name, entry in value["definitions"].items():
        where = (*path, "definitions", name)
        _consistent(entry, where, known)
        for index, item in enumerate(entry["criteria"]):
            _consistent(item, (*where, "criteria", index), known)


def _consistent(entry: Mapping[str, Any], path: Path, units: set[str]) -> None:
    """Scores of exactly the concept's units; members (``passed``) among them."""
    scores = entry.get("scores")
    if scores is not None and set(scores) != units:
        missing = sorted(units - set(scores))
        problem = f"has no score for {missing[0]}" if missing else f"scores {sorted(set(scores) - units)[0]}, "
        if not missing:
            problem += "which is not one of the concept's units"
        raise ReportShapeError((*path, "scores"), f"{problem} (a score for every unit of `units` is written)")
    for key in ("members", "passed"):
        listed = entry.get(key)
        stray = [unit for unit in listed or [] if unit not in units]
        if stray:
            raise ReportShapeError((*path, key), f"names {stray[0]!r}, which is not one of the concept's units")


model = record(
    {"name": string},
    {
        **dict.fromkeys(("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "d_vocab", "n_ctx"), optional(count)),
        "model_names": names,
        "tokens": optional(map_of(anything)),
        "info": map_of(anything),
        "reference": string,
    },
)
probe = record(
    {"name": string, "params": map_of(anything)},
    {"sequences": optional(count), "positions": optional(count), "bos": boolean, "note": string},
)
expectation_result = record(
    {
        "concept": maybe_str,
        "definition": maybe_str,
        "status": one_of("passed", "failed", "error", "skipped"),
        "rule": string,
        "message": string,
        "description": string,
        "file": maybe_str,
        "line": optional(count),
        "index": count,
        "kind": string,
    },
    {"details": map_of(anything)},
)
difference = record(
    {"kind": string, "rule": string, "concept": maybe_str, "definition": maybe_str, "message": string},
    {"details": map_of(anything), "file": maybe_str, "line": optional(count)},
)
checks = record(
    {
        "model": string,
        "status": one_of("passed", "failed", "error"),
        "counts": record(dict.fromkeys(("passed", "failed", "error", "skipped", "differences", "errored"), count)),
        "expectations": list_of(expectation_result),
    },
    {
        "project": maybe_str,
        "baseline": optional(
            record({"file": string, "tolerance": number, "differences": list_of(difference)}, {"ignored": names}),
        ),
    },
)
document = record(
    {"report_version": integer, "model": model, "seed": integer, "concepts": map_of(concept)},
    {
        "probes": map_of(probe),
        "skipped": reasons,
        "seeds": list_of(integer),
        "bootstrap": count,
        "checks": checks,
        "sweep": record({}, {"key": string, "step": count, "checkpoint_index": optional(integer)}),
    },
)


def depth_problem(value: Any) -> ReportShapeError | None:
    """A problem if ``value`` nests deeper than :data:`MAX_DEPTH` (checked without recursion)."""
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return ReportShapeError(path[:8], f"the document nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((child, (*path, str(key))) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
    return None


def check_report(data: Any) -> None:
    """Raise :class:`ReportShapeError` at the first place where ``data`` (a parsed, upgraded report) is not a
    report document; return quietly when it is one."""
    problem = depth_problem(data)
    if problem is not None:
        raise problem
    document(data, ())
