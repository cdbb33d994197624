"""Where commands print and write: the stdout and stderr consoles, diagnostics, and files.

Every console here prints user text as text: the formats and tables escape it where they build it (names,
summaries, sources, messages are never Rich markup), and under that each console has a render hook
(:class:`ShownText`) that shows control characters instead of sending them and keeps any line from starting a
GitHub workflow command, whatever printed it (an ``error:`` line with an exception's message included).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook, RenderResult
from rich.measure import Measurement
from rich.segment import Segment

from defcheck.cli.settings import Settings
from defcheck.diagnostics import Diagnostic
from defcheck.files import atomic_write, write_error
from defcheck.report.escaping import neutralise_commands, printable

PIPE_WIDTH = 200
"""The width of what is printed into a pipe or a file when ``$COLUMNS`` does not say (wide, for CI logs)."""

STDOUT = Path("-")
"""``-o -``: write to stdout, as ``-o`` left out does."""


def output_width() -> int | None:
    """``$COLUMNS`` when set; else the terminal's width (``None``: Rich asks it), or :data:`PIPE_WIDTH` in a pipe."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if sys.stdout.isatty() else PIPE_WIDTH


class _Shown:
    """A renderable printed with its text's control characters shown and no line starting a workflow command."""

    def __init__(self, renderable: ConsoleRenderable):
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line_start = True
        for segment in console.render(self.renderable, options):
            if segment.control:
                yield segment
                continue
            text = printable(segment.text)
            if "::" in text or "##[" in text:
                text = neutralise_commands(("\n" if line_start else "-") + text)[1:]
            line_start = text.endswith("\n") or (line_start and not text.strip(" \t"))
            yield Segment(text, segment.style)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.renderable)


class ShownText(RenderHook):
    """The render hook of every console the CLI prints with (see the module's docstring)."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Shown(renderable) for renderable in renderables]


def make_console(**options: Any) -> Console:
    """A Rich console (``options`` as for :class:`rich.console.Console`) that prints through :class:`ShownText`."""
    made = Console(**options)
    made.push_render_hook(ShownText())
    return made


def stdout_console() -> Console:
    return make_console(highlight=False, width=output_width())


def stderr_console() -> Console:
    return make_console(stderr=True, highlight=False, soft_wrap=True)


def threshold_text(threshold: str | dict[str, Any]) -> str:
    if isinstance(threshold, str):
        return threshold
    return f"top {threshold['top_k']}" + (f" and >= {threshold['min']}" if "min" in threshold else "")


def print_diagnostics(console: Console, diagnostics: list[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        style = "red" if diagnostic.severity == "error" else "yellow"
        console.print(printable(diagnostic), style=style, markup=False)


def report_plugin_problems(settings: Settings, *, failures: bool = True) -> None:
    """Print the plugins that failed to load on stderr (unless ``-q``), once per invocation however often called.

    With ``-v``, also say which plugins loaded and which ``-p no:NAME`` left out. Every command that loads
    plugins calls it; ``failures=False`` where the command shows the failures in its own output (``validate``,
    ``plugins``).
    """
    if settings.problems_reported:
        return
    settings.problems_reported = True
    if settings.quiet:
        return
    extensions = settings.extensions
    console = stderr_console()
    if settings.verbose:
        loaded = ", ".join(info.name for info in extensions.plugins if not info.error) or "none"
        left_out = f"; left out: {', '.join(extensions.disabled)}" if extensions.disabled else ""
        console.print(f"plugins: {loaded}{left_out}", markup=False)
    if failures:
        print_diagnostics(console, extensions.problems)


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (:func:`defcheck.files.atomic_write`: a temporary file beside
    it, fsynced, renamed over it), making its folder if need be; a failure (a full disk) is one
    :class:`DefcheckError` naming the file and saying that the previous one is left as it was."""
    previous = path.is_file() if path.is_file() or not path.exists() else None  # None: a FIFO or device
    try:
        atomic_write(path, text)
    except OSError as error:
        raise write_error(path, error, previous) from None


def write_output(settings: Settings, target: Path | None, text: str) -> None:
    """What ``-o/--output FILE`` means in every command: ``text`` goes to FILE (with a ``wrote FILE`` note on
    stderr unless ``-q``), or to stdout when FILE is ``-`` or not given."""
    if target is None or target == STDOUT:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_file(target, text)
    if not settings.quiet:
        stderr_console().print(f"wrote {target}", markup=False)


@contextlib.contextmanager
def output_console(settings: Settings, target: Path | None) -> Iterator[Console]:
    """A console for a command's output: stdout, or (``-o FILE``) plain text written to FILE at the end."""
    if target is None or target == STDOUT:
        yield stdout_console()
        return
    buffer = io.StringIO()
    yield make_console(file=buffer, highlight=False, color_system=None, width=output_width() or PIPE_WIDTH)
    write_output(settings, target, buffer.getvalue())
