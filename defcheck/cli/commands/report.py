"""``defcheck report``: re-render a saved JSON report."""

from __future__ import annotations

from pathlib import Path

import click

from defcheck.cli.options import output_option
from defcheck.cli.output import output_console, report_plugin_problems, write_output
from defcheck.cli.settings import Settings
from defcheck.diagnostics import DefcheckError, display_path
from defcheck.files import MAX_REPORT_BYTES, read_regular_file


@click.command()
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "-f",
    "--output-format",
    "format_name",
    default="terminal",
    show_default=True,
    metavar="FORMAT",
    help="terminal, json, markdown, html, github (annotations), sarif, junit, or a plugin's format.",
)
@output_option
@click.pass_obj
def report(settings: Settings, report_file: Path, format_name: str, output: Path | None) -> None:
    """Re-render a saved JSON report in another format."""
    from defcheck.cli.formats import check_format, render
    from defcheck.report import Report

    report_plugin_problems(settings)
    check_format(format_name, settings.extensions)
    raw = read_regular_file(report_file, MAX_REPORT_BYTES, "the report")  # a FIFO would block; a limit
    try:
        loaded = Report.from_json(raw)
    except DefcheckError as error:  # the document's problem, with the file it is in
        raise DefcheckError(f"{display_path(report_file)}: {error}") from None
    if format_name == "terminal":
        with output_console(settings, output) as console:
            loaded.to_terminal(console)
        return
    write_output(settings, output, render(format_name, [loaded], settings.extensions))
