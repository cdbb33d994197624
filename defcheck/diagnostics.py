"""Diagnostics: one error or warning about a user's input, located at file, line, column and field."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem found in a definition file, a plugin or a project file.

    Printed as ``file:line:column: field: message`` so editors and CI systems can jump to it.
    ``code`` is a stable identifier (e.g. ``schema``, ``unknown-checker``) used by SARIF and JSON output.
    """

    file: str
    line: int | None
    column: int | None
    field: str
    message: str
    severity: Severity = "error"
    code: str = "schema"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        prefix = "" if self.severity == "error" else "warning: "
        return f"{where}:{field} {prefix}{self.message}"

    def to_dict(self) -> dict[str, object]:
        """The diagnostic as plain JSON-able data."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
            "code": self.code,
        }


class DefcheckError(Exception):
    """An error caused by a user's input or environment; the CLI prints it without a traceback."""


class DiagnosticsError(DefcheckError):
    """Raised when loading stops on errors; carries every diagnostic found in one pass."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class DefinitionsError(DefcheckError):
    """Nothing was run because an input (the definitions, the project file) has errors; carries them all, so a
    caller can print them located, and reads as one sentence listing the first few."""

    def __init__(self, diagnostics: Iterable[Diagnostic], source: str = "the definitions", shown: int = 20):
        self.diagnostics = list(diagnostics)
        self.source = source
        count = len(self.diagnostics)
        listing = "".join(f"\n  {d}" for d in self.diagnostics[:shown])
        more = f"\n  ... and {count - shown} more" if count > shown else ""
        verb = "have" if source == "the definitions" else "has"
        super().__init__(f"{source} {verb} {count} error(s); nothing was run{listing}{more}")


def short_repr(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (a number of 400 digits is not worth printing)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``did you mean 'x'?`` suffix for the closest choice, or an empty string."""
    matches = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory where possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
