"""The registry: concepts checked against the plugins, references resolved, definitions ordered."""

from __future__ import annotations

from pathlib import Path

import pytest

from defcheck.diagnostics import DefcheckError
from defcheck.hooks.declarations import ConceptFolder
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry

GOOD = Path(__file__).parent / "fixtures" / "concepts" / "wide_head.yaml"


@pytest.fixture
def extensions():
    return load_plugins(modules=["fixture_plugin", "defcheck_plugins.unit_kinds"], entry_points=[])


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _concept(name: str, definitions: str) -> str:
    return f"concept: {name}\nsummary: {name} for the registry tests.\ndefinitions:\n{definitions}"


def _ratio(name: str, *targets: str) -> str:
    return (
        f"  {name}:\n    kind: mechanistic\n    source: tests\n    all:\n      - checker: head_norm_ratio\n"
        f"        with: [{', '.join(targets)}]\n        threshold: '> 1'\n"
    )


def _norm(name: str) -> str:
    return (
        f"  {name}:\n    kind: mechanistic\n    source: tests\n    all:\n      - checker: head_norm\n"
        "        threshold: '> 1'\n"
    )


def test_a_good_file_loads_clean(extensions):
    registry = load_registry([GOOD], extensions, include_builtin=False)
    assert registry.diagnostics == []
    assert list(registry.concepts) == ["wide_head"]
    assert registry.definition_ids() == ["wide_head.spreads_attention", "wide_head.large_output"]
    file, definition = registry.definition("wide_head.large_output")
    assert file.path == GOOD and definition.kind == "mechanistic"
    assert registry.order == ["wide_head.spreads_attention", "wide_head.large_output"]


def test_with_targets_come_first_within_a_file(tmp_path, extensions):
    # written in the opposite order to the one they must be evaluated in
    text = _concept("chain", _ratio("top", "middle", "base") + _ratio("middle", "base") + _norm("base"))
    registry = load_registry([_write(tmp_path, "chain.yaml", text)], extensions, include_builtin=False)
    assert registry.errors == []
    assert registry.order == ["chain.base", "chain.middle", "chain.top"]


def test_with_targets_come_first_across_files(tmp_path, extensions):
    # 'a_user' loads first (files are sorted) but refers to 'z_base' in another file
    _write(tmp_path, "a.yaml", _concept("a_user", _ratio("uses", "z_base.base", "a_user.own") + _norm("own")))
    _write(tmp_path, "z.yaml", _concept("z_base", _ratio("base", "root") + _norm("root")))
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    assert registry.errors == []
    order = registry.order
    assert sorted(order) == sorted(registry.definition_ids())
    assert order.index("z_base.root") < order.index("z_base.base") < order.index("a_user.uses")
    assert order.index("a_user.own") < order.index("a_user.uses")


def test_a_cycle_is_reported_once_and_self_references_are_cycles(tmp_path, extensions):
    text = _concept("loop", _ratio("a", "b") + _ratio("b", "c") + _ratio("c", "a") + _ratio("me", "me"))
    registry = load_registry([_write(tmp_path, "loop.yaml", text)], extensions, include_builtin=False)
    messages = sorted(d.message for d in registry.errors)
    assert messages == [
        "definitions refer to each other in a cycle: loop.a -> loop.b -> loop.c -> loop.a",
        "definitions refer to each other in a cycle: loop.me -> loop.me",
    ]
    assert {d.code for d in registry.errors} == {"reference-cycle"}
    assert sorted(registry.order) == sorted(registry.definition_ids())  # every definition is still listed


def test_a_dangling_reference_suggests_the_nearest_definition(tmp_path, extensions):
    _write(tmp_path, "base.yaml", _concept("previous_token", _norm("attends_previous")))
    _write(tmp_path, "user.yaml", _concept("user", _ratio("uses", "previous_token.attends_previus")))
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    [error] = registry.errors
    assert error.code == "dangling-reference" and error.field == "definitions.uses.all[0].with[0]"
    assert error.message == (
        "'previous_token.attends_previus' names no loaded definition; did you mean 'previous_token.attends_previous'?"
    )
    assert registry.order == ["previous_token.attends_previous", "user.uses"]


