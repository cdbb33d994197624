"""Validation in one pass: a schema error does not hide the plugins' checks, and a concept named like a built-in
one is validated in full and says how to extend or replace the built-in (``builtin: extend | replace``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry


@pytest.fixture(scope="module")
def extensions():
    """The installed plugins (the built-in concepts among them) and the tests' fixture plugin."""
    return load_plugins(modules=["fixture_plugin"])


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _found(registry) -> list[tuple[int | None, int | None, str, str]]:
    return [(d.line, d.column, d.field, d.code) for d in registry.errors]


BAD_THRESHOLD_AND_NAMES = """\
concept: many_problems
summary: A bad threshold, an unknown parameter and an unknown checker in one file.
definitions:
  first:
    kind: behavioral
    source: tests
    all:
      - checker: attention_pattern
        params: {pattern: previous_token, agregate: min}
        probe: repeated_random_tokens
        threshold: ">= abc"
  second:
    kind: mechanistic
    source: tests
    all:
      - checker: head_nrom
        threshold: "> 1"
"""


def test_a_bad_threshold_does_not_hide_an_unknown_parameter_or_checker(tmp_path, extensions):
    path = _write(tmp_path, "many.yaml", BAD_THRESHOLD_AND_NAMES)
    registry = load_registry([path], extensions, include_builtin=False)
    assert _found(registry) == [
        (9, 43, "definitions.first.all[0].params.agregate", "unknown-param"),
        (11, 20, "definitions.first.all[0].threshold", "schema"),
        (16, 18, "definitions.second.all[0].checker", "unknown-checker"),
    ]
    assert "did you mean 'aggregate'?" in registry.errors[0].message
    assert "did you mean 'head_norm'?" in registry.errors[2].message
    assert registry.files == {}  # a file with schema errors is checked, not loaded


def test_the_cli_reports_them_all_once(tmp_path, cli):
    path = _write(tmp_path, "many.yaml", BAD_THRESHOLD_AND_NAMES)
    code, out, _ = cli("-p", "fixture_plugin", "validate", "--no-builtin", "--json", str(path))
    assert code == 1
    found = [(d["line"], d["code"]) for d in json.loads(out)["diagnostics"] if d["severity"] == "error"]
    assert found == [(9, "unknown-param"), (11, "schema"), (16, "unknown-checker")]


def test_a_bad_probe_reference_and_an_unknown_checker_are_both_reported(tmp_path, extensions):
    text = """\
concept: probe_problems
summary: s
definitions:
  one:
    kind: behavioral
    source: tests
    all:
      - checker: attention_entropy
        probe: {name: Fixture-Tokens}
        threshold: "> 1"
      - checker: attention_entropi
        probe: fixture_tokens
        threshold: "> 1"
"""
    registry = load_registry([_write(tmp_path, "probes.yaml", text)], extensions, include_builtin=False)
    assert _found(registry) == [
        (9, 23, "definitions.one.all[0].probe.name", "schema"),
        (11, 18, "definitions.one.all[1].checker", "unknown-checker"),
    ]  # and no 'missing-probe' for the probe the schema refused


def test_errors_pydantic_reports_only_once_the_fields_are_valid_come_out_too(tmp_path, extensions):
    text = """\
concept: Bad-Name
summary: s
definitions:
  both:
    kind: mechanistic
    source: tests
    all:
      - checker: head_norm
        threshold: 1
    any:
      - checker: head_norm
        threshold: "> 1"
  unknown:
    kind: mechanistc
    all:
      - checker: head_nrom
        threshold: "> 1"
"""
    registry = load_registry([_write(tmp_path, "late.yaml", text)], extensions, include_builtin=False)
    assert _found(registry) == [
        (1, 10, "concept", "schema"),
        (4, 3, "definitions.both", "schema"),
        (9, 20, "definitions.both.all[0].threshold", "schema"),
        (14, 11, "definitions.unknown.kind", "schema"),
        (16, 18, "definitions.unknown.all[0].checker", "unknown-checker"),
    ]
    assert "either 'all' or 'any', not both" in registry.errors[1].message
    # the refused kind is not linted again, and the missing source is still a warning
    assert [(d.field, d.code) for d in registry.warnings] == [("definitions.unknown", "missing-source")]


def test_a_definition_set_aside_is_not_reported_again_as_dangling(tmp_path, extensions):
    broken = """\
concept: base
summary: s
definitions:
  norm:
    kind: mechanistic
    source: tests
    all: []
  ratio:
    kind: mechanistic
    source: tests
    all:
      - checker: head_norm_ratio
        with: norm
        threshold: "> 1"
"""
    user = "concept: user\nsummary: s\ndefinitions:\n  uses:\n    kind: mechanistic\n    source: tests\n    all:\n"
    user += "      - checker: head_norm_ratio\n        with: [base.norm, base.ratio, base.nrom]\n"
    user += "        threshold: '> 1'\n"
    _write(tmp_path, "base.yaml", broken)
    _write(tmp_path, "user.yaml", user)
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    assert [(d.file.rpartition("/")[2], d.field, d.code) for d in registry.errors] == [
        ("base.yaml", "definitions.norm.all", "schema"),
        ("user.yaml", "definitions.uses.all[0].with[2]", "dangling-reference"),
    ]
    assert list(registry.files) == ["user"]


