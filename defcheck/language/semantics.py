"""The plugins' side of validation: units, checkers, parameters, probes and ``with:`` use in one concept file."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ValidationError

from defcheck.diagnostics import Diagnostic, did_you_mean
from defcheck.hooks.manager import Extensions
from defcheck.language.concept_file import ConceptFile, _message
from defcheck.language.schema import Criterion, Definition
from defcheck.language.yaml_source import FieldPath, format_field


def criteria_paths(definition_name: str, definition: Definition) -> Iterable[tuple[FieldPath, Criterion]]:
    """Each criterion of a definition with its field path in the file."""
    for index, criterion in enumerate(definition.criteria):
        yield ("definitions", definition_name, definition.combinator, index), criterion


def check_semantics(file: ConceptFile, extensions: Extensions) -> list[Diagnostic]:
    """Check names against the plugins: units, checkers, parameters, probes and ``with:`` use.

    Values the schema refused (``file.broken``, in an incomplete file) were reported already and are skipped.
    """
    out: list[Diagnostic] = []
    concept = file.concept
    kinds = sorted(extensions.unit_kinds)
    unit_broken = file.is_broken("unit")
    unit_known = not unit_broken and concept.unit in extensions.unit_kinds
    if not unit_known and not unit_broken:
        listing = (
            f"known: {', '.join(kinds)}" if kinds else "no unit kinds are registered; is the plugin 'units' installed?"
        )
        out.append(
            file.diagnostic(
                ("unit",),
                f"unknown unit kind '{concept.unit}'{did_you_mean(concept.unit, kinds)} ({listing})",
                "unknown-unit",
            )
        )
    for name, definition in concept.definitions.items():
        for path, criterion in criteria_paths(name, definition):
            if file.is_broken(*path, "checker"):
                continue  # the schema refused the criterion or its checker's name: nothing to check it against
            checker = extensions.checkers.get(criterion.checker)
            if checker is None:
                known = sorted(extensions.checkers)
                listing = f" (registered: {', '.join(known)})" if known else " (no checkers are registered)"
                out.append(
                    file.diagnostic(
                        (*path, "checker"),
                        f"unknown checker '{criterion.checker}'{did_you_mean(criterion.checker, known)}{listing}",
                        "unknown-checker",
                    )
                )
                continue
            if unit_known and concept.unit not in checker.units:  # an unknown unit is reported once, above
                out.append(
                    file.diagnostic(
                        (*path, "checker"),
                        f"the checker '{checker.name}' scores {' or '.join(checker.units)} units, but the concept "
                        f"'{concept.concept}' categorizes {concept.unit} units",
                        "unit-mismatch",
                    )
                )
            if not file.is_broken(*path, "params"):
                out += _validate_params(
                    file, (*path, "params"), checker.params, criterion.params, "checker", checker.name
                )
            if not file.is_broken(*path, "probe"):
                out += _check_probe(file, path, criterion, checker.name, checker.probe, extensions)
            if file.is_broken(*path, "with"):
                continue
            if checker.relation == "required" and not criterion.with_:
                out.append(
                    file.diagnostic(
                        path,
                        f"the checker '{checker.name}' needs 'with:', the definition(s) whose members it "
                        "relates to (e.g. with: previous_token_head.attends_previous)",
                        "missing-with",
                    )
                )
            if checker.relation == "none" and criterion.with_:
                out.append(
                    file.diagnostic((*path, "with"), f"the checker '{checker.name}' takes no 'with:'", "unused-with")
                )
    return out


def _check_probe(
    file: ConceptFile, path: FieldPath, criterion: Criterion, checker: str, need: str, extensions: Extensions
) -> list[Diagnostic]:
    if criterion.probe is None:
        if need == "required":
            listing = ", ".join(sorted(extensions.probes)) or "none registered"
            return [
                file.diagnostic(
                    path,
                    f"the checker '{checker}' needs a 'probe:' (inputs to observe; probes: {listing})",
                    "missing-probe",
                )
            ]
        return []
    if need == "none":
        return [
            file.diagnostic(
                (*path, "probe"),
                f"the checker '{checker}' reads weights only and takes no 'probe:'; remove it",
                "unused-probe",
            )
        ]
    probe = extensions.probes.get(criterion.probe.name)
    if probe is None:
        known = sorted(extensions.probes)
        return [
            file.diagnostic(
                (*path, "probe", "name"),
                f"unknown probe '{criterion.probe.name}'{did_you_mean(criterion.probe.name, known)} "
                f"(registered: {', '.join(known) or 'none'})",
                "unknown-probe",
            )
        ]
    return _validate_params(file, (*path, "probe"), probe.params, criterion.probe.params, "probe", probe.name)


def _validate_params(
    file: ConceptFile, path: FieldPath, model: type[BaseModel], values: dict, what: str, name: str
) -> list[Diagnostic]:
    try:
        model.model_validate(values)
    except ValidationError as error:
        out = []
        allowed = sorted(model.model_fields)
        for entry in error.errors():
            loc = (*path, *entry["loc"])
            if entry["type"] == "extra_forbidden":
                key = str(entry["loc"][-1])
                line, column = file.position(*loc, key=True)
                message = (
                    f"the {what} '{name}' has no parameter '{key}'{did_you_mean(key, allowed)} "
                    f"(parameters: {', '.join(allowed) or 'none'})"
                )
                out.append(Diagnostic(file.label, line, column, format_field(loc), message, code="unknown-param"))
            elif entry["type"] == "missing":
                out.append(file.diagnostic(loc, f"the {what} '{name}' needs the parameter '{loc[-1]}'", "param"))
            else:
                out.append(file.diagnostic(loc, _message(entry["type"], entry, entry.get("input")), "param"))
        return out
    return []
