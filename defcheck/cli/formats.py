"""Every report format by name, for ``-f/--format``: ``terminal``, the run-level ones (``github``, ``sarif``,
``junit``: one document for all of a run's reports) and the registered :class:`ReportFormat` plugins
(``json``, ``markdown``, ``html``, a plugin's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from defcheck.diagnostics import DefcheckError, did_you_mean
from defcheck.hooks.manager import Extensions


def _github(reports: Sequence[Any]) -> str:
    from defcheck.report.github import render_github

    return render_github(reports)


def _sarif(reports: Sequence[Any]) -> str:
    from defcheck.report.sarif import render_sarif

    return render_sarif(reports)


def _junit(reports: Sequence[Any]) -> str:
    from defcheck.report.junit import render_junit

    return render_junit(reports)


RUN_FORMATS: dict[str, Callable[[Sequence[Any]], str]] = {"github": _github, "junit": _junit, "sarif": _sarif}
"""The formats rendered once for all of a run's reports (one per model)."""


def format_names(extensions: Extensions) -> list[str]:
    """Every format ``-f`` takes: terminal, the run-level ones, then the registered ones."""
    return ["terminal", *RUN_FORMATS, *sorted(extensions.report_formats)]


def check_format(name: str, extensions: Extensions) -> None:
    """Refuse a format nobody registered, with a did-you-mean and the list of known ones."""
    known = format_names(extensions)
    if name not in known:
        raise DefcheckError(f"unknown report format '{name}'{did_you_mean(name, known)} (known: {', '.join(known)})")


def render(name: str, reports: Sequence[Any], extensions: Extensions) -> str:
    """The text of format ``name`` (not ``terminal``) for ``reports``: run-level formats take them all, the
    registered ones render each report (in order, for one report: that report)."""
    check_format(name, extensions)
    if name in RUN_FORMATS:
        return RUN_FORMATS[name](reports)
    texts = []
    for report in reports:
        rendered = extensions.report_formats[name].render(report)
        texts.append(rendered if isinstance(rendered, str) else rendered.decode())
    return "".join(texts)
