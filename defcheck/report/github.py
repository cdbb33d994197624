"""GitHub Actions annotations: ``defcheck run --format github``.

Prints workflow commands (``::error file=definitions/induction_head.yaml,line=12,title=...::message``) that
GitHub shows on the pull request's diff, then every finding again as plain lines for the log. GitHub shows at
most 10 error and 10 warning annotations per step, so at most :data:`MAX_ANNOTATIONS` are printed: when there
are more findings, the first ``MAX_ANNOTATIONS - 1`` (errored definitions first, then failed expectations,
then baseline differences) and one summary annotation that counts the rest. Paths are relative to the
repository's root, as for SARIF; a finding about a built-in concept file points at the project file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from defcheck.report.checks import BUILTIN_PREFIX, Problem, problems
from defcheck.report.escaping import plain_line, printable
from defcheck.report.sarif import repository_root

MAX_ANNOTATIONS = 10


def escape_data(text: str) -> str:
    """A workflow command's message: GitHub's escapes for ``%``, CR and LF; other control characters shown
    (:func:`~defcheck.report.escaping.printable`), so the message stays on its line and sends no ESC."""
    return printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    """A workflow command's property value: :func:`escape_data`, and ``:`` and ``,`` escaped too."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _path(file: str, root: Path, cwd: Path) -> str | None:
    if file.startswith(BUILTIN_PREFIX):
        return None
    path = Path(file)
    absolute = (path if path.is_absolute() else cwd / path).resolve()
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return None


def annotation(problem: Problem, root: Path, cwd: Path, several: bool) -> str:
    properties = []
    path = _path(problem.file, root, cwd) if problem.file else None
    if path is not None:
        properties.append(f"file={escape_property(path)}")
        if problem.line:
            properties.append(f"line={problem.line}")
    title = f"defcheck [{problem.model}]: {problem.title}" if several else f"defcheck: {problem.title}"
    properties.append(f"title={escape_property(title)}")
    return f"::{problem.level} {','.join(properties)}::{escape_data(problem.message)}"


def render_github(reports: Sequence[Any], *, root: Path | None = None, cwd: Path | None = None) -> str:
    """The annotations and the plain summary for one run's reports (one per model)."""
    cwd = (cwd or Path.cwd()).resolve()
    root = (root or repository_root(cwd)).resolve()
    found = [problem for report in reports for problem in problems(report.data)]
    order = {"definition": 0, "expectation": 1, "baseline": 2}
    found.sort(key=lambda p: order.get(p.rule.partition("/")[0], 3))
    several = len(reports) > 1
    shown = found if len(found) <= MAX_ANNOTATIONS else found[: MAX_ANNOTATIONS - 1]
    commands = [annotation(problem, root, cwd, several) for problem in shown]
    rest = found[len(shown) :]
    if rest:
        errors = sum(1 for p in rest if p.level == "error")
        level = "error" if errors else "warning"
        message = (
            f"{len(rest)} more finding(s) ({errors} error(s), {len(rest) - errors} warning(s)) are not annotated: "
            f"GitHub shows at most {MAX_ANNOTATIONS} annotations per step. See the log, the SARIF or the JUnit output."
        )
        commands.append(f"::{level} title={escape_property('defcheck: more findings')}::{escape_data(message)}")
    lines: list[str] = []  # plain lines for the log: user text in them is shown on one line (plain_line)
    for report in reports:
        checks = report.data.get("checks") or {}
        model = checks.get("model") or report.data["model"].get("name")
        counts = checks.get("counts")
        if counts is None:
            lines.append(f"defcheck {model}: no expectations or baseline")
            continue
        lines.append(
            f"defcheck {model}: {checks['status']}: {counts['passed']} expectation(s) passed, "
            f"{counts['failed']} failed, "
            f"{counts['error']} could not be checked; {counts['differences']} difference(s) from the baseline; "
            f"{counts['errored']} definition(s) errored"
        )
    for problem in found:
        where = f"{problem.file}:{problem.line}: " if problem.file else ""
        prefix = f"[{problem.model}] " if several else ""
        lines.append(f"{problem.level}: {prefix}{where}{problem.message}")
    return "".join(f"{line}\n" for line in [*commands, *map(plain_line, lines)])
