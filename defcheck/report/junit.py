"""JUnit XML for CI systems (GitLab, Jenkins, Azure, GitHub test reporters): ``defcheck run --junit FILE``.

One ``<testsuite>`` per model, and in it one ``<testcase>`` per evaluated definition, one per expectation,
and one for the baseline comparison when there is a baseline:

- a definition whose checker raised is an ``<error>``; one that differs from the baseline is a
  ``<failure>``; one that does not apply to the model is ``<skipped>``; otherwise it passes, and its members
  are in ``<system-out>`` (with ``--seeds K`` unstable ones marked ``~``, and with it or ``--bootstrap B`` the
  stability and the margins nearest the threshold);
- an expectation that does not hold is a ``<failure>``; one that cannot be decided is an ``<error>``; one
  whose concept was not evaluated is ``<skipped>``;
- the baseline test case fails when anything differs, and lists every difference.

``type`` attributes carry the rule ids of the SARIF output (``expectation/metric``, ``baseline/members``...).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from defcheck.report.checks import errored_definitions
from defcheck.report.escaping import xml_document, xml_text
from defcheck.report.seeds import margin_lines, marked_members, stability_line


def _definition_seconds(timings: Mapping[str, float], definition_id: str) -> float | None:
    prefix = f"{definition_id} "
    found = [seconds for step, seconds in timings.items() if step.startswith(prefix)]
    return sum(found) if found else None


def _case(suite: ET.Element, classname: str, name: str, file: str | None = None, line: int | None = None) -> ET.Element:
    case = ET.SubElement(suite, "testcase", {"classname": xml_text(classname), "name": xml_text(name)})
    if file:
        case.set("file", xml_text(file))
    if line:
        case.set("line", str(line))
    return case


def _outcome(case: ET.Element, tag: str, message: str, kind: str, body: str | None = None) -> None:
    element = ET.SubElement(case, tag, {"message": xml_text(message)})
    if tag != "skipped":
        element.set("type", xml_text(kind))
    element.text = xml_text(body if body is not None else message)


def render_junit(reports: Sequence[Any]) -> str:
    """The JUnit XML document for the reports of one run (one per model)."""
    root = ET.Element("testsuites", {"name": "defcheck"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for report in reports:
        data = report.data
        timings = getattr(report, "timings", {}) or {}
        checks = data.get("checks") or {}
        model = str(checks.get("model") or data["model"].get("name") or "model")
        suite = ET.SubElement(root, "testsuite", {"name": xml_text(f"defcheck {model}")})
        properties = ET.SubElement(suite, "properties")
        for key, value in (
            ("model", data["model"].get("reference") or data["model"].get("name")),
            ("seed", data.get("seed")),
            ("report_version", data.get("report_version")),
            ("project", checks.get("project")),
        ):
            if value is not None:
                ET.SubElement(properties, "property", {"name": key, "value": xml_text(value)})
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        suite_time = 0.0
        baseline = checks.get("baseline")
        differences = (baseline or {}).get("differences", [])
        errored = {(c, n) for c, n, _ in errored_definitions(data)}
        for concept, body in data["concepts"].items():
            for name, definition in body["definitions"].items():
                definition_id = f"{concept}.{name}"
                case = _case(
                    suite,
                    f"{model}.definitions.{concept}",
                    definition_id,
                    definition.get("file"),
                    definition.get("line"),
                )
                seconds = _definition_seconds(timings, definition_id)
                if seconds is not None:
                    case.set("time", f"{seconds:.3f}")
                    suite_time += seconds
                counts["tests"] += 1
                own = [d for d in differences if d.get("concept") == concept and d.get("definition") == name]
                if (concept, name) in errored:
                    _outcome(case, "error", f"{definition_id} errored: {definition.get('error')}", "definition/error")
                    counts["errors"] += 1
                elif own:
                    text = "\n".join(f"{d['kind']}: {d['message']}" for d in own)
                    _outcome(
                        case,
                        "failure",
                        f"{definition_id} differs from the baseline: {own[0]['message']}",
                        own[0]["rule"],
                        text,
                    )
                    counts["failures"] += 1
                elif definition.get("status") == "not_applicable":
                    _outcome(case, "skipped", f"not applicable: {definition.get('not_applicable')}", "")
                    counts["skipped"] += 1
                else:
                    members = marked_members(definition)  # unstable ones marked ~ (--seeds K)
                    noise = [line for line in (stability_line(definition), *margin_lines(definition)) if line]
                    out = ET.SubElement(case, "system-out")
                    out.text = xml_text(
                        f"{definition.get('kind')}: {len(members)} member(s)"
                        + (f": {', '.join(members)}" if members else "")
                        + "".join(f"\n{line}" for line in noise)
                    )
        for result in checks.get("expectations", []):
            case = _case(suite, f"{model}.expectations", result["description"], result.get("file"), result.get("line"))
            counts["tests"] += 1
            status = result["status"]
            if status == "failed":
                _outcome(case, "failure", f"{result['description']}: {result['message']}", result["rule"])
                counts["failures"] += 1
            elif status == "error":
                _outcome(case, "error", f"{result['description']}: {result['message']}", result["rule"])
                counts["errors"] += 1
            elif status == "skipped":
                _outcome(case, "skipped", result["message"], "")
                counts["skipped"] += 1
            else:
                out = ET.SubElement(case, "system-out")
                out.text = xml_text(result["message"])
        if baseline is not None:
            case = _case(suite, f"{model}.baseline", f"matches the baseline {baseline['file']}", baseline["file"])
            counts["tests"] += 1
            if differences:
                text = "\n".join(
                    f"{d['kind']}: {d.get('concept') or 'run'}{'.' + d['definition'] if d.get('definition') else ''}: "
                    f"{d['message']}"
                    for d in differences
                )
                _outcome(
                    case,
                    "failure",
                    f"{len(differences)} difference(s) from the baseline {baseline['file']}",
                    "baseline",
                    text,
                )
                counts["failures"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        if suite_time:
            suite.set("time", f"{suite_time:.3f}")
            total_time += suite_time
    for key, value in totals.items():
        root.set(key, str(value))
    if total_time:
        root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml_document(ET.tostring(root, encoding="unicode")) + "\n"
