"""Where ``defcheck run`` sends its reports: which formats go to stdout, which to files (``-o [FORMAT=]FILE``,
``--output-dir DIR``), and the rendering of each; with ``-q``, one line per model and what failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from defcheck.cli.formats import RUN_FORMATS, check_format, format_names
from defcheck.cli.formats import render as render_format
from defcheck.cli.output import stderr_console, write_output
from defcheck.cli.settings import Settings
from defcheck.diagnostics import DefcheckError
from defcheck.hooks.manager import Extensions
from defcheck.report.escaping import printable

MODEL_TEMPLATE = "{model}"
RUN_SUFFIXES = {"github": ".txt", "junit": ".xml", "sarif": ".sarif"}  # --output-dir names of the run-level formats
SUFFIXES = {".json": "json", ".md": "markdown", ".html": "html", ".htm": "html", ".sarif": "sarif", ".xml": "junit"}
DEPRECATED_FILES = {"--json": "json", "--markdown": "markdown", "--junit": "junit", "--sarif": "sarif"}


@dataclass
class OutputPlan:
    """``stdout``: the formats printed (``terminal`` and at most one other); ``files``: ``(format, FILE)``, FILE
    with ``{model}`` where a format has a document per model and the run several models; ``directory``: where
    ``--output-dir`` writes every chosen format but the terminal."""

    stdout: list[str]
    files: list[tuple[str, Path]] = field(default_factory=list)
    directory: Path | None = None
    directory_formats: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return "terminal" in self.stdout


def plan_outputs(
    formats: Sequence[str],
    outputs: Sequence[str],
    directory: Path | None,
    deprecated: Mapping[str, Path | None],
    extensions: Extensions,
) -> OutputPlan:
    """Check ``-f``/``-o``/``--output-dir`` (and the deprecated ``--json FILE``-style options) and plan them."""
    known = format_names(extensions)
    for name in formats:
        check_format(name, extensions)
    files: list[tuple[str, Path]] = []
    for option, target in deprecated.items():
        if target is not None:
            new = f"-o {DEPRECATED_FILES[option]}={target}"
            stderr_console().print(f"note: {option} FILE is deprecated; use {new}", style="yellow", markup=False)
            files.append((DEPRECATED_FILES[option], target))
    written = [name for name in formats if name != "terminal"]
    for value in outputs:
        name, sep, path = value.partition("=")
        if not sep or "/" in name or name not in known:
            name, path = _infer(value, written, known), value
        if name == "terminal":
            raise click.UsageError(f"-o {value}: the terminal format is for stdout; pick another, e.g. -o json={path}")
        files.append((name, Path(path)))
    to_files = {name for name, _ in files}
    in_directory = [name for name in dict.fromkeys(formats) if name not in ("terminal", "github")] if directory else []
    if directory and not in_directory:
        in_directory = ["json"]  # --output-dir without a format to write: the JSON report
    stdout = [name for name in dict.fromkeys(formats) if name not in to_files and name not in in_directory]
    if not formats:
        stdout = ["terminal"]
    others = [name for name in stdout if name != "terminal"] + [name for name, path in files if str(path) == "-"]
    if len(others) > 1:
        raise click.UsageError(
            f"-f {' -f '.join(others)}: only one format can go to stdout; write the others to files with "
            f"-o FORMAT=FILE or --output-dir DIR"
        )
    return OutputPlan(stdout, files, directory, in_directory)


def _infer(value: str, written: list[str], known: list[str]) -> str:
    """The format of ``-o FILE``: the one its suffix names, else the only non-terminal ``-f`` given."""
    by_suffix = SUFFIXES.get(Path(value).suffix.lower())
    if by_suffix is not None and by_suffix in known:
        return by_suffix
    if len(written) == 1:
        return written[0]
    raise click.UsageError(
        f"-o {value}: say which format goes there, e.g. -o json={value} (or name the file .json, .md, .html, "
        ".sarif or .xml for JUnit)"
    )


def check_templates(plan: OutputPlan, names: list[str], others: Mapping[str, Path | None]) -> None:
    """With several models, every per-model file (and ``others``: ``--baseline``...) must have ``{model}`` in its
    name."""
    if len(names) < 2:
        return
    targets = [(f"-o {name}=", path) for name, path in plan.files if name not in RUN_FORMATS]
    targets += [(f"{option} ", path) for option, path in others.items() if path is not None]
    for option, target in targets:
        if MODEL_TEMPLATE not in str(target):
            raise DefcheckError(
                f"{option}{target}: this run checks {len(names)} models ({', '.join(names)}); put {MODEL_TEMPLATE} "
                f"in the file name (e.g. {target.stem}.{MODEL_TEMPLATE}{target.suffix}) or pick one with --model"
            )


def model_path(target: Path, name: str) -> Path:
    return Path(str(target).replace(MODEL_TEMPLATE, name))


def render(report: Any, name: str, extensions: Extensions) -> str:
    """One model's report in the per-model format ``name``."""
    return render_format(name, [report], extensions)


