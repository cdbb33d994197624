"""Ships the built-in concept files (``definitions/``) through the same hook a third party would use."""

from __future__ import annotations

from defcheck.plugin import ConceptFolder, hookimpl


@hookimpl
def defcheck_concept_folders() -> list[ConceptFolder]:
    return [ConceptFolder("defcheck_definitions", "The built-in concepts")]
