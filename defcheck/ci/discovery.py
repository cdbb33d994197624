"""Finding the project file (``--config``, or the nearest ``defcheck.yaml`` up to the repository's root), and
telling a concept file from the other YAML files a pre-commit hook hands ``validate``."""

from __future__ import annotations

import re
from pathlib import Path

from defcheck.ci.project_schema import PROJECT_FILE_NAMES
from defcheck.diagnostics import DefcheckError
from defcheck.files import open_regular_file


def find_project(start: Path | None = None) -> Path | None:
    """The nearest ``defcheck.yaml`` (or ``.yml``) in ``start`` or above it, up to the repository's root."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in PROJECT_FILE_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        if (folder / ".git").exists():
            return None
    return None


def is_project_file(path: Path) -> bool:
    return path.name in PROJECT_FILE_NAMES


_MENTIONS_CONCEPT = re.compile(r"\bconcept\s*:")


def looks_like_concept_file(path: Path) -> bool:
    """Whether a YAML file given by name is meant as a concept file (else ``validate`` skips it).

    ``defcheck validate`` runs as a pre-commit hook on every changed ``*.yaml``, so it is handed workflow
    files, compose files, OpenAPI specs and the like. A file counts as a concept file when

    - its YAML has a top-level ``concept:`` key (or is a list of mappings with one), or a ``definitions:``
      mapping whose entries have ``kind``, ``all`` or ``any`` (a concept file with its ``concept:`` misspelled);
    - or it is empty, or not YAML that parses, and is empty or mentions ``concept:`` (even in a comment).

    Anything else is skipped. A file that cannot be read counts, so that its problem is reported.
    """
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    from defcheck.language.yaml_source import compose_documents

    try:  # a regular file only (a FIFO would block): one that is not counts, and read_yaml says why
        with open_regular_file(path) as handle:
            raw = handle.read(1_000_000)
    except (DefcheckError, OSError):
        return True
    text = raw.decode("utf-8-sig", errors="replace")
    if not text.strip() or b"\x00" in raw:
        return True

    def keys(node: object) -> dict[str, object]:
        if not isinstance(node, MappingNode):
            return {}
        return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode)}

    try:
        documents = compose_documents(text)  # nesting bounded: a deep file is refused, not a RecursionError
    except yaml.YAMLError:
        return bool(_MENTIONS_CONCEPT.search(text))
    if not documents:
        return bool(_MENTIONS_CONCEPT.search(text)) or not text.strip()
    for document in documents:
        top = keys(document)
        if "concept" in top:
            return True
        if isinstance(document, SequenceNode) and any("concept" in keys(item) for item in document.value):
            return True
        entries = keys(top.get("definitions"))
        if any({"kind", "all", "any"} & set(keys(entry)) for entry in entries.values()):
            return True
    return False


def resolve_project(config: Path | None, no_config: bool) -> Path | None:
    """The project file to use: ``--config``, else the nearest one (unless ``--no-config``)."""
    if config is not None:
        if not config.exists():
            raise DefcheckError(f"the project file {config} does not exist")
        if config.is_dir():
            for name in PROJECT_FILE_NAMES:
                if (config / name).is_file():
                    return config / name
            raise DefcheckError(f"{config} is a folder without a defcheck.yaml")
        return config
    if no_config:
        return None
    return find_project()
