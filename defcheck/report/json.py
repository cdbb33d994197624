"""The JSON format: canonical values (rounded floats, naturally sorted keys) and the versioned text.

The same model, definitions and seed give byte-identical text: floats are rounded to 6 significant digits
(``-0.0`` written as ``0.0``), NaN and infinities become ``null`` (the builder records why in an
``undefined`` map next to them), object keys are sorted in natural order (``1.2`` before ``1.10``), lists
keep their order, and nothing time-dependent is written.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from defcheck.diagnostics import DefcheckError
from defcheck.report.document import upgrade
from defcheck.report.escaping import json_document

REPORT_VERSION = 1
SIGNIFICANT_DIGITS = 6
_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> list[Any]:
    """Sort key that orders digit runs by value: ``0.2 < 0.10 < 1.0``, ``head_2 < head_10``."""
    return [int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(text))]


def round_float(value: float) -> float | None:
    """``value`` rounded to 6 significant digits; ``None`` for NaN and infinities."""
    if math.isnan(value) or math.isinf(value):
        return None
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return 0.0 if rounded == 0 else rounded


def canonical(value: Any) -> Any:
    """A JSON-ready copy of ``value``: dict keys as strings in natural order, floats rounded, tensors and
    numpy values as plain numbers or lists, tuples as lists, anything else as its ``str``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return round_float(value)
    if isinstance(value, Mapping):
        items = {str(key): item for key, item in value.items()}
        return {key: canonical(items[key]) for key in sorted(items, key=natural_key)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [canonical(item) for item in sorted(value, key=lambda item: natural_key(str(item)))]
    tolist = getattr(value, "tolist", None)  # torch tensors, numpy arrays and scalars
    if callable(tolist):
        return canonical(tolist())
    return str(value)


def dumps(data: Mapping[str, Any]) -> str:
    """The report's JSON text: canonical, indented, UTF-8 friendly, ending in a newline; control and bidi
    characters in strings as escapes (:func:`~defcheck.report.escaping.json_document`)."""
    return json_document(json.dumps(canonical(data), indent=2, ensure_ascii=False, allow_nan=False)) + "\n"


def loads(text: str | bytes) -> dict[str, Any]:
    """Parse a saved report, check its ``report_version`` and its shape (:mod:`defcheck.report.validate`: the
    JSON path of the first problem); raise :class:`DefcheckError` otherwise. An older version-1 document is given
    the current shape (:func:`~defcheck.report.document.upgrade`) first."""
    from defcheck.report.validate import ReportShapeError, check_report, depth_problem

    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise DefcheckError(f"not a defcheck report: the text is not JSON ({error})") from None
    except RecursionError:
        raise DefcheckError("not a defcheck report: the JSON nests too deeply to read") from None
    if not isinstance(data, dict) or "report_version" not in data:
        raise DefcheckError("not a defcheck report: it has no 'report_version' (write one with `defcheck run`)")
    version = data["report_version"]
    if version != REPORT_VERSION:
        raise DefcheckError(
            f"this report has report_version {version!r}, but this defcheck reads report_version "
            f"{REPORT_VERSION}; re-run `defcheck run` to write it again, or use the defcheck version that wrote it"
        )
    if not isinstance(data.get("concepts"), dict) or not isinstance(data.get("model"), dict):
        raise DefcheckError("not a defcheck report: 'concepts' and 'model' must be objects")
    try:
        problem = depth_problem(data)
        if problem is not None:
            raise problem
        with contextlib.suppress(AttributeError, TypeError, KeyError, ValueError):
            upgrade(data)  # a document of the wrong shape may stop it: the check below says where
        check_report(data)
    except ReportShapeError as error:
        raise DefcheckError(f"not a valid defcheck report: {error}") from None
    return data


def render(report: Any) -> str:
    """The ``json`` report format."""
    return report.to_json()
