"""``defcheck report``: re-render a saved JSON report."""

from __future__ import annotations

from pathlib import Path

import click

from defcheck.cli.output import (
    stdout_console,
    write_file,
)
from defcheck.cli.settings import Settings
from defcheck.diagnostics import DefcheckError


@click.command()
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "-f",
    "format_name",
    default="terminal",
    show_default=True,
    help="terminal, json, markdown, html, or a plugin's format.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.pass_obj
def report(settings: Settings, report_file: Path, format_name: str, output: Path | None) -> None:
    """Re-render a saved JSON report in another format."""
    from defcheck.report import Report

    loaded = Report.from_json(report_file.read_bytes())
    if format_name == "terminal":
        loaded.to_terminal(stdout_console())
        return
    report_format = settings.extensions.report_formats.get(format_name)
    if report_format is None:
        known = ", ".join(["terminal", *sorted(settings.extensions.report_formats)])
        raise DefcheckError(f"unknown report format '{format_name}' (known: {known})")
    rendered = report_format.render(loaded)
    text = rendered if isinstance(rendered, str) else rendered.decode()
    if output:
        write_file(output, text)
    else:
        click.echo(text, nl=not text.endswith("\n"))
