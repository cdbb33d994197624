"""SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps): ``defcheck run --sarif FILE``.

One run of the tool ``defcheck`` with a fixed list of rules (``definition/error``, one rule per expectation
kind: ``expectation/membership``, ``expectation/metric``, ``expectation/count``, and one per kind of baseline
difference: ``baseline/run``, ``baseline/concept``, ``baseline/definition``, ``baseline/members``,
``baseline/scores``, ``baseline/overlap``). Rule ids never change meaning.

Each result points at the definition's (or concept's) YAML file and line. Paths are relative to the
repository's root (the nearest folder above the working directory with a ``.git``; else the working
directory), with ``uriBaseId`` ``%SRCROOT%``, as GitHub code scanning wants. Concept files that plugins ship
are not in the repository: a result about one points at the expectation's line in the project file (or the
baseline file), and where there is neither, at the file under ``uriBaseId`` ``DEFCHECK_BUILTIN``.
Failed expectations and errored definitions are ``error``s; baseline differences are ``warning``s. Each
result has a ``partialFingerprints`` entry that stays the same across runs while the finding does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from defcheck._version import __version__
from defcheck.report.checks import BUILTIN_PREFIX, RULES, Problem, problems
from defcheck.report.escaping import json_document

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
BUILTIN_BASE = "DEFCHECK_BUILTIN"


def repository_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) with a ``.git``, else ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def artifact(file: str, root: Path, cwd: Path) -> dict[str, str]:
    """The SARIF ``artifactLocation`` of a file as reports name it (relative to ``cwd``, or absolute)."""
    if file.startswith(BUILTIN_PREFIX):
        return {"uri": file[len(BUILTIN_PREFIX) :], "uriBaseId": BUILTIN_BASE}
    path = Path(file)
    absolute = (path if path.is_absolute() else cwd / path).resolve()
    try:
        return {"uri": absolute.relative_to(root).as_posix(), "uriBaseId": SRCROOT}
    except ValueError:
        return {"uri": absolute.as_uri()}


def _location(file: str, line: int | None, root: Path, cwd: Path, message: str | None = None) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": artifact(file, root, cwd),
            "region": {"startLine": max(1, int(line or 1))},
        }
    }
    if message:
        location["message"] = {"text": message}
    return location


def _rule(rule_id: str) -> dict[str, Any]:
    short, full = RULES[rule_id]
    kind, _, name = rule_id.partition("/")
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in f"{kind}-{name}".replace("/", "-").split("-")),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": full},
        "defaultConfiguration": {"level": "warning" if kind == "baseline" else "error"},
    }


def _result(problem: Problem, rule_index: int, root: Path, cwd: Path, several: bool) -> dict[str, Any]:
    text = f"[{problem.model}] {problem.message}" if several else problem.message
    result: dict[str, Any] = {
        "ruleId": problem.rule,
        "ruleIndex": rule_index,
        "level": problem.level,
        "message": {"text": text},
        "locations": [],
        "partialFingerprints": {"defcheckFinding/v1": problem.fingerprint},
        "properties": {"model": problem.model},
    }
    if problem.file:
        result["locations"].append(_location(problem.file, problem.line, root, cwd))
    related = [
        dict(_location(file, line, root, cwd, what), id=index + 1)
        for index, (what, file, line) in enumerate(problem.related)
        if file
    ]
    if related:
        result["relatedLocations"] = related
    return result


def render_sarif(reports: Sequence[Any], *, root: Path | None = None, cwd: Path | None = None) -> str:
    """The SARIF 2.1.0 log of one run's reports (one per model)."""
    cwd = (cwd or Path.cwd()).resolve()
    root = (root or repository_root(cwd)).resolve()
    rule_ids = list(RULES)
    found = [problem for report in reports for problem in problems(report.data)]
    several = len(reports) > 1
    results = [_result(p, rule_ids.index(p.rule), root, cwd, several) for p in found]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "defcheck",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_rule(rule_id) for rule_id in rule_ids],
            }
        },
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if any(p.file and p.file.startswith(BUILTIN_PREFIX) for p in found):
        run["originalUriBaseIds"] = {
            BUILTIN_BASE: {"description": {"text": "The concept files that installed defcheck plugins ship."}}
        }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json_document(json.dumps(log, indent=2, ensure_ascii=False)) + "\n"