def render_run(reports: Sequence[Any], name: str) -> str:
    """The document of every model of the run in ``github``, ``junit`` or ``sarif``."""
    return RUN_FORMATS[name](reports)


def show_model(settings: Settings, console: Console, plan: OutputPlan, report: Any, name: str, several: bool) -> None:
    """Print and write one model's report as planned, as soon as it is built."""
    extensions = settings.extensions
    if plan.terminal and settings.quiet:
        for text, style in quiet_lines(report.data, name):
            console.print(printable(text), style=style, markup=False)
    elif plan.terminal:
        if several:
            console.rule(Text(printable(f"model {name}")))
        report.to_terminal(console)
    for format_name in plan.stdout:
        if format_name not in ("terminal", *RUN_FORMATS):
            text = render(report, format_name, extensions)
            click.echo(text, nl=not text.endswith("\n"))
    for format_name, target in plan.files:
        if format_name not in RUN_FORMATS:
            write_output(settings, model_path(target, name), render(report, format_name, extensions))
    for format_name in plan.directory_formats:
        if format_name not in RUN_FORMATS and plan.directory is not None:
            suffix = extensions.report_formats[format_name].suffix
            stem = f"report.{name}" if several else "report"
            write_output(settings, plan.directory / f"{stem}{suffix}", render(report, format_name, extensions))
    if not settings.quiet or not plan.terminal:
        from defcheck.report.checks import checks_lines

        lines = checks_lines(report.data, quiet=settings.quiet)
        if lines and (plan.terminal or "github" not in plan.stdout):  # annotations already carry each finding
            where = console if plan.terminal else stderr_console()
            for text, style in lines:
                where.print(printable(text), style=style, markup=False)


def show_run(settings: Settings, plan: OutputPlan, reports: Sequence[Any]) -> None:
    """Print and write the documents that hold every model of the run (github, junit, sarif)."""
    for format_name, target in plan.files:
        if format_name in RUN_FORMATS:
            write_output(settings, target, render_run(reports, format_name))
    for format_name in plan.directory_formats:
        if format_name in RUN_FORMATS and plan.directory is not None:
            target = plan.directory / f"report{RUN_SUFFIXES[format_name]}"
            write_output(settings, target, render_run(reports, format_name))
    for format_name in plan.stdout:
        if format_name in RUN_FORMATS:
            click.echo(render_run(reports, format_name), nl=False)


def quiet_lines(data: Mapping[str, Any], name: str) -> list[tuple[str, str]]:
    """With ``-q``: one line for the model, then only what failed (expectations, baseline differences)."""
    from defcheck.report.checks import checks_lines, errored_definitions

    concepts = data.get("concepts", {})
    definitions = sum(len(body.get("definitions", {})) for body in concepts.values())
    errors = len(errored_definitions(data))
    line = f"{name}: {_count(len(concepts), 'concept')}, {_count(definitions, 'definition')}, {_count(errors, 'error')}"
    checks = data.get("checks")
    style = "red" if errors else "green"
    if checks is not None:
        counts = checks["counts"]
        if checks["expectations"]:
            total = counts["passed"] + counts["failed"] + counts["error"] + counts["skipped"]
            line += f"; expectations {counts['passed']}/{total} passed"
        if checks.get("baseline") is not None:
            line += f"; {counts['differences']} difference(s) from the baseline {checks['baseline']['file']}"
        style = {"passed": "green", "failed": "red", "error": "red"}[checks["status"]]
    failures = [(text, s) for text, s in checks_lines(data, quiet=True) if text.startswith("  ")]
    return [(line, style), *failures]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
