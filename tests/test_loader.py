"""The loader, registry and lint over a corpus of malformed concept files, in-process and through the CLI.

Every file in ``tests/fixtures/malformed/`` has exactly one intended problem; ``CORPUS`` holds the one error
it must produce, exactly as printed (``file:line:col: field: message``). Paths are relative to the corpus
folder (the tests run from there), so the strings read as a user would see them.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import yaml
from conftest import json_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from defcheck.diagnostics import Diagnostic
from defcheck.hooks.manager import load_plugins
from defcheck.language.concept_file import ConceptFile, find_concept_files, load_concept_file, read_concept_file
from defcheck.language.registry import load_registry

FIXTURES = Path(__file__).parent / "fixtures"
MALFORMED = FIXTURES / "malformed"
GOOD = FIXTURES / "concepts" / "wide_head.yaml"
THRESHOLD_HELP = "use a comparison such as '>= 0.4', '> 0' or '< -0.2', or a rank rule such as {top_k: 3}"
NAME_HELP = "names use lowercase letters, digits and '_', starting with a letter"
THRESHOLD_FIELD = "definitions.wide.all[0].threshold"

# file (or folder) in the corpus -> the one error it must produce
CORPUS: dict[str, str] = {
    # YAML syntax
    "syntax_unclosed_bracket.yaml": "syntax_unclosed_bracket.yaml:4:12: invalid YAML: while parsing a flow sequence "
    "(from line 3, column 13): expected ',' or ']', but got ':'; is a bracket or brace left unclosed?",
    "syntax_bad_indentation.yaml": "syntax_bad_indentation.yaml:7:4: invalid YAML: while parsing a block mapping "
    "(from line 4, column 3): expected <block end>, but found '<block mapping start>'; check the indentation of "
    "this line and the one above",
    "syntax_tab_indentation.yaml": "syntax_tab_indentation.yaml:5:1: invalid YAML: while scanning for the next "
    "token: found character '\\t' that cannot start any token; YAML is indented with spaces, not tabs",
    "duplicate_key.yaml": "duplicate_key.yaml:11:9: definitions.wide.all[0].threshold: the key 'threshold' appears "
    "twice in this mapping (first on line 10)",
    "two_documents.yaml": "two_documents.yaml:12:1: a concept file holds exactly one YAML document (found 2)",
    "top_level_list.yaml": "top_level_list.yaml:1:1: a concept file is a mapping (key: value), not a list",
    "empty.yaml": "empty.yaml:1:1: the file is empty; a concept file is a YAML mapping",
    "comments_only.yaml": "comments_only.yaml:1:1: the file is empty; a concept file is a YAML mapping",
    "binary.yaml": "binary.yaml: this is a binary file, not YAML text",
    # hostile YAML
    "alias_bomb.yaml": "alias_bomb.yaml:3:57: e[1][5][2][2][7]: the document expands to more than 20000 values "
    "(an alias bomb?); concept files are small: write values out instead of nesting aliases",
    "recursive_alias.yaml": "recursive_alias.yaml:3:13: references[1]: a recursive alias refers to itself; "
    "remove the alias",
    "python_tag.yaml": "python_tag.yaml:2:10: summary: the tag '!!python/object/apply:os.system' is not allowed; "
    "remove it",
    # wrong types
    "type_summary_list.yaml": "type_summary_list.yaml:2:1: summary: must be a string; got a list",
    "type_definitions_list.yaml": "type_definitions_list.yaml:3:1: definitions: must be a mapping (key: value); "
    "got a list",
    "type_threshold_bool.yaml": f"type_threshold_bool.yaml:10:20: {THRESHOLD_FIELD}: true is not a threshold; "
    f"{THRESHOLD_HELP}",
    "type_with_number.yaml": "type_with_number.yaml:9:15: definitions.ratio.all[0].with: 'with' takes a definition "
    "name ('concept.definition' or a name in this concept) or a list of them, not the number 3",
    # unknown keys, with did-you-mean and the allowed keys
    "unknown_key_top.yaml": "unknown_key_top.yaml:3:1: referenses: unknown key 'referenses'; did you mean "
    "'references'? (allowed: concept, builtin, unit, summary, references, definitions)",
    "unknown_key_definition.yaml": "unknown_key_definition.yaml:7:5: definitions.wide.sumary: unknown key 'sumary'; "
    "did you mean 'summary'? (allowed: kind, summary, source, all, any)",
    "unknown_key_criterion.yaml": "unknown_key_criterion.yaml:9:9: definitions.large.all[0].parms: unknown key "
    "'parms'; did you mean 'params'? (allowed: checker, params, probe, threshold, with)",
    # required fields and names
    "missing_summary.yaml": "missing_summary.yaml:1:1: summary: 'summary' is required (keys here: concept, "
    "builtin, unit, summary, references, definitions)",
    "missing_threshold.yaml": f"missing_threshold.yaml:8:9: {THRESHOLD_FIELD}: 'threshold' is required (keys here: "
    "checker, params, probe, threshold, with)",
    "bad_concept_name.yaml": f"bad_concept_name.yaml:1:10: concept: got str 'Wide-Head'; {NAME_HELP}",
    "bad_definition_name.yaml": f"bad_definition_name.yaml:4:3: definitions.Wide: got str 'Wide'; {NAME_HELP}",
    "bad_kind.yaml": "bad_kind.yaml:5:11: definitions.wide.kind: must be one of behavioral, mechanistic; got str "
    "'behavioural'; did you mean 'behavioral'?",
    "bad_with_reference.yaml": "bad_with_reference.yaml:9:15: definitions.ratio.all[0].with[0]: got str "
    "'Other.Concept'; a reference is 'concept.definition' or a definition name in this concept",
    # thresholds
    "threshold_not_a_number.yaml": f"threshold_not_a_number.yaml:10:20: {THRESHOLD_FIELD}: '>= abc' is not a "
    f"threshold; {THRESHOLD_HELP}",
    "threshold_reversed_operator.yaml": f"threshold_reversed_operator.yaml:10:20: {THRESHOLD_FIELD}: '=> 0.4' is "
    "not a threshold; did you mean '>= 0.4'?",
    "threshold_no_operator.yaml": f"threshold_no_operator.yaml:10:20: {THRESHOLD_FIELD}: '0.4' has no comparison; "
    "write it as '>= 0.4' (or another of >, <=, <)",
    "threshold_top_k_zero.yaml": f"threshold_top_k_zero.yaml:10:20: {THRESHOLD_FIELD}: top_k must be an integer "
    ">= 1, got 0",
    # combinators
    "definition_all_and_any.yaml": "definition_all_and_any.yaml:4:3: definitions.wide: a definition has either "
    "'all' or 'any', not both; keep one",
    "definition_no_criteria.yaml": "definition_no_criteria.yaml:4:3: definitions.wide: a definition needs its "
    "criteria: 'all' (every one must pass) or 'any' (one must)",
    "definition_empty_criteria.yaml": "definition_empty_criteria.yaml:7:10: definitions.wide.any: needs at least 1 "
    "item(s); got an empty list",
    # against the plugins
    "unknown_unit.yaml": "unknown_unit.yaml:2:7: unit: unknown unit kind 'attention_heads'; did you mean "
    "'attention_head'? (known: attention_head, layer, mlp_neuron, model)",
    "unit_mismatch.yaml": "unit_mismatch.yaml:9:18: definitions.wide.all[0].checker: the checker "
    "'attention_entropy' scores attention_head units, but the concept 'unit_mismatch' categorizes mlp_neuron units",
    "unit_mismatch_neuron_checker.yaml": "unit_mismatch_neuron_checker.yaml:10:18: "
    "definitions.weights.all[0].checker: the checker 'neuron_norm' scores mlp_neuron units, but the concept "
    "'unit_mismatch_neuron_checker' categorizes attention_head units",
    "unknown_checker.yaml": "unknown_checker.yaml:8:18: definitions.large.all[0].checker: unknown checker "
    "'head_nrom'; did you mean 'head_norm'? (registered: attention_entropy, head_norm, head_norm_ratio, "
    "neuron_norm)",
    "unknown_checker_param.yaml": "unknown_checker_param.yaml:10:11: definitions.large.all[0].params.matrx: the "
    "checker 'head_norm' has no parameter 'matrx'; did you mean 'matrix'? (parameters: matrix)",
    "bad_param_value.yaml": "bad_param_value.yaml:9:26: definitions.large.all[0].params.matrix: got str 'W_X'; "
    "must match the pattern ^W_[QKVO]$",
    "unknown_probe.yaml": "unknown_probe.yaml:9:23: definitions.wide.all[0].probe.name: unknown probe "
    "'fixture_tokns'; did you mean 'fixture_tokens'? (registered: fixture_tokens)",
    "unknown_probe_param.yaml": "unknown_probe_param.yaml:9:39: definitions.wide.all[0].probe.lenght: the probe "
    "'fixture_tokens' has no parameter 'lenght'; did you mean 'length'? (parameters: length, n)",
    "missing_probe.yaml": "missing_probe.yaml:8:9: definitions.wide.all[0]: the checker 'attention_entropy' needs "
    "a 'probe:' (inputs to observe; probes: fixture_tokens)",
    "probe_on_weights_checker.yaml": "probe_on_weights_checker.yaml:9:16: definitions.large.all[0].probe: the "
    "checker 'head_norm' reads weights only and takes no 'probe:'; remove it",
    "missing_with.yaml": "missing_with.yaml:8:9: definitions.ratio.all[0]: the checker 'head_norm_ratio' needs "
    "'with:', the definition(s) whose members it relates to (e.g. with: previous_token_head.attends_previous)",
    "unused_with.yaml": "unused_with.yaml:16:15: definitions.large.all[0].with: the checker 'head_norm' takes no "
    "'with:'",
    # references between definitions and files
    "dangling_with.yaml": "dangling_with.yaml:16:15: definitions.ratio.all[0].with[0]: 'wdie' names no loaded "
    "definition; did you mean 'dangling_with.wide'?",
    "cycle_two_definitions.yaml": "cycle_two_definitions.yaml:4:3: definitions.first: definitions refer to each "
    "other in a cycle: cycle_two_definitions.first -> cycle_two_definitions.second -> cycle_two_definitions.first",
    "cycle_across_files": "cycle_across_files/alpha.yaml:4:3: definitions.ratio: definitions refer to each other "
    "in a cycle: cycle_alpha.ratio -> cycle_beta.ratio -> cycle_alpha.ratio",
    "duplicate_concept": "duplicate_concept/second.yaml:1:10: concept: the concept 'duplicate_concept' is already "
    "defined in duplicate_concept/first.yaml:1; concept names are unique",
    # the kind lint
    "mechanistic_behavior_only.yaml": "mechanistic_behavior_only.yaml:5:11: definitions.wide.kind: a mechanistic "
    "definition needs a checker that observes mechanism, but attention_entropy observe(s) only behavior; use kind: "
    "behavioral, or add a mechanism checker",
}

# the stable code of each file's error (SARIF and JSON output key on it)
CODES = {
    "syntax_unclosed_bracket.yaml": "yaml-syntax",
    "syntax_tab_indentation.yaml": "yaml-syntax",
    "binary.yaml": "not-text",
    "empty.yaml": "empty",
    "python_tag.yaml": "unsafe-tag",
    "unknown_key_top.yaml": "unknown-key",
    "unknown_checker.yaml": "unknown-checker",
    "unknown_checker_param.yaml": "unknown-param",
    "unknown_probe_param.yaml": "unknown-param",
    "unknown_unit.yaml": "unknown-unit",
    "unit_mismatch.yaml": "unit-mismatch",
    "unit_mismatch_neuron_checker.yaml": "unit-mismatch",
    "missing_probe.yaml": "missing-probe",
    "probe_on_weights_checker.yaml": "unused-probe",
    "missing_with.yaml": "missing-with",
    "dangling_with.yaml": "dangling-reference",
    "cycle_two_definitions.yaml": "reference-cycle",
    "duplicate_concept": "duplicate-concept",
    "mechanistic_behavior_only.yaml": "kind-mismatch",
}


@pytest.fixture
def only_fixture_plugin():
    """Only the fixture plugin (no entry points), so the 'registered: ...' listings are exact."""
    return load_plugins(modules=["fixture_plugin", "defcheck_plugins.unit_kinds"], entry_points=[])


@pytest.fixture
def in_corpus(monkeypatch):
    monkeypatch.chdir(MALFORMED)


def _stable(expected: str) -> str:
    """The part of a message that does not depend on which other plugins are installed."""
    for listing in (" (registered: ", "; probes: ", " (known: "):
        expected = expected.split(listing)[0]
    return expected


def _file_lines(out: str, name: str) -> list[str]:
    """The printed diagnostics about corpus file (or folder) ``name``."""
    return [line for line in out.splitlines() if line.startswith((f"{name}:", f"{name}/"))]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_corpus_is_complete():
    on_disk = {path.name for path in MALFORMED.iterdir()}
    assert on_disk == set(CORPUS), "every corpus file needs its expected error in CORPUS, and vice versa"
    assert len(CORPUS) >= 28
    assert set(CODES) <= set(CORPUS)
    for path in MALFORMED.rglob("*"):
        assert path.is_dir() or path.stat().st_size < 2_000, f"{path} should stay small"


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_malformed_file_gives_its_one_error(name, only_fixture_plugin, in_corpus):
    registry = load_registry([Path(name)], only_fixture_plugin, include_builtin=False)
    assert [str(d) for d in registry.errors] == [CORPUS[name]]
    assert registry.warnings == []  # each file has exactly one problem, and it is an error
    error = registry.errors[0]
    assert error.file.startswith(name)
    if name in CODES:
        assert error.code == CODES[name]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_malformed_file_fails_the_cli(name, cli, in_corpus):
    code, out, err = cli("-p", "fixture_plugin", "validate", "--no-builtin", name)
    assert code == 1, out + err
    assert _flat(_stable(CORPUS[name])) in _flat(out)
    location = CORPUS[name].split(": ")[0]
    assert any(line.startswith(location + ":") for line in out.splitlines())
    assert len(_file_lines(out, name)) == 1  # other plugins' problems may be printed too, but not ours


def test_the_cli_json_output_carries_the_exact_diagnostic(cli, in_corpus):
    code, out, _ = cli("-p", "fixture_plugin", "validate", "--no-builtin", "--json", "unknown_checker_param.yaml")
    assert code == 1
    payload = json.loads(out)
    assert payload["errors"] >= 1  # an installed plugin that fails to load would add its own
    assert [d for d in payload["diagnostics"] if d["file"] != "plugin" and not d["file"].startswith("plugin ")] == [
        {
            "file": "unknown_checker_param.yaml",
            "line": 10,
            "column": 11,
            "field": "definitions.large.all[0].params.matrx",
            "message": "the checker 'head_norm' has no parameter 'matrx'; did you mean 'matrix'? (parameters: matrix)",
            "severity": "error",
            "code": "unknown-param",
        }
    ]


def test_errors_from_every_file_are_collected_in_one_pass(only_fixture_plugin, in_corpus):
    registry = load_registry([Path(".")], only_fixture_plugin, include_builtin=False)
    printed = {str(d) for d in registry.errors}
    missing = [name for name, expected in CORPUS.items() if expected not in printed]
    assert missing == []
    assert len(registry.errors) == len(CORPUS)
    assert len({d.file for d in registry.errors}) == len(CORPUS)
    # the files that are valid on their own are still loaded alongside the broken ones
    assert "unknown_checker" in registry.concepts and "cycle_alpha" in registry.concepts


def test_the_cli_reports_several_files_in_one_run(cli, in_corpus):
    names = ["unknown_key_top.yaml", "missing_with.yaml", "syntax_tab_indentation.yaml", "duplicate_concept"]
    code, out, _ = cli("-p", "fixture_plugin", "validate", "--no-builtin", *names)
    assert code == 1
    for name in names:
        assert _flat(_stable(CORPUS[name])) in _flat(out)
        assert len(_file_lines(out, name)) == 1


def test_a_5mb_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch, only_fixture_plugin, cli):
    big = tmp_path / "big.yaml"
    big.write_text("concept: big\nsummary: " + "x" * 5_000_000 + "\n", encoding="utf-8")
    size = big.stat().st_size
    monkeypatch.chdir(tmp_path)
    expected = f"big.yaml: the file is {size:,} bytes; concept files are limited to 1,000,000 bytes"
    registry = load_registry([Path("big.yaml")], only_fixture_plugin, include_builtin=False)
    assert [str(d) for d in registry.errors] == [expected]
    assert registry.errors[0].code == "too-large"
    code, out, _ = cli("-p", "fixture_plugin", "validate", "--no-builtin", "big.yaml")
    assert code == 1 and expected in out


def test_a_file_that_is_not_utf8_is_refused(tmp_path, monkeypatch, only_fixture_plugin):
    (tmp_path / "latin1.yaml").write_bytes("concept: caf\xe9\nsummary: x\n".encode("latin-1"))
    monkeypatch.chdir(tmp_path)
    registry = load_registry([Path("latin1.yaml")], only_fixture_plugin, include_builtin=False)
    assert [str(d) for d in registry.errors] == [
        "latin1.yaml:1:13: the file is not UTF-8 text: the byte 0xe9 here cannot be decoded (Latin-1 or another "
        "encoding?); save the file as UTF-8"
    ]


def test_a_good_file_validates(cli):
    code, out, err = cli("-p", "fixture_plugin", "validate", "--no-builtin", str(GOOD))
    assert code == 0, out + err
    assert "1 concept(s), 2 definition(s): 0 error(s), 0 warning(s)" in out


def test_a_nonexistent_path_is_a_usage_error(cli, tmp_path):
    code, _, err = cli("-p", "fixture_plugin", "validate", "--no-builtin", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "missing.yaml" in err and "does not exist" in err


def test_load_concept_file_returns_the_model_and_positions():
    file, problems = load_concept_file(GOOD)
    assert problems == []
    assert isinstance(file, ConceptFile)
    assert file.concept.concept == "wide_head"
    assert file.concept.definitions["large_output"].combinator == "any"
    assert file.position("definitions", "large_output", "any", 1, "with") == (22, 15)
    assert file.position("definitions", "large_output", key=True) == (14, 3)
    assert file.position("no", "such", "field") == (1, 1)  # falls back to the document
    diagnostic = file.diagnostic(("definitions", "spreads_attention", "all", 0, "threshold"), "msg", "code")
    assert str(diagnostic).endswith("wide_head.yaml:13:20: definitions.spreads_attention.all[0].threshold: msg")


def test_find_concept_files_walks_folders_sorted(tmp_path):
    for name in ("b.yaml", "a.yml", "sub/c.yaml", "notes.txt", "sub/d.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x: 1\n")
    assert [p.relative_to(tmp_path).as_posix() for p in find_concept_files(tmp_path)] == [
        "a.yml",
        "b.yaml",
        "sub/c.yaml",
    ]
    assert find_concept_files(tmp_path / "notes.txt") == [tmp_path / "notes.txt"]


def test_several_schema_errors_in_one_file_are_all_reported(tmp_path, monkeypatch):
    (tmp_path / "many.yaml").write_text(
        "concept: Bad\nsumary: x\ndefinitions:\n  d:\n    kind: neither\n    all:\n      - checker: c\n"
        "        threshold: '~ 1'\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    file, problems = load_concept_file(Path("many.yaml"))
    assert file is None
    fields = [d.field for d in problems]
    assert sorted(fields) == sorted(
        ["concept", "summary", "sumary", "definitions.d.kind", "definitions.d.all[0].threshold"]
    )
    assert all(d.line is not None and d.severity == "error" for d in problems)


def test_read_concept_file_salvages_the_rest_of_a_file_with_schema_errors(tmp_path, monkeypatch):
    (tmp_path / "part.yaml").write_text(
        "concept: part\nsummary: s\ndefinitions:\n  good:\n    kind: mechanistic\n    source: s\n    all:\n"
        "      - checker: head_norm\n        threshold: high\n      - checker: head_norm\n        threshold: '> 1'\n"
        "  empty:\n    kind: behavioral\n    all: []\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    file, problems = read_concept_file(Path("part.yaml"))
    assert [d.field for d in problems] == ["definitions.good.all[0].threshold", "definitions.empty.all"]
    assert file is not None and not file.complete
    assert list(file.concept.definitions) == ["good"] and file.set_aside == {"empty"}
    assert file.is_broken("definitions", "good", "all", 0, "threshold")
    assert not file.is_broken("definitions", "good", "all", 0, "checker")
    assert not file.is_broken("definitions", "good", "all", 1, "threshold")
    assert load_concept_file(Path("part.yaml")) == (None, problems)  # the strict reader refuses it


# --- hypothesis: arbitrary input never crashes the loader ------------------------------------------------

_keys = st.text(alphabet=string.ascii_letters + string.digits + "_ .-", min_size=0, max_size=12)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["concept", "definitions", "all", "any", ">= 0.4", "head_norm", "fixture_tokens", "with"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_keys, st.integers(), st.booleans()), inner, max_size=4),
    ),
    max_leaves=20,
)
_CONCEPT_KEYS = ["concept", "unit", "summary", "references", "definitions"]
_documents = st.one_of(
    _values,
    st.fixed_dictionaries({}, optional={key: _values for key in _CONCEPT_KEYS}),
)


def _check_never_raises(path: Path, extensions) -> None:
    file, problems = load_concept_file(path, "case.yaml")
    assert (file is None) == bool(problems)
    for problem in problems:
        assert isinstance(problem, Diagnostic)
        assert problem.file == "case.yaml" and problem.message
        assert problem.line is None or problem.line >= 1
        str(problem)
    registry = load_registry([path], extensions, include_builtin=False)
    for problem in registry.diagnostics:
        assert isinstance(problem, Diagnostic) and problem.message
        str(problem)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("hypothesis") / "case.yaml"


@pytest.fixture(scope="module")
def module_extensions():
    return load_plugins(modules=["fixture_plugin", "defcheck_plugins.unit_kinds"], entry_points=[])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_documents)
def test_arbitrary_yaml_documents_give_diagnostics_not_exceptions(document, scratch, module_extensions):
    scratch.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _check_never_raises(scratch, module_extensions)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.text(alphabet="{}[]:-,&*!|>'\"#?\t\n %@`abc0.", max_size=120)))
def test_arbitrary_text_gives_diagnostics_not_exceptions(text, scratch, module_extensions):
    scratch.write_bytes(text.encode("utf-8", "surrogatepass"))
    _check_never_raises(scratch, module_extensions)


_GOOD_DATA = yaml.safe_load(GOOD.read_text(encoding="utf-8"))
_GOOD_PATHS = [path for path in json_paths(_GOOD_DATA) if path]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_GOOD_PATHS), replacement=_values)
def test_a_valid_file_with_one_value_replaced_gives_diagnostics_not_exceptions(
    where, replacement, scratch, module_extensions
):
    """Mutations of a valid file reach the registry's semantic checks and the lint, not only the schema."""
    data = json.loads(json.dumps(_GOOD_DATA))
    target = data
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = replacement
    scratch.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _check_never_raises(scratch, module_extensions)


def test_a_refused_mapping_key_is_located_at_the_key(tmp_path, monkeypatch):
    (tmp_path / "keys.yaml").write_text(
        "concept: a\nsummary: s\n3: x\ndefinitions:\n  7:\n    kind: behavioral\n    all: []\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    _, problems = load_concept_file(Path("keys.yaml"))
    assert sorted(str(d) for d in problems) == [
        "keys.yaml:3:1: [3]: a key must be a string; got int 3 (write it in quotes)",
        "keys.yaml:5:3: definitions[7]: must be a string; got int 7",
        "keys.yaml:7:10: definitions[7].all: needs at least 1 item(s); got an empty list",
    ]
