"""The kind lint: keeps behavioral and mechanistic definitions apart, which is the point of the tool.

A mechanistic definition must use at least one checker that observes ``mechanism``; a behavioral one that
uses a mechanism checker is probably mislabeled (a warning); a definition without a source is a warning.
"""

from __future__ import annotations

from defcheck.diagnostics import Diagnostic
from defcheck.hooks.manager import Extensions
from defcheck.language.concept_file import ConceptFile


def lint_kinds(file: ConceptFile, extensions: Extensions) -> list[Diagnostic]:
    """The kind and source diagnostics for every definition in a concept file."""
    out: list[Diagnostic] = []
    for name, definition in file.concept.definitions.items():
        path = ("definitions", name)
        checkers = [
            None
            if file.is_broken(*path, definition.combinator, index, "checker")
            else extensions.checkers.get(c.checker)
            for index, c in enumerate(definition.criteria)
        ]
        known = [checker for checker in checkers if checker is not None]
        all_known = bool(known) and len(known) == len(checkers)  # an unknown checker is reported on its own
        kind_known = not file.is_broken(*path, "kind")  # a refused kind was reported by the schema
        if (
            kind_known
            and definition.kind == "mechanistic"
            and all_known
            and not any(checker.observes == "mechanism" for checker in known)
        ):
            names = ", ".join(sorted({checker.name for checker in known}))
            out.append(
                file.diagnostic(
                    (*path, "kind"),
                    f"a mechanistic definition needs a checker that observes mechanism, but {names} "
                    "observe(s) only behavior; use kind: behavioral, or add a mechanism checker",
                    "kind-mismatch",
                )
            )
        if kind_known and definition.kind == "behavioral":
            for index, checker in enumerate(checkers):
                if checker is not None and checker.observes == "mechanism":
                    out.append(
                        file.diagnostic(
                            (*path, definition.combinator, index, "checker"),
                            f"a behavioral definition uses '{checker.name}', which observes mechanism "
                            "(weights or interventions); is this definition mechanistic?",
                            "kind-mixed",
                            "warning",
                        )
                    )
        if not definition.source and not file.is_broken(*path, "source"):
            out.append(
                file.diagnostic(
                    path,
                    "the definition has no source; say where it comes from (paper, section)",
                    "missing-source",
                    "warning",
                )
            )
    return out
