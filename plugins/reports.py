"""Registers the built-in report formats (json, markdown, html) through the same hook a third party uses.

The renderers live in the core (``defcheck.report``: ``Report.to_json()`` and the command line use them too), not
in the plugin contract; each one is imported when it renders, because the report package imports the engine and
torch, which listing the formats (``defcheck plugins``) never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from defcheck.plugin import ReportFormat, hookimpl

if TYPE_CHECKING:
    from defcheck.plugin import Report


def render_json(report: Report) -> str:
    """The versioned JSON document."""
    from defcheck.report import json  # not the contract: the core's renderer (see above)

    return json.render(report)


def render_markdown(report: Report) -> str:
    """Markdown for a pull-request comment."""
    from defcheck.report import markdown  # not the contract: the core's renderer (see above)

    return markdown.render(report)


def render_html(report: Report) -> str:
    """One self-contained HTML page."""
    from defcheck.report import html  # not the contract: the core's renderer (see above)

    return html.render(report)


@hookimpl
def defcheck_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat("json", render_json, ".json", "The versioned JSON document (docs/report-format.md)."),
        ReportFormat("markdown", render_markdown, ".md", "Markdown for a pull-request comment."),
        ReportFormat("html", render_html, ".html", "One self-contained HTML page with layer x head grids."),
    ]
