"""Every hook and every declaration type is documented, in the code and in docs/writing-plugins.md."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from defcheck.hooks import specs as hookspecs
from defcheck.hooks.declarations import EXTENSION_KINDS
from defcheck.hooks.manager import HOOK_NAMES

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
SPECS = {
    name: function
    for name, function in vars(hookspecs).items()
    if inspect.isfunction(function) and hasattr(function, f"{hookspecs.PROJECT}_spec")
}


def signature(function) -> str:
    """``name(args) -> return`` as written in the source (annotations are strings under ``from __future__``)."""
    parameters = ", ".join(str(p).replace("'", "") for p in inspect.signature(function).parameters.values())
    returns = function.__annotations__.get("return")
    return f"{function.__name__}({parameters})" + (f" -> {returns}" if returns else "")


def test_there_are_hookspecs_and_the_manager_knows_them_all():
    assert len(SPECS) >= 5
    assert set(SPECS) == set(HOOK_NAMES)
    assert set(SPECS) == {f"defcheck_{kind}" for kind in EXTENSION_KINDS}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_has_a_docstring(name):
    doc = inspect.getdoc(SPECS[name])
    assert doc, f"{name} has no docstring"
    assert doc.split("\n")[0].endswith("."), f"the first line of {name}'s docstring is not a sentence"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_is_documented_with_its_signature(name):
    text = DOC.read_text(encoding="utf-8")
    assert f"`{signature(SPECS[name])}`" in text, f"docs/writing-plugins.md lacks `{signature(SPECS[name])}`"


def section(text: str, heading: str) -> str:
    match = re.search(rf"^### `{heading}`.*?$(.*?)(?=^#{{1,3}} |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/writing-plugins.md has no section ### `{heading}`"
    return match.group(1)


@pytest.mark.parametrize(
    "declared", sorted(EXTENSION_KINDS.values(), key=lambda t: t.__name__), ids=lambda t: t.__name__
)
def test_declaration_type_fields_are_documented(declared):
    body = section(DOC.read_text(encoding="utf-8"), declared.__name__)
    for field in dataclasses.fields(declared):
        assert f"`{field.name}`" in body, f"the {declared.__name__} section does not document `{field.name}`"
