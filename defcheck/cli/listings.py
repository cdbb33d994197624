"""The documented JSON shapes of ``defcheck list --json`` and ``defcheck checkers --json`` (the tables show
the same)."""

from __future__ import annotations

from typing import Any

from defcheck.hooks.manager import Extensions
from defcheck.language.registry import Registry


def list_payload(registry: Registry, extensions: Extensions) -> dict[str, Any]:
    """The documented JSON shape of ``defcheck list --json``."""
    concepts = []
    for name, file in registry.files.items():
        concept = file.concept
        definitions = []
        for def_name, definition in concept.definitions.items():
            criteria = []
            for criterion in definition.criteria:
                checker = extensions.checkers.get(criterion.checker)
                criteria.append(
                    {
                        "checker": criterion.checker,
                        "observes": checker.observes if checker else None,
                        "params": criterion.params,
                        "probe": criterion.probe.model_dump() if criterion.probe else None,
                        "threshold": criterion.threshold.to_json(),
                        "with": criterion.with_,
                    }
                )
            definitions.append(
                {
                    "id": f"{name}.{def_name}",
                    "kind": definition.kind,
                    "summary": definition.summary,
                    "source": definition.source,
                    "combine": definition.combinator,
                    "criteria": criteria,
                }
            )
        concepts.append(
            {
                "name": name,
                "unit": concept.unit,
                "summary": concept.summary,
                "references": concept.references,
                "file": file.label,
                "definitions": definitions,
            }
        )
    diagnostics = extensions.problems + registry.diagnostics
    return {"concepts": concepts, "diagnostics": [d.to_dict() for d in diagnostics]}


def checker_rows(extensions: Extensions) -> list[dict[str, Any]]:
    """The rows of ``defcheck checkers --json``, by name."""
    return [
        {
            "name": checker.name,
            "observes": checker.observes,
            "unit": checker.unit,
            "probe": checker.probe,
            "with": checker.relation,
            "params": sorted(checker.params.model_fields),
            "plugin": extensions.owner("checkers", checker.name),
            "summary": checker.summary,
            "source": checker.source,
        }
        for checker in sorted(extensions.checkers.values(), key=lambda c: c.name)
    ]
