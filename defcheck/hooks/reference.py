"""The reference of every registered checker (what it observes, its formula, parameters and source), rendered
from the declarations themselves so that docs/checkers.md cannot drift from the code."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from defcheck.hooks.declarations import Checker
from defcheck.hooks.manager import Extensions

INTRO = """\
# Checkers

Every checker scores **all units of a model at once** and declares what it observes: **behavior** (a unit's
attention and outputs on a probe's inputs) or **mechanism** (weights, circuits, composition, interventions).
The kind lint compares that with each definition's `kind`. A score is NaN ("undefined", with a reason) where
it is 0/0, and a checker that does not apply to a model (e.g. successor heads without ordinal tokens) says
"not applicable" instead of giving a number.

This page is generated from the checkers' declarations (`defcheck checkers --markdown`); a test fails when it
is stale. Parameters go under `params:` in a criterion; `probe:` and `with:` are required, optional or refused
as each checker says.

Each checker's **chance level** is what a null unit (one that does not do what the checker looks for) scores on
the same model, parameters and probe. Reports show it beside the threshold (`>= 0.4 (chance 0.0947)`; `-` where
the checker cannot say), and `defcheck run` warns when a threshold admits a unit that scores it.
"""


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    return f"`{value!r}`" if not isinstance(value, str) else f"`{value}`"


def _type(field: Any) -> str:
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    text = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None else None
    return (text or str(annotation)).replace("typing.", "").replace("|", "\\|")


def _chance(checker: Checker) -> str:
    """What a null unit scores: the chance function's docstring (one paragraph), or that it is not declared."""
    if checker.chance is None:
        return "not declared (reports show `-`)"
    doc = inspect.getdoc(checker.chance) or "declared (undocumented)"
    return " ".join(doc.split("\n\n")[0].split())


def checker_section(checker: Checker, plugin: str) -> str:
    """One checker's section: summary, observes, needs, formula (the score function's docstring), parameters."""
    lines = [f"## `{checker.name}`", ""]
    if checker.summary:
        lines += [checker.summary + ".", ""]
    lines += [
        f"- observes: **{checker.observes}**; scores {' or '.join(f'`{unit}`' for unit in checker.units)} units",
        f"- probe: {checker.probe}; `with:` {checker.relation}",
        f"- source: {checker.source or 'not given'}",
        f"- plugin: `{plugin}`",
        f"- chance level: {_chance(checker)}",
        "",
    ]
    doc = inspect.getdoc(checker.score)
    if doc:
        lines += ["```text", doc, "```", ""]
    fields = checker.params.model_fields
    if fields:
        lines += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
        for name, field in fields.items():
            meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{name}` | {_type(field)} | {_default(field)} | {meaning} |")
        lines.append("")
    else:
        lines += ["No parameters.", ""]
    return "\n".join(lines)


def checkers_markdown(extensions: Extensions) -> str:
    """The whole reference page, checkers in name order."""
    sections = [INTRO]
    for name in sorted(extensions.checkers):
        sections.append(checker_section(extensions.checkers[name], extensions.owner("checkers", name)))
    return "\n".join(sections).rstrip() + "\n"