def test_a_clash_with_a_builtin_says_how_to_extend_or_replace_and_the_rest_is_validated(tmp_path, extensions):
    text = """\
concept: induction_head
summary: Mine.
definitions:
  mine:
    kind: behavioral
    source: tests
    all:
      - checker: atention_pattern
        probe: repeated_random_tokens
        threshold: ">= 0.4"
"""
    registry = load_registry([_write(tmp_path, "induction_head.yaml", text)], extensions)
    assert _found(registry) == [
        (1, 10, "concept", "builtin-clash"),
        (8, 18, "definitions.mine.all[0].checker", "unknown-checker"),
    ]
    message = registry.errors[0].message
    assert message.startswith("the concept 'induction_head' is built in (<builtin>/induction_head.yaml:2)")
    assert "'builtin: extend'" in message and "'builtin: replace'" in message
    assert "induction_head.mine" not in registry.definition_ids()  # the built-in concept stays as it is
    assert "induction_head.k_composition" in registry.definition_ids()


EXTENSION = """\
concept: induction_head
builtin: extend
summary: A stricter K-composition definition.
references: [Our lab notes]
definitions:
  strict_k_composition:
    kind: mechanistic
    source: tests
    all:
      - checker: composition
        params: {type: K, baseline: divide}
        with: previous_token_head.attends_previous
        threshold: ">= 2"
      - checker: ov_eigenvalue_copying
        threshold: ">= 0.5"
"""


def test_builtin_extend_adds_definitions_to_the_builtin_concept(tmp_path, extensions):
    path = _write(tmp_path, "mine.yaml", EXTENSION)
    registry = load_registry([path], extensions)
    assert registry.errors == []
    file = registry.files["induction_head"]
    assert file.label == "<builtin>/induction_head.yaml" and file.paths == (file.path, path)
    assert list(file.concept.definitions)[-1] == "strict_k_composition"
    assert "k_composition" in file.concept.definitions
    assert file.concept.summary.startswith("Heads that complete")  # the built-in's summary and unit stay
    assert file.concept.references[-1] == "Our lab notes"
    source, definition = registry.definition("induction_head.strict_k_composition")
    assert source.path == path and definition.source == "tests"
    assert file.position("definitions", "strict_k_composition", key=True) == (6, 3)  # in the user's file
    order = registry.order
    assert order.index("previous_token_head.attends_previous") < order.index("induction_head.strict_k_composition")


def test_an_extension_evaluates_with_its_builtin_reference(tmp_path):
    from conftest import make_view

    import defcheck

    path = _write(tmp_path, "mine.yaml", EXTENSION)
    report = defcheck.check(make_view(0), definitions=["induction_head.strict_k_composition"], paths=[path])
    document = json.loads(report.to_json())
    definition = document["concepts"]["induction_head"]["definitions"]["strict_k_composition"]
    assert definition["status"] == "ok" and definition["source"] == "tests"
    assert definition["file"].endswith("mine.yaml")  # an added definition points at its own file
    assert definition["criteria"][0]["with"] == ["previous_token_head.attends_previous"]
    assert len(definition["criteria"][0]["scores"]) == 16  # every head of the 2x8 model was scored
    assert "attends_previous" in document["concepts"]["previous_token_head"]["definitions"]


def test_an_extension_keeps_the_builtin_unit_and_adds_only_new_names(tmp_path, extensions):
    text = EXTENSION.replace("summary:", "unit: mlp_neuron\nsummary:").replace("strict_k_composition", "k_composition")
    registry = load_registry([_write(tmp_path, "mine.yaml", text)], extensions)
    errors = [(d.field, d.code) for d in registry.errors if d.code.startswith("builtin")]
    assert errors == [("unit", "builtin-extend"), ("definitions.k_composition", "builtin-extend")]
    assert any(d.message.endswith("not mlp_neuron; write 'unit: attention_head'") for d in registry.errors)
    assert any("already has a definition 'k_composition'" in d.message for d in registry.errors)
    assert registry.files["induction_head"].parts == ()  # not merged


