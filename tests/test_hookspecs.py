"""Every hook and every declaration type is documented, in the code and in docs/writing-plugins.md."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from defcheck import plugin
from defcheck.hooks import declarations
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


# the typed signatures of the functions declarations hold (defcheck.plugin's Protocols)

PROTOCOLS = {
    name: value
    for name, value in vars(declarations).items()
    if isinstance(value, type) and getattr(value, "_is_protocol", False) and value.__module__ == declarations.__name__
}


def protocol_signature(protocol: type) -> str:
    """``(context: CheckContext, /) -> Scores | Tensor`` from the protocol's ``__call__`` as written."""
    call = protocol.__call__  # type: ignore[operator]
    parameters = list(inspect.signature(call).parameters.values())[1:]
    assert all(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in parameters), f"{protocol.__name__}: positional"
    text = ", ".join(f"{p.name}: {p.annotation}" for p in parameters)
    return f"({text}, /) -> {call.__annotations__['return']}"


def test_every_callable_field_of_a_declaration_is_a_protocol():
    assert len(PROTOCOLS) >= 10
    for declared in EXTENSION_KINDS.values():
        for field in dataclasses.fields(declared):
            annotation = str(field.type)
            assert "Callable[...," not in annotation, f"{declared.__name__}.{field.name} is untyped: {annotation}"
    typed = {
        str(field.type).removesuffix(" | None")
        for kind in (*EXTENSION_KINDS.values(), declarations.Streamed)
        for field in dataclasses.fields(kind)
    }
    assert set(PROTOCOLS) <= typed, set(PROTOCOLS) - typed


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_protocol_signature_is_documented(name):
    text = DOC.read_text(encoding="utf-8").replace("\\|", "|")
    row = f"`{name}` | `{protocol_signature(PROTOCOLS[name])}`"
    assert row in text, f"docs/writing-plugins.md lacks the row {row}"
    assert inspect.getdoc(PROTOCOLS[name]), f"{name} has no docstring"


def test_the_guide_names_the_contract_and_no_stale_promise():
    text = DOC.read_text(encoding="utf-8")
    assert "will be documented here" not in text
    assert "`render(report) -> str \\| bytes`" in text
    for name in plugin.__all__:
        assert f"`{name}`" in text, f"docs/writing-plugins.md does not mention defcheck.plugin's `{name}`"
