"""The ``checks`` block of a report: expectations, baseline differences, errored definitions.

``defcheck run`` attaches it to each model's report when the run had expectations (a project file) or a
baseline. Every CI output (JUnit, SARIF, GitHub annotations, the Markdown section, the terminal summary)
renders from it and from the report itself, so a saved JSON report carries everything they show:

```json
"checks": {
  "model": "toy-induction", "project": "defcheck.yaml", "status": "failed",
  "counts": {"passed": 3, "failed": 1, "error": 0, "skipped": 0, "differences": 2, "errored": 0},
  "expectations": [EXPECTATION_RESULT, ...],
  "baseline": {"file": "baseline.json", "tolerance": 0.001, "differences": [DIFFERENCE, ...]}
}
```

:func:`problems` flattens a report into the findings CI systems show, each located: at the definition's (or
concept's) file and line, or, for built-in concept files outside the repository, at the expectation's line
in the project file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from defcheck.report.escaping import md_code, md_text

BUILTIN_PREFIX = "<builtin>/"
RULES: dict[str, tuple[str, str]] = {
    # rule id: (short description, help)
    "definition/error": (
        "A checker raised while evaluating a definition",
        "The definition could not be evaluated: a checker (a plugin) raised. Fix the plugin or the criterion's "
        "parameters; the other definitions were still evaluated.",
    ),
    "expectation/membership": (
        "A unit is not where an expectation puts it",
        "An expectation of the project file (unit: ... with concept/in or definition/member) does not hold.",
    ),
    "expectation/metric": (
        "An overlap metric is outside an expectation's range",
        "An expectation of the project file (metric: jaccard/precision/recall/spearman) does not hold.",
    ),
    "expectation/count": (
        "A count of units is outside an expectation's range",
        "An expectation of the project file (count: ...) does not hold.",
    ),
    "baseline/run": (
        "The run's settings differ from the baseline's",
        "The seed or the model's shape differs from the stored baseline; other differences may follow from it.",
    ),
    "baseline/concept": (
        "A concept was added or removed since the baseline",
        "Write a new baseline with --write-baseline when the change is intended.",
    ),
    "baseline/definition": (
        "A definition was added, removed, rewritten, or changed status since the baseline",
        "Write a new baseline with --write-baseline when the change is intended.",
    ),
    "baseline/members": (
        "A definition's members differ from the baseline",
        "Units joined or left the definition. Write a new baseline with --write-baseline when intended.",
    ),
    "baseline/scores": (
        "A criterion's scores moved beyond the tolerance",
        "Scores moved by more than --tolerance (absolute up to 1, relative above).",
    ),
    "baseline/overlap": (
        "A concept's overlap differs from the baseline",
        "Units moved between both / behavioral only / mechanistic only, or a metric moved beyond the tolerance.",
    ),
}


def build_checks(
    data: Mapping[str, Any],
    *,
    model: str,
    project: str | None,
    expectations: Sequence[Any],
    baseline: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``checks`` block for a report document ``data``.

    ``expectations`` are :class:`~defcheck.ci.expectations.ExpectationResult`; ``baseline`` is ``None`` or
    ``{"file": ..., "tolerance": ..., "differences": [Difference, ...]}``.
    """
    results = [e.to_dict() for e in expectations]
    block: dict[str, Any] = {
        "model": model,
        "project": project,
        "expectations": results,
        "baseline": None,
    }
    if baseline is not None:
        block["baseline"] = {
            "file": baseline["file"],
            "tolerance": baseline["tolerance"],
            "differences": [_located(d, data) for d in baseline["differences"]],
        }
        if baseline.get("ignored"):  # changes of memberships unstable across the probe seeds (--seeds)
            block["baseline"]["ignored"] = list(baseline["ignored"])
    errored = errored_definitions(data)
    counts = {status: sum(1 for r in results if r["status"] == status) for status in ("passed", "failed", "error")}
    counts["skipped"] = sum(1 for r in results if r["status"] == "skipped")
    counts["differences"] = len(block["baseline"]["differences"]) if block["baseline"] else 0
    counts["errored"] = len(errored)
    block["counts"] = counts
    block["status"] = (
        "error" if counts["error"] or errored else "failed" if counts["failed"] or counts["differences"] else "passed"
    )
    return block