def test_builtin_replace_loads_the_users_concept_instead(tmp_path, extensions):
    text = """\
concept: previous_token_head
builtin: replace
summary: Mine.
definitions:
  carries_previous:
    kind: behavioral
    source: tests
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: repeated_random_tokens
        threshold: ">= 0.6"
"""
    path = _write(tmp_path, "previous.yaml", text)
    registry = load_registry([path], extensions)
    assert registry.errors == []
    assert registry.files["previous_token_head"].path == path
    assert [d for d in registry.definition_ids() if d.startswith("previous_token_head.")] == [
        "previous_token_head.carries_previous"
    ]
    # a replacement without a definition that built-in concepts name is reported in the user's file
    _write(tmp_path, "previous.yaml", text.replace("  carries_previous:", "  carries_prev:"))
    registry = load_registry([path], extensions)
    assert {(d.file, d.field, d.code) for d in registry.errors} == {
        (registry.errors[0].file, "definitions", "dangling-reference")
    }
    assert registry.errors[0].file.endswith("previous.yaml")
    assert "define 'carries_previous' here" in registry.errors[0].message


def test_builtin_rule_without_a_builtin_of_that_name(tmp_path, extensions):
    path = _write(tmp_path, "mine.yaml", EXTENSION.replace("concept: induction_head", "concept: induction_heads"))
    [error] = load_registry([path], extensions).errors
    assert (error.field, error.code) == ("builtin", "builtin-rule")
    assert "did you mean 'induction_head'?" in error.message
    # without the built-in concepts, the file stands alone (its with: target is then not loaded)
    codes = [d.code for d in load_registry([path], extensions, include_builtin=False).errors]
    assert codes == ["dangling-reference"]


def test_a_duplicate_user_concept_is_still_validated(tmp_path, extensions):
    head = "concept: same\nsummary: s\ndefinitions:\n"
    definition = "  {name}:\n    kind: mechanistic\n    source: tests\n    all:\n      - checker: {checker}\n"
    definition += "        threshold: '> 1'\n"
    _write(tmp_path, "a.yaml", head + definition.format(name="one", checker="head_norm"))
    _write(tmp_path, "b.yaml", head + definition.format(name="two", checker="hed_norm"))
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    assert [(d.file.rpartition("/")[2], d.code) for d in registry.errors] == [
        ("b.yaml", "duplicate-concept"),
        ("b.yaml", "unknown-checker"),
    ]


def test_the_language_layer_imports_neither_torch_nor_transformer_lens():
    code = (
        "import sys\n"
        "from defcheck.language import concept_file, lint, placement, registry, salvage, schema, semantics, starter\n"
        "from defcheck.language import thresholds, yaml_source\n"
        "from defcheck.ci import baseline, expectations, project\n"
        "print(sorted(m for m in ('torch', 'transformer_lens') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_misspelt_builtin_rule_is_one_error_not_also_a_clash(tmp_path, extensions):
    path = _write(tmp_path, "mine.yaml", EXTENSION.replace("builtin: extend", "builtin: extends"))
    [error] = load_registry([path], extensions).errors
    assert (error.line, error.field, error.code) == (2, "builtin", "schema")
    assert error.message.endswith("got str 'extends'; did you mean 'extend'?")


def test_the_guides_extension_example_loads(tmp_path, extensions):
    import re

    guide = (Path(__file__).parent.parent / "docs" / "writing-definitions.md").read_text(encoding="utf-8")
    section = guide[guide.index("## Extending or replacing a built-in concept") :]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example, "docs/writing-definitions.md lost its extension example"
    registry = load_registry([_write(tmp_path, "example.yaml", example.group(1))], extensions)
    assert registry.errors == []
    assert "induction_head.strict_k_composition" in registry.definition_ids()


def test_a_duplicate_key_does_not_hide_an_unknown_checker(tmp_path, extensions):
    text = BAD_THRESHOLD_AND_NAMES.replace('threshold: ">= abc"', 'threshold: ">= 0.4"\n        threshold: "> 0"')
    registry = load_registry([_write(tmp_path, "twice.yaml", text)], extensions, include_builtin=False)
    assert [(d.line, d.code) for d in registry.errors] == [(9, "unknown-param"), (12, "yaml"), (17, "unknown-checker")]
    assert "the key 'threshold' appears twice" in registry.errors[1].message
    assert registry.files == {}


def test_a_sweep_key_changes_when_an_extension_file_changes(tmp_path):
    """The sweep's cache key covers the files that extend a built-in concept, not only the built-in's own file."""
    from defcheck.session import RunConfig, Session
    from defcheck.sweep.store import definitions_fingerprint

    path = _write(tmp_path, "mine.yaml", EXTENSION)

    def fingerprint() -> dict:
        config = RunConfig.resolve(no_config=True, definition_paths=[path], selection=["induction_head"])
        return definitions_fingerprint(Session(config))

    before = fingerprint()
    assert any(label.endswith("mine.yaml") for label in before["concept_files"])
    path.write_text(EXTENSION.replace('">= 2"', '">= 3"'), encoding="utf-8")
    assert fingerprint()["concept_files"] != before["concept_files"]
