"""docs/checkers.md is the generated reference of every built-in checker, and it is up to date."""

from __future__ import annotations

from pathlib import Path

from defcheck.hooks.manager import load_plugins
from defcheck.hooks.reference import checkers_markdown

DOC = Path(__file__).parents[1] / "docs" / "checkers.md"


def test_docs_checkers_md_is_up_to_date():
    expected = checkers_markdown(load_plugins())
    assert DOC.read_text(encoding="utf-8") == expected, "regenerate it: defcheck checkers --markdown > docs/checkers.md"


def test_every_builtin_checker_says_what_it_observes_its_formula_and_source():
    extensions = load_plugins()
    builtin = {info.name for info in extensions.plugins if info.builtin}
    for name, checker in extensions.checkers.items():
        if extensions.owner("checkers", name) not in builtin:
            continue
        assert checker.observes in ("behavior", "mechanism")
        assert checker.source, f"{name} has no source"
        assert checker.score.__doc__, f"{name}'s score function has no docstring (its formula)"
        for field_name, field in checker.params.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"
