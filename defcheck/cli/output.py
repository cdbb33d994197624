"""Where commands print and write: the stdout and stderr consoles, diagnostics, and files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from defcheck.cli.settings import Settings
from defcheck.diagnostics import DefcheckError, Diagnostic


def stdout_console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def threshold_text(threshold: str | dict[str, Any]) -> str:
    if isinstance(threshold, str):
        return threshold
    return f"top {threshold['top_k']}" + (f" and >= {threshold['min']}" if "min" in threshold else "")


def print_diagnostics(console: Console, diagnostics: list[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        style = "red" if diagnostic.severity == "error" else "yellow"
        console.print(str(diagnostic), style=style, markup=False)


def report_plugin_problems(settings: Settings) -> None:
    if not settings.quiet:
        print_diagnostics(stderr_console(), settings.extensions.problems)


def write_file(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise DefcheckError(f"cannot write {path}: {error.strerror or error}") from error


def write_output(settings: Settings, target: Path, text: str) -> None:
    if target.parent != Path() and not target.parent.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DefcheckError(f"cannot write {target}: {error.strerror or error}") from error
    write_file(target, text)
    if not settings.quiet:
        stderr_console().print(f"wrote {target}")
