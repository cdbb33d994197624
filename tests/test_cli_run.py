"""``defcheck run`` and ``defcheck sweep`` as users of ruff, semgrep and pytest expect them (issue 13, point 6),
and one code path behind run, sweep and defcheck.check (the same report, byte for byte)."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET

import pytest

import defcheck
from defcheck.report import Report

MODEL = "builtin:toy-induction@1000"
CONCEPT = "previous_token_head"
RUN = ("run", "--no-config", "-m", MODEL, "--concept", CONCEPT)
PROJECT = f"""\
models: [builtin:toy-induction]
concepts: [{CONCEPT}]
expectations:
  - {{concept: {CONCEPT}, metric: jaccard, threshold: ">= 0"}}
  - {{concept: {CONCEPT}, metric: jaccard, threshold: ">= 0.99"}}
"""
BROKEN_PLUGIN = """\
from defcheck import hookimpl


@hookimpl
def defcheck_checkers():
    raise OSError("cannot reach the acme checker registry")
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def project(here):
    (here / "defcheck.yaml").write_text(PROJECT, encoding="utf-8")
    return here


# -- one code path: run, sweep and check give the same report ---------------------------------------------------


def test_run_sweep_and_check_build_the_same_report(cli, here):
    code, printed, _ = cli(*RUN, "-f", "json")
    assert code == 0
    code, _, err = cli("-q", "sweep", "--no-config", "-k", "builtin:toy-induction@*", "--steps", "1000",
                       "--concept", CONCEPT, "--output-dir", "swept", "--no-plots")  # fmt: skip
    assert code == 0, err
    swept = Report.from_json((here / "swept" / "reports" / "step-001000.json").read_text(encoding="utf-8"))
    assert swept.data.pop("sweep")["step"] == 1000  # the sweep's own block; the model reference is the same
    checked = defcheck.check(defcheck.load_model(MODEL), concepts=[CONCEPT], model_info={"reference": MODEL})
    assert printed == swept.to_json() == checked.to_json()
    assert json.loads(printed)["model"]["name"] == MODEL


# -- -q: one line per model, then only what failed ---------------------------------------------------------------


def test_quiet_run_prints_one_line_per_model_and_what_failed(cli, project):
    for arguments in (("-q", "run"), ("run", "-q")):
        code, out, err = cli(*arguments)
        assert code == 1 and err == ""
        lines = out.splitlines()
        assert lines[0] == "toy-induction: 1 concept, 3 definitions, 0 errors; expectations 1/2 passed"
        assert len(lines) == 2 and lines[1].startswith(f"  FAILED  defcheck.yaml:5: {CONCEPT}: jaccard >= 0.99: ")
    code, out, _ = cli("run")  # without -q: the whole report, then the expectations
    assert (
        code == 1 and out.startswith("defcheck report") and "expectations on toy-induction: 1 passed, 1 failed" in out
    )


# -- one way to choose outputs -------------------------------------------------------------------------------------


def test_two_formats_on_stdout_are_a_usage_error(cli, here):
    code, out, err = cli(*RUN, "-f", "json", "-f", "markdown")
    assert (code, out) == (2, "")
    assert "only one format can go to stdout" in err and "-o FORMAT=FILE" in err
    assert cli(*RUN, "-f", "json", "-o", "markdown=-")[:2] == (2, "")  # `-o -` is stdout too
    code, out, _ = cli(*RUN, "-o", "json=-")
    assert code == 0 and out.startswith("defcheck report") and '\n{\n  "concepts"' in out  # terminal, then JSON


def test_output_files_take_every_format_named_or_by_suffix(cli, here):
    code, out, err = cli(*RUN, "-f", "json", "-f", "markdown", "-o", "markdown=out/r.md", "-o", "r.sarif",
                         "-o", "r.xml", "-o", "html=page")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["model"]["name"] == MODEL  # the one format left for stdout
    assert (here / "out" / "r.md").read_text(encoding="utf-8").startswith("# ")
    assert json.loads((here / "r.sarif").read_text(encoding="utf-8"))["version"] == "2.1.0"
    assert ET.fromstring((here / "r.xml").read_text(encoding="utf-8")).tag in ("testsuites", "testsuite")
    assert (here / "page").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    for name in ("out/r.md", "r.sarif", "r.xml", "page"):
        assert f"wrote {name}" in err
    code, _, _ = cli(*RUN, "-f", "json", "-o", "anything.txt")  # the only -f given
    assert code == 0 and json.loads((here / "anything.txt").read_text(encoding="utf-8"))["seed"] == 0


def test_an_output_whose_format_cannot_be_told_is_a_usage_error(cli, here):
    code, out, err = cli(*RUN, "-o", "report.txt")
    assert (code, out) == (2, "") and "-o report.txt: say which format goes there, e.g. -o json=report.txt" in err
    code, _, err = cli(*RUN, "-o", "terminal=t.txt")
    assert code == 2 and "the terminal format is for stdout" in err


@pytest.mark.parametrize(("name", "check"), [("sarif", '"version": "2.1.0"'), ("junit", "<testsuite")])
def test_sarif_and_junit_are_formats_for_stdout_too(cli, here, name, check):
    code, out, _ = cli(*RUN, "-f", name)
    assert code == 0 and check in out and "defcheck report" not in out


