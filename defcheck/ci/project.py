"""The project file, ``defcheck.yaml``: which models to check, which definitions, and what to expect.

It is found by walking up from the working directory (stopping at the repository's root, the first folder
with a ``.git``), or given with ``--config``. It is read with the same safe YAML reader as concept files, and
every schema error is a located :class:`~defcheck.diagnostics.Diagnostic` (``defcheck.yaml:12:7: field:
message``). References to concepts and definitions are checked against the loaded registry before anything
runs (:func:`check_project`).

```yaml
models:
  - builtin:toy-induction
  - {name: small, ref: checkpoints/small.pt, config: checkpoints/small.json}
definitions: [definitions]
expectations:
  - {unit: "1.4", concept: induction_head, in: both}
  - {concept: induction_head, metric: jaccard, threshold: ">= 0.5"}
  - {concept: previous_token_head, in: mechanistic_only, count: 0}
  - {definition: induction_head.k_composition, count: {min: 1, max: 3}}
```

Expectations come in three kinds, told apart by their keys: ``count`` (how many units a definition admits,
or how many are in an overlap category), ``metric`` (an overlap metric against a comparison) and ``unit``
(where units fall). docs/ci.md documents every key.

This module is the project file's public face; the work is done in ``project_schema`` (the models),
``project_file`` (reading), ``project_errors`` (located schema errors), ``project_checks`` (names) and
``discovery`` (finding the file). Every name stays importable from here.
"""

from __future__ import annotations

from defcheck.ci.discovery import find_project, is_project_file, looks_like_concept_file, resolve_project
from defcheck.ci.project_checks import check_names, check_project
from defcheck.ci.project_file import ProjectFile, load_project, model_name, read_project
from defcheck.ci.project_schema import (
    CATEGORIES,
    DEFAULT_TOLERANCE,
    DEFINITION_PATTERN,
    EXPECTATION_KEYS,
    EXPECTATION_MODELS,
    KIND_KEYS,
    METRICS,
    MODEL_NAME_PATTERN,
    PATTERN_HELP,
    PROJECT_FILE_NAMES,
    UNIT_PATTERN,
    AnyExpectation,
    Category,
    ConceptName,
    CountExpectation,
    CountRange,
    DefinitionRef,
    Expectation,
    MembershipExpectation,
    Metric,
    MetricExpectation,
    ModelSpec,
    Project,
    UnitAddress,
    describe,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_TOLERANCE",
    "DEFINITION_PATTERN",
    "EXPECTATION_KEYS",
    "EXPECTATION_MODELS",
    "KIND_KEYS",
    "METRICS",
    "MODEL_NAME_PATTERN",
    "PATTERN_HELP",
    "PROJECT_FILE_NAMES",
    "UNIT_PATTERN",
    "AnyExpectation",
    "Category",
    "ConceptName",
    "CountExpectation",
    "CountRange",
    "DefinitionRef",
    "Expectation",
    "MembershipExpectation",
    "Metric",
    "MetricExpectation",
    "ModelSpec",
    "Project",
    "ProjectFile",
    "UnitAddress",
    "check_names",
    "check_project",
    "describe",
    "find_project",
    "is_project_file",
    "load_project",
    "looks_like_concept_file",
    "model_name",
    "read_project",
    "resolve_project",
]