def _located(difference: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    out = difference.to_dict() if hasattr(difference, "to_dict") else dict(difference)
    out["file"], out["line"] = location(data, out.get("concept"), out.get("definition"))
    return out


def errored_definitions(data: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(concept, definition, its document)`` for every definition whose status is ``errored``."""
    return [
        (concept, name, definition)
        for concept, body in data.get("concepts", {}).items()
        for name, definition in body.get("definitions", {}).items()
        if definition.get("status") == "errored"
    ]


def status(data: Mapping[str, Any]) -> str:
    """``passed``, ``failed`` or ``error`` for one report (``error`` when a definition errored)."""
    checks = data.get("checks")
    if checks is not None:
        return str(checks["status"])
    return "error" if errored_definitions(data) else "passed"


def location(data: Mapping[str, Any], concept: str | None, definition: str | None) -> tuple[str | None, int | None]:
    """The file and line of a definition (or of a concept) in a report document, or ``(None, None)``."""
    body = data.get("concepts", {}).get(concept or "")
    if body is None:
        return None, None
    if definition is not None and definition in body.get("definitions", {}):
        entry = body["definitions"][definition]
        return entry.get("file"), entry.get("line")
    return body.get("file"), body.get("line")


# --- findings for CI systems --------------------------------------------------------------------------------------


@dataclass
class Problem:
    """One finding as CI systems show it: a rule, a level, a message, and where it points."""

    rule: str
    level: str  # error | warning
    title: str
    message: str
    model: str
    file: str | None
    line: int | None
    related: list[tuple[str, str, int | None]] = field(default_factory=list)  # (what, file, line)
    key: str = ""

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.rule}\0{self.model}\0{self.key}".encode()).hexdigest()[:32]


def is_builtin(file: str | None) -> bool:
    return file is None or file.startswith(BUILTIN_PREFIX)


def problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every finding of one report: errored definitions, then failed or errored expectations, then baseline
    differences."""
    checks = data.get("checks") or {}
    model = str(checks.get("model") or data.get("model", {}).get("name") or "model")
    project = checks.get("project")
    out: list[Problem] = []
    for concept, name, definition in errored_definitions(data):
        file, line = definition.get("file"), definition.get("line")
        if is_builtin(file) and project:
            file, line = project, 1
        out.append(
            Problem(
                "definition/error",
                "error",
                f"{concept}.{name} errored",
                f"{concept}.{name} could not be evaluated: {definition.get('error')}",
                model,
                file,
                line,
                key=f"{concept}.{name}",
            )
        )
    for result in checks.get("expectations", []):
        if result["status"] not in ("failed", "error"):
            continue
        file, line = location(data, result["concept"], result["definition"])
        related: list[tuple[str, str, int | None]] = []
        if result.get("file"):
            if is_builtin(file):
                file, line = result["file"], result["line"]
            else:
                related.append(("the expectation", result["file"], result["line"]))
        verb = "failed" if result["status"] == "failed" else "could not be checked"
        out.append(
            Problem(
                result["rule"],
                "error",
                f"expectation {verb}: {result['description']}",
                f"Expectation {verb}: {result['description']}: {result['message']}",
                model,
                file,
                line,
                related,
                key=f"{result['index']}:{result['description']}",
            )
        )
    baseline = checks.get("baseline") or {}
    for difference in baseline.get("differences", []):
        file, line = difference.get("file"), difference.get("line")
        if is_builtin(file):
            file, line = baseline["file"], 1
        subject = difference.get("concept") or "run"
        if difference.get("definition"):
            subject += f".{difference['definition']}"
        out.append(
            Problem(
                difference["rule"],
                "warning",
                f"{subject} differs from the baseline",
                f"{subject} differs from the baseline {baseline['file']}: {difference['message']}",
                model,
                file,
                line,
                [("the baseline", baseline["file"], None)],
                key=f"{subject}:{difference['message']}",
            )
        )
    return out


# --- text and Markdown ---------------------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """User text in Markdown: a table cell or a paragraph (:func:`~defcheck.report.escaping.md_text`)."""
    return md_text(text)


def _code(text: Any, *, table: bool = False) -> str:
    """A name or a path in Markdown, as a code span (:func:`~defcheck.report.escaping.md_code`)."""
    return md_code(text, table=table)


def checks_lines(data: Mapping[str, Any], *, quiet: bool = False) -> list[tuple[str, str]]:
    """Plain-text lines (with a rich style each) of one report's checks, for the terminal."""
    checks = data.get("checks")
    lines: list[tuple[str, str]] = []
    if checks is None:
        return lines
    counts = checks["counts"]
    model = checks["model"]
    results = checks["expectations"]
    if results:
        lines.append(
            (
                f"expectations on {model}: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts['error']} error(s)" + (f", {counts['skipped']} skipped" if counts["skipped"] else ""),
                "bold",
            )
        )
        for result in results:
            if quiet and result["status"] in ("passed", "skipped"):
                continue
            style = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow"}[result["status"]]
            where = (
                f"{result['file']}:{result['line']}: " if result.get("file") and result["status"] != "passed" else ""
            )
            lines.append((f"  {result['status'].upper():7} {where}{result['description']}: {result['message']}", style))
    baseline = checks.get("baseline")
    if baseline is not None:
        differences = baseline["differences"]
        if not differences:
            lines.append((f"no differences from the baseline {baseline['file']} on {model}", "green"))
        else:
            lines.append((f"{len(differences)} difference(s) from the baseline {baseline['file']} on {model}:", "red"))
            for difference in differences:
                subject = difference.get("concept") or "run"
                if difference.get("definition"):
                    subject += f".{difference['definition']}"
                lines.append((f"  {difference['kind']:10} {subject}: {difference['message']}", "yellow"))
        for note in baseline.get("ignored") or []:
            lines.append((f"  ignored    {note}", "dim"))
    return lines


def checks_markdown(data: Mapping[str, Any]) -> str:
    """The Markdown section of one report's checks (put at the top of the Markdown report)."""
    checks = data.get("checks")
    if checks is None:
        return ""
    icon = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️"}
    lines = [f"## Checks: {_cell(checks['status'])}", ""]
    results = checks["expectations"]
    if results:
        counts = checks["counts"]
        lines += [
            f"{counts['passed']} of {len(results)} expectation(s) hold on {_cell(checks['model'])}"
            + (f" ({_cell(checks['project'])})" if checks.get("project") else "")
            + ".",
            "",
            "| | expectation | status | found | where |",
            "|---|---|---|---|---|",
        ]
        for result in results:
            where = f"{result['file']}:{result['line']}" if result.get("file") else ""
            lines.append(
                f"| {icon[result['status']]} | {_cell(result['description'])} | {_cell(result['status'])} | "
                f"{_cell(result['message'])} | {_cell(where)} |"
            )
        lines.append("")
    for concept, name, definition in errored_definitions(data):
        lines += [f"💥 {_code(f'{concept}.{name}')} errored: {_cell(definition.get('error'))}", ""]
    baseline = checks.get("baseline")
    if baseline is not None:
        differences = baseline["differences"]
        if not differences:
            lines += [
                f"No differences from the baseline {_code(baseline['file'])} (tolerance {baseline['tolerance']:g}).",
                "",
            ]
        else:
            lines += [
                f"{len(differences)} difference(s) from the baseline {_code(baseline['file'])} "
                f"(tolerance {baseline['tolerance']:g}):",
                "",
                "| kind | subject | change |",
                "|---|---|---|",
            ]
            for difference in differences:
                subject = difference.get("concept") or "run"
                if difference.get("definition"):
                    subject += f".{difference['definition']}"
                lines.append(
                    f"| {_cell(difference['kind'])} | {_code(subject, table=True)} | {_cell(difference['message'])} |"
                )
            lines.append("")
        ignored = baseline.get("ignored") or []
        if ignored:
            lines += ["Ignored (unstable across the probe seeds):", "", *[f"- {_cell(note)}" for note in ignored], ""]
    return "\n".join(lines) + "\n"