def test_unknown_format_suggests_the_closest(cli, here):
    code, out, err = cli(*RUN, "-f", "jsno")
    assert (code, out) == (2, "")
    assert err.startswith("error: unknown report format 'jsno'; did you mean 'json'? (known: terminal, github, junit")


def test_output_dir_writes_every_chosen_format_and_out_is_its_old_name(cli, here):
    code, out, err = cli(*RUN, "-f", "json", "-f", "markdown", "--output-dir", "reports")
    assert (code, out) == (0, "")
    assert sorted(p.name for p in (here / "reports").iterdir()) == ["report.json", "report.md"]
    code, out, err = cli(*RUN, "--out", "old")
    assert code == 0 and "note: --out DIR is deprecated; use --output-dir DIR" in err
    assert [p.name for p in (here / "old").iterdir()] == ["report.json"]  # no -f format to write: the JSON
    assert "defcheck report" in out  # the terminal view is still printed


@pytest.mark.parametrize(("option", "name"), [("--json", "json"), ("--markdown", "markdown"), ("--sarif", "sarif")])
def test_the_old_file_options_still_work_with_a_note(cli, here, option, name):
    code, _, err = cli(*RUN, "-q", option, "old.file")
    assert code == 0 and (here / "old.file").stat().st_size > 0
    assert f"note: {option} FILE is deprecated; use -o {name}=old.file" in err


def test_run_json_is_no_longer_a_visible_file_option():
    from defcheck.cli import main

    visible = {
        opt for param in main.commands["run"].params if not getattr(param, "hidden", False) for opt in param.opts
    }
    assert {"-f", "--format", "--output-format", "-o", "--output", "--output-dir"} <= visible
    assert not visible & {"--json", "--markdown", "--junit", "--sarif", "--out"}


def test_github_format_prints_each_finding_on_stdout_only(cli, project):
    code, out, err = cli("run", "-f", "github")
    assert code == 1
    assert out.count("::error file=defcheck.yaml,line=5") == 1
    assert "jaccard >= 0.99" not in err  # not repeated on stderr: the annotations carry it


# -- selection, plugins, and the project file in sweep ------------------------------------------------------------


@pytest.mark.parametrize("command", [("run", "--no-config"), ("sweep", "--no-config", "-k", "builtin:toy-induction@*")])
def test_an_unknown_concept_is_an_error_with_a_did_you_mean(cli, here, command):
    code, out, err = cli(*command, "--concept", "previous_token_haed")
    assert (code, out) == (2, "")
    assert (
        err.strip() == "error: unknown concept or definition: previous_token_haed; did you mean 'previous_token_head'?"
    )
    assert not (here / "sweep").exists()


def test_nothing_to_check_is_an_error(cli, here):
    (here / "empty").mkdir()
    code, _, err = cli("run", "--no-config", "--no-builtin", "-d", "empty")
    assert code == 2 and err.startswith("error: nothing to check: no definitions were loaded")


@pytest.mark.parametrize("command", [RUN, ("sweep", "--no-config", "-k", "builtin:toy-induction@*", "--steps", "1")])
def test_a_plugin_that_fails_to_load_is_reported_by_run_and_sweep(cli, here, monkeypatch, command):
    # a module name of this test's own: the CLI runs in this process, and other tests import their own acme_broken
    (here / "acme_unreachable.py").write_text(BROKEN_PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(here))
    monkeypatch.delitem(sys.modules, "acme_unreachable", raising=False)
    plugin = ("-p", "acme_unreachable")
    _, _, err = cli(*plugin, *command, "-f", "json") if command == RUN else cli(*plugin, *command)
    expected = "plugin 'acme_unreachable': defcheck_checkers raised OSError: cannot reach the acme checker"
    assert err.count(expected) == 1


def test_sweep_reads_the_project_file_like_run(cli, here):
    project = here / "project"
    project.mkdir()
    (project / "defcheck.yaml").write_text(f"concepts: [{CONCEPT}]\nseed: 3\n", encoding="utf-8")
    sweep = ("-q", "sweep", "-k", "builtin:toy-induction@*", "--steps", "1000", "--no-plots")
    assert cli(*sweep, "--config", str(project), "--output-dir", "a")[0] == 0
    report = json.loads((here / "a" / "reports" / "step-001000.json").read_text(encoding="utf-8"))
    assert report["seed"] == 3 and list(report["concepts"]) == [CONCEPT]
    assert cli(*sweep, "--config", str(project), "--seed", "4", "--output-dir", "b")[0] == 0
    assert json.loads((here / "b" / "reports" / "step-001000.json").read_text(encoding="utf-8"))["seed"] == 4
    code, _, err = cli(*sweep[:-1], "--config", "missing.yaml")
    assert code == 2 and "the project file missing.yaml does not exist" in err


def test_sweeps_old_out_option_still_works_with_a_note(cli, here):
    code, _, err = cli("sweep", "-k", "builtin:toy-induction@*", "--steps", "801", "-o", "old")
    assert code == 2 and "note: --out/-o DIR is deprecated; use --output-dir DIR" in err