def test_a_duplicate_concept_keeps_the_first_file(tmp_path, extensions):
    _write(tmp_path, "a.yaml", _concept("same", _norm("first")))
    _write(tmp_path, "b.yaml", _concept("same", _norm("second")))
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    [error] = registry.errors
    assert error.code == "duplicate-concept" and error.file.endswith("b.yaml")
    assert registry.definition_ids() == ["same.first"]


def test_an_unknown_unit_is_reported_once_not_again_for_each_checker(tmp_path, extensions):
    text = _concept("odd", _norm("one") + _norm("two")).replace("summary:", "unit: attention_heads\nsummary:")
    registry = load_registry([_write(tmp_path, "odd.yaml", text)], extensions, include_builtin=False)
    assert [d.code for d in registry.errors] == ["unknown-unit"]


def test_semantic_errors_from_several_definitions_are_all_reported(tmp_path, extensions):
    definitions = (
        "  one:\n    kind: mechanistic\n    source: s\n    all:\n      - checker: head_nrom\n        threshold: '> 1'\n"
        "  two:\n    kind: behavioral\n    source: s\n    all:\n      - checker: attention_entropy\n"
        "        probe: {name: fixture_tokens, n: 0}\n        threshold: '> 1'\n"
        "  three:\n    kind: mechanistic\n    source: s\n    all:\n      - checker: head_norm_ratio\n"
        "        threshold: '> 1'\n"
    )
    registry = load_registry(
        [_write(tmp_path, "many.yaml", _concept("many", definitions))], extensions, include_builtin=False
    )
    assert [(d.line, d.code) for d in registry.errors] == [(8, "unknown-checker"), (15, "param"), (21, "missing-with")]
    assert registry.errors[1].field == "definitions.two.all[0].probe.n"
    assert registry.errors[1].message == "Input should be greater than or equal to 1; got int 0"


def test_a_probe_shorthand_and_a_list_of_with_targets_are_accepted(tmp_path, extensions):
    text = _concept(
        "short",
        "  seen:\n    kind: behavioral\n    source: s\n    all:\n      - checker: attention_entropy\n"
        "        probe: fixture_tokens\n        threshold: {top_k: 2}\n" + _ratio("built", "seen", "short.seen"),
    )
    registry = load_registry([_write(tmp_path, "short.yaml", text)], extensions, include_builtin=False)
    assert registry.diagnostics == []
    criterion = registry.definition("short.built")[1].criteria[0]
    assert criterion.with_ == ["seen", "short.seen"]
    assert registry.order == ["short.seen", "short.built"]


def test_a_missing_path_is_an_input_error(tmp_path, extensions):
    with pytest.raises(DefcheckError, match="no such file or folder"):
        load_registry([tmp_path / "absent.yaml"], extensions, include_builtin=False)


def test_plugin_folders_load_as_builtin_and_are_not_loaded_twice(tmp_path, extensions):
    shipped = tmp_path / "shipped"
    _write(shipped, "wide.yaml", GOOD.read_text(encoding="utf-8"))
    extensions.concept_folders.append(ConceptFolder(shipped))
    # the user passes the same folder (e.g. the repository's own definitions/): it is not a duplicate
    registry = load_registry([shipped], extensions)
    assert registry.diagnostics == []
    assert [file.label for file in registry.files.values()] == ["<builtin>/wide.yaml"]
    # without the built-in ones, the same file loads under its own path
    registry = load_registry([shipped], extensions, include_builtin=False)
    assert [file.label for file in registry.files.values()] != ["<builtin>/wide.yaml"]
    assert list(registry.concepts) == ["wide_head"]


def test_a_user_file_may_refer_to_a_builtin_definition(tmp_path, extensions):
    shipped = tmp_path / "shipped"
    _write(shipped, "wide.yaml", GOOD.read_text(encoding="utf-8"))
    extensions.concept_folders.append(ConceptFolder(shipped))
    user = _write(tmp_path / "mine", "mine.yaml", _concept("mine", _ratio("uses", "wide_head.large_output")))
    registry = load_registry([user], extensions)
    assert registry.errors == []
    assert registry.order.index("wide_head.large_output") < registry.order.index("mine.uses")
    assert load_registry([user], extensions, include_builtin=False).errors[0].code == "dangling-reference"
