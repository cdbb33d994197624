"""The command line: JSON shapes, `plugins`, `new`, exit codes, and errors without tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from defcheck import __version__
from defcheck.cli import main
from defcheck.hooks.manager import load_plugins
from defcheck.language.concept_file import load_concept_file
from defcheck.language.schema import concept_json_schema

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
WIDE_HEAD = ("--no-builtin", "-d", "concepts/wide_head.yaml")  # only the fixture file, relative to FIXTURES
CLI_DOC = ROOT / "docs" / "cli.md"

# The checkers the starter file of `defcheck new` uses, by field (built-in checkers from later issues).
STARTER_CHECKERS = {
    "definitions.attends_previous.all[0].checker": "attention_pattern",
    "definitions.copies_tokens.all[0].checker": "ov_eigenvalue_copying",
}


def test_list_json_shape(cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    code, out, err = cli("--plugin", "fixture_plugin", "list", "--json", *WIDE_HEAD)
    assert (code, err) == (0, "")
    payload = json.loads(out)
    assert set(payload) == {"concepts", "diagnostics"}
    assert payload["diagnostics"] == []
    (concept,) = [c for c in payload["concepts"] if c["name"] == "wide_head"]
    assert set(concept) == {"name", "unit", "summary", "references", "file", "definitions"}
    assert concept["unit"] == "attention_head"
    assert concept["file"] == "concepts/wide_head.yaml"
    assert concept["references"] == ["defcheck test fixtures"]
    spreads, large = concept["definitions"]
    assert set(spreads) == {"id", "kind", "summary", "source", "combine", "criteria"}
    assert (spreads["id"], spreads["kind"], spreads["combine"]) == ("wide_head.spreads_attention", "behavioral", "all")
    assert (large["id"], large["kind"], large["combine"]) == ("wide_head.large_output", "mechanistic", "any")
    assert spreads["source"] == "defcheck tests"
    assert spreads["criteria"] == [
        {
            "checker": "attention_entropy",
            "observes": "behavior",
            "params": {},
            "probe": {"name": "fixture_tokens", "n": 4},
            "threshold": ">= 0.8",
            "with": None,
        }
    ]
    assert large["criteria"] == [
        {
            "checker": "head_norm",
            "observes": "mechanism",
            "params": {"matrix": "W_O"},
            "probe": None,
            "threshold": {"top_k": 2},
            "with": None,
        },
        {
            "checker": "head_norm_ratio",
            "observes": "mechanism",
            "params": {},
            "probe": None,
            "threshold": "> 1.5",
            "with": ["spreads_attention"],
        },
    ]


def test_list_json_carries_diagnostics_of_files_and_plugins(cli, monkeypatch, tmp_path):
    # a plugin that exists but fails to import (a missing -p module is a usage error: tests/test_cli_options.py)
    (tmp_path / "acme_needs_a_dependency.py").write_text("import acme_missing_dependency\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(FIXTURES)
    code, out, _ = cli("--plugin", "acme_needs_a_dependency", "list", "--json", *WIDE_HEAD)
    assert code == 0
    diagnostics = json.loads(out)["diagnostics"]
    assert {"plugin-error", "unknown-checker"} <= {d["code"] for d in diagnostics}
    (failure,) = [d for d in diagnostics if d["code"] == "plugin-error"]
    assert "No module named 'acme_missing_dependency'" in failure["message"]
    for diagnostic in diagnostics:
        assert set(diagnostic) == {"file", "line", "column", "field", "message", "severity", "code"}
    unknown = [d for d in diagnostics if d["code"] == "unknown-checker"]
    assert {(d["file"], d["field"]) for d in unknown} == {
        ("concepts/wide_head.yaml", "definitions.spreads_attention.all[0].checker"),
        ("concepts/wide_head.yaml", "definitions.large_output.any[0].checker"),
        ("concepts/wide_head.yaml", "definitions.large_output.any[1].checker"),
    }


def test_list_text_shows_each_definition(cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    code, out, _ = cli("--plugin", "fixture_plugin", "list", *WIDE_HEAD)
    assert code == 0
    row = next(line for line in out.splitlines() if "wide_head.large_output" in line)
    assert "mechanistic" in row
    assert "head_norm top 2 any head_norm_ratio > 1.5" in row
    assert "defcheck tests" in row


def test_plugins_text_shows_the_builtin_concepts_plugin(cli):
    code, out, _ = cli("plugins")
    assert code == 0
    row = next(line for line in out.splitlines() if " concepts " in line)
    assert f"defcheck {__version__} (built-in)" in row
    assert "concept_folders: defcheck_definitions" in row
    assert "defcheck_plugins.concepts" in out


def test_plugins_json_shape(cli):
    code, out, _ = cli("--plugin", "fixture_plugin", "plugins", "--json")
    assert code == 0
    plugins = json.loads(out)["plugins"]
    for plugin in plugins:
        assert set(plugin) == {"name", "module", "distribution", "builtin", "registers", "error"}
    by_name = {plugin["name"]: plugin for plugin in plugins}
    assert by_name["concepts"]["builtin"] is True
    assert by_name["fixture_plugin"] == {
        "name": "fixture_plugin",
        "module": "fixture_plugin",
        "distribution": None,
        "builtin": False,
        "registers": {
            "checkers": ["head_norm", "head_norm_ratio", "attention_entropy", "neuron_norm"],
            "probes": ["fixture_tokens"],
        },
        "error": None,
    }


def test_new_writes_a_file_that_passes_schema_validation(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("new", "copy_suppression_head")
    assert (code, out) == (0, "")
    path = tmp_path / "copy_suppression_head.yaml"
    assert err == "wrote copy_suppression_head.yaml; check it with `defcheck validate copy_suppression_head.yaml`\n"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=")
    concept, problems = load_concept_file(path)
    assert problems == []
    assert concept is not None
    assert concept.concept.concept == "copy_suppression_head"
    assert concept.concept.unit == "attention_head"
    kinds = {definition.kind for definition in concept.concept.definitions.values()}
    assert kinds == {"behavioral", "mechanistic"}


def test_new_file_with_plugins_has_only_unknown_checker_errors(cli, tmp_path, monkeypatch):
    """The starter file is valid except, at most, that it names checkers no installed plugin registers.

    Its checkers (attention_pattern, ov_eigenvalue_copying) are built-in checkers that arrived after
    `defcheck new`: the only diagnostics allowed are one unknown-checker error for each of them that is not
    registered, so with both built in the file validates with no diagnostic at all (exit 0).
    """
    monkeypatch.chdir(tmp_path)
    assert cli("new", "my_head")[0] == 0
    code, out, _ = cli("--plugin", "fixture_plugin", "validate", "--json", "--no-builtin", "my_head.yaml")
    registered = load_plugins(modules=["fixture_plugin"]).checkers
    missing = {field: name for field, name in STARTER_CHECKERS.items() if name not in registered}
    diagnostics = json.loads(out)["diagnostics"]
    assert [(d["code"], d["field"], d["severity"]) for d in diagnostics] == [
        ("unknown-checker", field, "error") for field in STARTER_CHECKERS if field in missing
    ]
    for diagnostic in diagnostics:
        assert diagnostic["message"].startswith(f"unknown checker '{missing[diagnostic['field']]}'")
    assert code == (1 if missing else 0)


@pytest.mark.parametrize("unit", ["mlp_neuron", "layer", "model"])
def test_new_with_a_unit(cli, tmp_path, unit):
    path = tmp_path / "neuron.yaml"
    assert cli("new", "some_unit", "--unit", unit, "--output", str(path))[0] == 0
    concept, problems = load_concept_file(path)
    assert problems == []
    assert concept is not None
    assert concept.concept.unit == unit


def test_new_refuses_to_overwrite_without_force(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "taken.yaml"
    path.write_text("precious: true\n", encoding="utf-8")
    code, out, err = cli("new", "taken")
    assert (code, out) == (2, "")
    assert err.strip() == "error: taken.yaml exists; use --force to overwrite it"
    assert path.read_text(encoding="utf-8") == "precious: true\n"
    code, out, err = cli("new", "taken", "--force")
    assert (code, out) == (0, "")
    assert err.startswith("wrote taken.yaml;")
    assert "concept: taken" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["Capital", "1st_head", "has-dash", "has space", "_leading", "", "trailing\n"])
def test_new_refuses_a_bad_name(cli, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("new", name)
    assert code == 2
    assert out == ""
    assert "is not a concept name: use lowercase letters, digits and '_', starting with a letter" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["null", "yes", "no", "on", "off", "true", "false"])
def test_new_quotes_names_yaml_would_read_as_other_types(cli, tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    assert cli("new", name, "-o", str(path))[0] == 0
    concept, problems = load_concept_file(path)
    assert problems == []
    assert concept is not None
    assert concept.concept.concept == name


def test_help_mentions_exit_codes(cli):
    code, out, _ = cli("--help")
    assert code == 0
    text = " ".join(out.split())
    assert "Exit codes: 0 success, 1 findings (e.g. validation errors), 2 usage, input or plugin error." in text


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip() == f"defcheck, version {__version__}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new", "Bad"], "is not a concept name"),
        (["new", "fine", "--unit", "sentence"], "Invalid value for '--unit'"),
        (["new", "fine", "-o", "/dev/null/fine.yaml"], "error: cannot write /dev/null/fine.yaml"),
        (["schema", "-o", "/dev/null/schema.json"], "error: cannot write /dev/null/schema.json"),
        (["validate", "no_such_file.yaml"], "does not exist"),
        (["list", "--definitions", "no_such_file.yaml"], "error: no_such_file.yaml: no such file or folder"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["list", "--jsn"], "No such option"),
        (["--strict-plugins", "--plugin", "acme_not_installed", "list"], "No module named 'acme_not_installed'"),
    ],
)
def test_user_errors_exit_2_without_a_traceback(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


def test_validate_exit_codes(cli, tmp_path):
    fixture = FIXTURES / "concepts" / "wide_head.yaml"
    assert cli("--plugin", "fixture_plugin", "validate", "--no-builtin", str(fixture))[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("concept: bad\nsummary: s\ndefinitions:\n  d: {kind: behavioural, all: []}\n", encoding="utf-8")
    code, out, _ = cli("validate", "--json", "--no-builtin", str(bad))
    assert code == 1
    payload = json.loads(out)
    assert payload["errors"] == len([d for d in payload["diagnostics"] if d["severity"] == "error"]) > 0
    assert cli("validate", "--json", "--quiet", str(tmp_path / "missing.yaml"))[0] == 2


def test_schema_command_prints_the_schema_and_writes_it(cli, tmp_path):
    code, out, _ = cli("schema")
    assert code == 0
    assert json.loads(out) == concept_json_schema()
    target = tmp_path / "concept.schema.json"
    assert cli("schema", "--output", str(target)) == (0, "", f"wrote {target}\n")
    assert target.read_text(encoding="utf-8") == out
    assert cli("schema", "--output", str(target), "-q") == (0, "", "")


def _commands() -> dict[str, click.Command]:
    return dict(main.commands)


def test_cli_doc_covers_every_command_and_option():
    doc = CLI_DOC.read_text(encoding="utf-8")
    flags = [opt for param in main.params for opt in param.opts if opt.startswith("--")]
    for name, command in _commands().items():
        assert re.search(rf"^## `defcheck {name}", doc, re.MULTILINE), f"docs/cli.md has no section for {name}"
        flags += [opt for param in command.params for opt in param.opts if opt.startswith("--")]
    missing = sorted({flag for flag in flags if f"`{flag}" not in doc} - {"--help"})
    assert missing == [], f"docs/cli.md does not mention {missing}"


def test_the_complete_file_in_writing_definitions_validates(cli, tmp_path):
    guide = (ROOT / "docs" / "writing-definitions.md").read_text(encoding="utf-8")
    section = guide.split("## A complete file", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example, "docs/writing-definitions.md lost its complete example"
    path = tmp_path / "example.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    code, out, _ = cli("validate", "--json", "--no-builtin", str(path))
    assert json.loads(out)["diagnostics"] == []
    assert code == 0


@pytest.mark.parametrize(
    ("argv0", "given", "expected"),
    [("/usr/bin/defcheck", None, "PASSIVE"), ("/usr/bin/defcheck", "ACTIVE", "ACTIVE"), ("script.py", None, None)],
)
def test_the_command_makes_openmp_threads_wait_passively_unless_told(argv0, given, expected):
    """Only the `defcheck` command sets OMP_WAIT_POLICY (before torch loads); a user's choice, or a program that
    merely imports defcheck, is left alone."""
    code = f"import os, sys; sys.argv = [{argv0!r}]; import defcheck; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == str(expected)
