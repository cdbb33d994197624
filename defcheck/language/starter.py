"""The commented starter concept file written by ``defcheck new``."""

from __future__ import annotations

import re

import yaml

from defcheck.diagnostics import DefcheckError
from defcheck.language.schema import NAME_PATTERN

STARTER = """\
# yaml-language-server: $schema={schema}
# A concept: one category of units, with a behavioral and a mechanistic way to decide membership.
# Check it with `defcheck validate {file}`, then `defcheck run --definitions {file}`.
concept: {concept}
unit: {unit}                # attention_head, mlp_neuron, layer or model
summary: >-
  One sentence on what a {title} is.
references:
  - Author et al. YEAR, Title of the paper

{definitions}"""


HEAD_DEFINITIONS = """\
definitions:
  # Behavioral: decided from what the unit does on chosen inputs (attention patterns, logits).
  attends_previous:
    kind: behavioral
    source: Author et al. YEAR, section
    summary: Attends mostly to the previous token on random tokens.
    all:
      - checker: attention_pattern
        params: {{pattern: previous_token}}
        probe: {{name: random_tokens, length: 32}}
        threshold: ">= 0.4"   # a comparison, or a rank rule such as {{top_k: 3}}

  # Mechanistic: decided from how the unit is built (weights, circuits, composition, ablation).
  copies_tokens:
    kind: mechanistic
    source: Author et al. YEAR, section
    summary: Its OV circuit copies tokens (positive eigenvalues).
    all:
      - checker: ov_eigenvalue_copying
        threshold: ">= 0.5"
"""

NEURON_DEFINITIONS = """\
definitions:
  # Behavioral: decided from what the unit does on chosen inputs (activations on a probe).
  fires_on_one_token:
    kind: behavioral
    source: Author et al. YEAR, section
    summary: On random tokens, more than half of its response is to one token.
    all:
      - checker: token_selectivity
        params: {{measure: share}}
        probe: {{name: random_tokens, n: 256, length: 32}}
        threshold: ">= 0.5"   # a comparison, or a rank rule such as {{top_k: 3}}

  # Mechanistic: decided from how the unit is built (weights, circuits, ablation).
  reads_one_token:
    kind: mechanistic
    source: Author et al. YEAR, section
    summary: Its input weights read one token's embedding.
    all:
      - checker: embedding_read
        threshold: ">= 0.5"
"""

# The example definitions by unit kind: the built-in checkers of that kind. Kinds without built-in checkers
# (layer, model, a plugin's) get the head example; `defcheck validate` then names each checker to replace.
EXAMPLES = {"mlp_neuron": NEURON_DEFINITIONS}


def starter_file(name: str, unit: str = "attention_head", file: str = "", schema: str = "") -> str:
    """The text of a new concept file named ``name``."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise DefcheckError(
            f"'{name}' is not a concept name: use lowercase letters, digits and '_', starting with a letter"
        )
    return STARTER.format(
        name=name,
        concept=name if yaml.safe_load(name) == name else f'"{name}"',  # YAML reads null, yes, on... as non-strings
        unit=unit,
        title=name.replace("_", " "),
        file=file or f"{name}.yaml",
        schema=schema or "concept.schema.json",
        definitions=EXAMPLES.get(unit, HEAD_DEFINITIONS).format(),
    )
