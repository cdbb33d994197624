"""Registers the built-in report formats (json, markdown, html) through the same hook a third party uses."""

from __future__ import annotations

from defcheck import ReportFormat, hookimpl
from defcheck.report import builtin_formats


@hookimpl
def defcheck_report_formats() -> list[ReportFormat]:
    return builtin_formats()
