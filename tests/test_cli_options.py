"""The options every command shares, as users of ruff, semgrep and pytest expect them (issue 13, point 6):
-q/-v on either side of the command's name, -p MODULE / -p no:NAME, plugin failures reported by every command,
-f/--output-format and -o FILE alike everywhere, new --unit with a plugin's kind, COLUMNS, and --config."""

from __future__ import annotations

import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from defcheck.cli import main
from defcheck.cli.output import PIPE_WIDTH, output_width, report_plugin_problems
from defcheck.cli.settings import Settings
from defcheck.language.concept_file import load_concept_file

FIXTURES = Path(__file__).parent / "fixtures"
WIDE_HEAD = ("--no-builtin", "-d", str(FIXTURES / "concepts" / "wide_head.yaml"))
BAD = "concept: bad\nsummary: s\ndefinitions:\n  d: {kind: behavioural, all: []}\n"

CLASHING = """
from defcheck import Checker, hookimpl


@hookimpl
def defcheck_checkers():
    return [Checker("shared_name", "mechanism", lambda context: None)]
"""

RAISES = """
from defcheck import hookimpl


@hookimpl
def defcheck_checkers():
    raise OSError("cannot reach the acme checker registry")
"""

REGION = """
from defcheck import UnitKind, hookimpl


@hookimpl
def defcheck_unit_kinds():
    return [UnitKind("acme_region", shape=lambda model: (1,), names=lambda model: ["r0"], plural="regions")]
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules; its modules are forgotten afterwards."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("DEFCHECK_PLUGINS", raising=False)
    yield folder
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


@pytest.fixture(scope="module")
def saved_report(tmp_path_factory) -> Path:
    """A JSON report of the fixture concept on a small random model, saved as `defcheck run --json` would."""
    from conftest import make_view

    from defcheck.engine.runner import evaluate
    from defcheck.hooks.manager import load_plugins
    from defcheck.language.registry import load_registry
    from defcheck.report import Report

    extensions = load_plugins(modules=["fixture_plugin"])
    registry = load_registry([FIXTURES / "concepts" / "wide_head.yaml"], extensions, include_builtin=False)
    report = Report.build(evaluate(make_view(0), registry, extensions), registry, {"reference": "m.pt"})
    path = tmp_path_factory.mktemp("report") / "report.json"
    path.write_text(report.to_json(), encoding="utf-8")
    return path


# 1. -q and -v before or after the command's name


def test_every_command_takes_quiet_and_verbose():
    for name, command in main.commands.items():
        options = {opt for param in command.params for opt in param.opts}
        assert {"-q", "--quiet", "-v", "--verbose"} <= options, name


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_before_or_after_the_command(cli, tmp_path, where):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    args = ["validate", "--no-builtin", str(bad)]
    code, loud, _ = cli(*args)
    assert code == 1
    assert "0 warning(s)" in loud.splitlines()[-1]  # the summary line
    code, quiet, err = cli(*(["-q", *args] if where == "before" else [*args, "-q"]))
    assert (code, err) == (1, "")
    assert quiet.splitlines() == loud.splitlines()[:-1]  # the errors (there are no warnings), not the summary
    assert quiet.strip()


@pytest.mark.parametrize(
    "args",
    [
        ["-v", "checkers"],
        ["checkers", "--verbose"],
        ["--verbose", "checkers", "-f", "json"],
        ["list", "-v"],
        ["list", "-v", "--json"],
        ["-v", "validate", "--no-builtin", "--no-config"],
        ["plugins", "-v", "-f", "json"],
        ["report", "-v", "-f", "json", "REPORT"],
    ],
)
def test_verbose_before_or_after_the_command_names_the_plugins(cli, saved_report, args):
    args = [str(saved_report) if arg == "REPORT" else arg for arg in args]
    code, _, err = cli("-p", "no:gridworld", *args)
    assert code == 0
    (line,) = [line for line in err.splitlines() if line.startswith("plugins: ")]
    assert "concepts" in line.split(", ")
    assert line.endswith("; left out: gridworld")
    assert "plugins: " not in cli(*[arg for arg in args if arg not in ("-v", "--verbose")])[2]


@pytest.mark.parametrize("args", [["-q", "list", "-v"], ["list", "-q", "-v"], ["-v", "-q", "schema"]])
def test_quiet_and_verbose_together_is_a_usage_error(cli, args):
    code, out, err = cli(*args)
    assert (code, out) == (2, "")
    assert "-q/--quiet and -v/--verbose cannot be used together" in err


# 2. -p MODULE and -p no:NAME


def test_p_no_name_resolves_a_clash_without_uninstalling(cli, plugin_dir):
    write_module(plugin_dir, "acme_first", CLASHING)
    write_module(plugin_dir, "acme_second", CLASHING)
    code, out, err = cli("-p", "acme_first", "-p", "acme_second", "checkers", "--json")
    assert (code, out) == (2, "")
    assert "registered by two plugins, 'acme_first' and 'acme_second'" in err
    code, out, _ = cli("-p", "acme_first", "-p", "acme_second", "-p", "no:acme_second", "checkers", "--json")
    assert code == 0
    (row,) = [row for row in json.loads(out)["checkers"] if row["name"] == "shared_name"]
    assert row["plugin"] == "acme_first"


@pytest.mark.parametrize("name", ["gridworld", "defcheck_plugins.gridworld"])
def test_p_no_name_leaves_out_an_installed_plugin_by_entry_point_or_module(cli, name):
    code, out, _ = cli("-p", f"no:{name}", "plugins", "--json")
    assert code == 0
    payload = json.loads(out)
    assert "gridworld" not in {plugin["name"] for plugin in payload["plugins"]}
    assert payload["disabled"] == ["gridworld"]
    assert "concepts" in {plugin["name"] for plugin in payload["plugins"]}
    code, out, _ = cli("-p", f"no:{name}", "plugins")
    assert "left out (-p no:gridworld)" in out


def test_no_name_in_the_environment_too(cli, monkeypatch):
    monkeypatch.setenv("DEFCHECK_PLUGINS", "no:gridworld")
    code, out, _ = cli("plugins", "-f", "json")
    assert code == 0
    assert json.loads(out)["disabled"] == ["gridworld"]


def test_p_no_name_that_matches_no_plugin_is_a_usage_error(cli):
    code, out, err = cli("-p", "no:gridwrld", "checkers")
    assert (code, out) == (2, "")
    assert err.strip() == "error: -p no:gridwrld names no installed plugin; did you mean 'gridworld'?"


@pytest.mark.parametrize("command", [["schema"], ["list"], ["validate"], ["new", "x", "-o", "-"]])
def test_a_missing_p_module_is_a_usage_error_in_every_command(cli, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("-p", "acme_not_installed", *command)
    assert (code, out) == (2, "")
    assert err.strip() == (
        "error: cannot load the plugin module 'acme_not_installed': No module named 'acme_not_installed'"
    )
    monkeypatch.setenv("DEFCHECK_PLUGINS", "fixture_plugin, acme_not_installed")
    assert cli(*command)[0] == 2


# 3. a plugin that fails to load is reported, once, by every command that loads plugins


def test_checkers_and_report_report_a_failing_plugin_once(cli, plugin_dir, saved_report):
    write_module(plugin_dir, "acme_raises", RAISES)
    expected = "plugin 'acme_raises': defcheck_checkers raised OSError: cannot reach the acme checker registry"
    for args in (["checkers"], ["checkers", "--json"], ["report", str(saved_report), "-f", "json"]):
        code, _, err = cli("-p", "acme_raises", *args)
        assert code == 0, err
        assert err.splitlines().count(expected) == 1, (args, err)
        assert cli("-p", "acme_raises", "-q", *args)[2] == ""


def test_report_plugin_problems_prints_once_per_invocation(plugin_dir, capsys):
    write_module(plugin_dir, "acme_raises_twice", RAISES)
    settings = Settings(plugin_modules=("acme_raises_twice",))
    report_plugin_problems(settings)
    report_plugin_problems(settings)
    assert capsys.readouterr().err.count("plugin 'acme_raises_twice'") == 1


# 4. new --unit takes any registered unit kind


@pytest.mark.parametrize(("plugin", "unit"), [((), "policy"), (("-p", "acme_region"), "acme_region")])
def test_new_takes_a_plugins_unit_kind(cli, plugin_dir, tmp_path, plugin, unit):
    """`policy` is the built-in gridworld plugin's kind, `acme_region` a third party's."""
    write_module(plugin_dir, "acme_region", REGION)
    path = tmp_path / "agent.yaml"
    code, _, err = cli(*plugin, "new", "good_agent", "--unit", unit, "-o", str(path))
    assert code == 0, err
    concept, problems = load_concept_file(path)
    assert problems == []
    assert concept is not None
    assert concept.concept.unit == unit
    code, _, err = cli("-p", "no:gridworld", "new", "good_agent", "--unit", unit, "-o", str(tmp_path / "other.yaml"))
    assert code == 2
    assert f"unknown unit kind '{unit}'" in err
    assert not (tmp_path / "other.yaml").exists()


def test_new_unknown_unit_kind_suggests_the_closest(cli, tmp_path):
    code, out, err = cli("new", "fine", "--unit", "atention_head", "-o", str(tmp_path / "fine.yaml"))
    assert (code, out) == (2, "")
    assert "Invalid value for '--unit': unknown unit kind 'atention_head'; did you mean 'attention_head'?" in err
    assert "Traceback" not in err


def test_cli_keeps_no_table_of_unit_kinds():
    cli_dir = Path(__file__).resolve().parents[1] / "defcheck" / "cli"
    for path in cli_dir.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "UNIT_KINDS" not in text and '"mlp_neuron"' not in text, path


# 5. -f/--output-format and -o FILE alike in every command with output


@pytest.mark.parametrize(
    ("command", "default"),
    [(["list", *WIDE_HEAD], "table"), (["plugins"], "table"), (["checkers"], "table"), (["validate"], "text")],
)
def test_format_json_is_the_json_flag(cli, monkeypatch, tmp_path, command, default):
    monkeypatch.chdir(tmp_path)
    command = ["-p", "fixture_plugin", *command]
    code, as_flag, _ = cli(*command, "--json")
    assert code == 0
    json.loads(as_flag)
    assert cli(*command, "-f", "json")[:2] == (0, as_flag)
    assert cli(*command, "--output-format", "json")[:2] == (0, as_flag)
    assert cli(*command, "--format", default)[:2] == cli(*command)[:2]
    code, out, err = cli(*command, "--json", "-f", default)
    assert (code, out) == (2, "")
    assert f"--json and --format {default} ask for two formats" in err


def test_checkers_format_markdown_is_the_markdown_flag(cli):
    code, out, _ = cli("checkers", "--markdown")
    assert code == 0
    assert cli("checkers", "-f", "markdown")[:2] == (0, out)
    assert cli("checkers", "--markdown", "--json")[0] == 2


@pytest.mark.parametrize(
    "command",
    [
        ["schema"],
        ["list", *WIDE_HEAD],
        ["list", "--json", *WIDE_HEAD],
        ["plugins"],
        ["checkers", "-f", "json"],
        ["checkers", "--markdown"],
        ["validate", "-f", "json"],
        ["validate"],
    ],
)
def test_output_file_means_the_same_in_every_command(cli, monkeypatch, tmp_path, command):
    monkeypatch.chdir(tmp_path)
    command = ["-p", "fixture_plugin", *command]
    code, printed, _ = cli(*command)
    assert code == 0
    target = tmp_path / "new folder" / "out.txt"  # its folder is made
    assert cli(*command, "-o", str(target)) == (0, "", f"wrote {target}\n")
    assert target.read_text(encoding="utf-8") == printed
    assert cli(*command, "--output", str(target), "-q") == (0, "", "")
    assert cli(*command, "-o", "-")[:2] == (0, printed)
    assert [path.name for path in target.parent.iterdir()] == ["out.txt"]  # no temporary file left behind


def test_an_unwritable_output_is_one_error(cli, tmp_path):
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    code, out, err = cli("plugins", "-o", str(tmp_path / "a_file" / "out.json"))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: cannot write {tmp_path / 'a_file' / 'out.json'}: ")
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["-f", "--format", "--output-format"])
def test_report_takes_every_format(cli, saved_report, tmp_path, option):
    code, out, _ = cli("report", str(saved_report), option, "json")
    assert code == 0
    assert json.loads(out) == json.loads(saved_report.read_text(encoding="utf-8"))
    assert cli("report", str(saved_report), option, "markdown")[1].startswith("#")
    assert "<html" in cli("report", str(saved_report), option, "html")[1]
    sarif = json.loads(cli("report", str(saved_report), option, "sarif")[1])
    assert sarif["version"] == "2.1.0"
    junit = ET.fromstring(cli("report", str(saved_report), option, "junit")[1])
    assert junit.tag == "testsuites"
    code, github, _ = cli("report", str(saved_report), option, "github")
    assert code == 0
    assert github.strip()
    code, terminal, _ = cli("report", str(saved_report), option, "terminal")
    assert "wide_head" in terminal
    target = tmp_path / "report.md"
    assert cli("report", str(saved_report), option, "markdown", "-o", str(target)) == (0, "", f"wrote {target}\n")
    assert target.read_text(encoding="utf-8").startswith("#")


def test_report_unknown_format_suggests_the_closest(cli, saved_report):
    code, out, err = cli("report", str(saved_report), "-f", "sarfi")
    assert (code, out) == (2, "")
    assert err.startswith("error: unknown report format 'sarfi'; did you mean 'sarif'? (known: terminal, ")


# 6. piped output honours COLUMNS; names are never broken mid-word


def test_output_width_honours_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "87")
    assert output_width() == 87
    monkeypatch.delenv("COLUMNS")
    assert output_width() == PIPE_WIDTH  # stdout is captured, not a terminal
    monkeypatch.setenv("COLUMNS", "not a number")
    assert output_width() == PIPE_WIDTH


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_list_fits_columns_and_keeps_definition_names_whole(cli, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = cli("-p", "fixture_plugin", "list", *WIDE_HEAD)
    assert code == 0
    assert_whole_tables(out, columns)
    for name in ("wide_head.spreads_attention", "wide_head.large_output", "attention_entropy", "head_norm_ratio"):
        assert name in out


@pytest.mark.parametrize("columns", [60, 90, 200])
def test_builtin_list_keeps_definition_ids_whole_down_to_twice_their_length(cli, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = cli("list")
    assert code == 0
    assert_whole_tables(out, columns)
    ids = [d["id"] for concept in json.loads(cli("list", "--json")[1])["concepts"] for d in concept["definitions"]]
    for definition_id in ids:
        assert (definition_id in out) == (len(definition_id) <= columns // 2), definition_id


def assert_whole_tables(out: str, columns: int) -> None:
    """Every line fits, and no table is cropped: each row ends with its right border."""
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    rows = [line.rstrip() for line in lines if line.startswith(("│", "┃", "┏", "┡", "└"))]
    assert rows
    assert all(row.endswith(("│", "┃", "┓", "┩", "┘")) for row in rows), "\n".join(rows)


def test_checkers_keeps_checker_names_whole(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = cli("checkers")
    assert code == 0
    assert_whole_tables(out, 120)
    names = [row["name"] for row in json.loads(cli("checkers", "--json")[1])["checkers"]]
    assert names
    for name in names:
        assert name in out, name


# 7. --config means the project file in every command that reads it


def test_every_config_option_is_the_same_option():
    helps = {
        name: param.help
        for name, command in main.commands.items()
        for param in command.params
        if "--config" in param.opts
    }
    assert {"validate", "run"} <= set(helps)
    assert len(set(helps.values())) == 1, helps


def test_validate_reads_the_project_file_given_by_config(cli, tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "concepts").mkdir(parents=True)
    (project / "concepts" / "bad.yaml").write_text(BAD, encoding="utf-8")
    (project / "defcheck.yaml").write_text("definitions: [concepts]\nbuiltin: false\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, _ = cli("validate")
    assert code == 0  # no project file here: only the built-in concepts
    assert "project file" not in out
    for config in (project / "defcheck.yaml", project):
        code, out, _ = cli("validate", "--config", str(config))
        assert code == 1
        assert "bad.yaml" in out
        assert out.splitlines()[-1].startswith(f"project file {project / 'defcheck.yaml'}, ")
    code, out, err = cli("validate", "--config", "missing.yaml")
    assert (code, out) == (2, "")
    assert err.strip() == "error: the project file missing.yaml does not exist"


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_short_c_is_refused_with_the_two_long_options_named(cli, command):
    """`-c` is --config in semgrep and pytest; defcheck's concept selection is --concept only."""
    code, out, err = cli(command, "--no-config", "-c", "induction_head")
    assert code == 2 and out == ""
    assert "-c is ambiguous" in err and "--concept NAME" in err and "--config FILE" in err
