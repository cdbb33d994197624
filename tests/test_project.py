"""The project file (defcheck/ci/project.py): schema with located errors, discovery, names against the registry,
and how `defcheck validate` treats the files pre-commit hands it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from defcheck.ci.project import (
    CountExpectation,
    MembershipExpectation,
    MetricExpectation,
    check_project,
    find_project,
    load_project,
    looks_like_concept_file,
    model_name,
    read_project,
    resolve_project,
)
from defcheck.diagnostics import DefcheckError, DiagnosticsError
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry

FIXTURES = Path(__file__).parent / "fixtures"

GOOD = """\
models:
  - builtin:toy-induction
  - {name: small, ref: ckpt/small.pt, config: ckpt/small.json, bos_token_id: 0, token_ids: [1, 64]}
definitions: concepts
builtin: false
seed: 3
tolerance: 0.01
expectations:
  - {unit: 1.10, concept: wide_head, in: both}
  - {unit: [0.1, "1.2"], definition: wide_head.large_output, member: false, model: small}
  - {concept: wide_head, metric: jaccard, threshold: ">= 0.5", name: wide heads agree}
  - {concept: wide_head, in: mechanistic_only, count: 0}
  - {definition: wide_head.spreads_attention, count: {min: 1, max: 3}}
  - {definition: wide_head.spreads_attention, count: ">=1"}
"""


def write(folder: Path, text: str, name: str = "defcheck.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()  # the repository's root: discovery stops here
    (tmp_path / "concepts").mkdir()
    (tmp_path / "concepts" / "wide_head.yaml").write_text(
        (FIXTURES / "concepts" / "wide_head.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def errors_of(path: Path) -> list[str]:
    _, diagnostics = load_project(path)
    return [str(d) for d in diagnostics if d.severity == "error"]


def test_a_good_file_loads_with_every_kind(project_dir):
    project, diagnostics = load_project(write(project_dir, GOOD))
    assert diagnostics == [] and project is not None
    assert project.project.seed == 3 and project.project.tolerance == 0.01 and project.project.builtin is False
    assert project.project.definitions == ["concepts"]
    assert [(name, spec.ref) for name, spec in project.models()] == [
        ("toy-induction", "builtin:toy-induction"),
        ("small", "ckpt/small.pt"),
    ]
    small = project.project.models[1]
    assert small.token_ids == "1:64" and small.bos_token_id == 0
    assert project.model_reference(small) == "ckpt/small.pt"  # relative to the file, seen from the cwd
    assert project.model_config_path(small) == "ckpt/small.json"
    kinds = [(e.kind, type(e.spec)) for e in project.expectations]
    assert kinds == [
        ("membership", MembershipExpectation),
        ("membership", MembershipExpectation),
        ("metric", MetricExpectation),
        ("count", CountExpectation),
        ("count", CountExpectation),
        ("count", CountExpectation),
    ]
    first, second, metric, category, between, at_least = project.expectations
    assert first.spec.units == ["1.10"]  # unquoted 1.10 is read as written, not as the number 1.1
    assert second.spec.units == ["0.1", "1.2"] and second.spec.member is False and second.spec.model == "small"
    assert [e.line for e in project.expectations] == [9, 10, 11, 12, 13, 14]
    assert first.describe() == "wide_head: 1.10 is in both kinds"
    assert second.describe() == "wide_head.large_output: 0.1, 1.2 are not members"
    assert metric.describe() == "wide heads agree"
    assert category.describe() == "wide_head: exactly 0 unit(s) mechanistic only"
    assert between.describe() == "wide_head.spreads_attention: between 1 and 3 member(s)"
    assert at_least.spec.count == ">= 1" and at_least.spec.accepts(1) and not at_least.spec.accepts(0)
    assert between.spec.accepts(3) and not between.spec.accepts(4) and not between.spec.accepts(0)
    assert category.spec.accepts(0) and not category.spec.accepts(1)


def test_a_subfolder_project_resolves_paths_against_its_own_folder(project_dir):
    write(project_dir / "sub", "models: [{ref: weights/m.pt, config: weights/m.json}]\n")
    project, _ = load_project(project_dir / "sub" / "defcheck.yaml")
    (spec,) = project.project.models
    assert project.model_reference(spec) == "sub/weights/m.pt"
    assert project.model_config_path(spec) == "sub/weights/m.json"
    assert project.definition_paths() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tolerence: 0.1\n", "defcheck.yaml:1:1: tolerence: unknown key 'tolerence'; did you mean 'tolerance'?"),
        ("models: [{ref: a.pt, colour: red}]\n", "defcheck.yaml:1:22: models[0].colour: unknown key 'colour'"),
        ("seed: -1\n", "defcheck.yaml:1:7: seed: Input should be greater than or equal to 0; got int -1"),
        (
            "expectations:\n  - {unit: '1.4', concept: c, in: bothh}\n",
            "defcheck.yaml:2:35: expectations[0].in: must be one of both, behavioral, mechanistic, behavioral_only, "
            "mechanistic_only, neither; got str 'bothh'; did you mean 'both'?",
        ),
        (
            "expectations:\n  - {concept: c, metric: jacard, threshold: '>= 0.5'}\n",
            "defcheck.yaml:2:26: expectations[0].metric: must be one of jaccard, precision, recall, spearman; "
            "got str 'jacard'; did you mean 'jaccard'?",
        ),
        (
            "expectations:\n  - {concept: c, metirc: jaccard, threshold: '>= 0.5'}\n",
            "defcheck.yaml:2:5: expectations[0]: an expectation has one of 'unit' (where units fall), 'metric' "
            "(an overlap metric) or 'count' (how many units) (unknown key 'metirc'; did you mean 'metric'?)",
        ),
        (
            "expectations:\n  - {unit: '1.4', concept: c}\n",
            "defcheck.yaml:2:5: expectations[0]: say where the unit falls: in: both | behavioral",
        ),
        (
            "expectations:\n  - {unit: '1.4', concept: c, definition: c.d, in: both}\n",
            "defcheck.yaml:2:5: expectations[0]: give either 'concept' (with 'in') or 'definition'",
        ),
        (
            "expectations:\n  - {definition: induction_head, count: 2}\n",
            "defcheck.yaml:2:18: expectations[0].definition: got 'induction_head'; a definition is named "
            "'concept.definition'",
        ),
        (
            "expectations:\n  - {definition: a.b, count: {min: 3, max: 1}}\n",
            "defcheck.yaml:2:30: expectations[0].count: min 3 is larger than max 1",
        ),
        (
            "expectations:\n  - {concept: c, metric: jaccard, threshold: {top_k: 2}}\n",
            "defcheck.yaml:2:46: expectations[0].threshold: a metric is compared with a number",
        ),
        (
            "expectations:\n  - {concept: c, metric: jaccard, threshold: '=> 0.5'}\n",
            "defcheck.yaml:2:46: expectations[0].threshold: '=> 0.5' is not a threshold; did you mean '>= 0.5'?",
        ),
        (
            "expectations:\n  - {unit: 1.x, definition: a.b}\n",
            "defcheck.yaml:2:12: expectations[0].unit: got '1.x'; a unit address is LAYER.INDEX",
        ),
        ("expectations:\n  - 5\n", "defcheck.yaml:2:5: expectations[0]: an expectation is a mapping"),
        ("- a list\n", "defcheck.yaml:1:1: a project file is a mapping (key: value), not a list"),
        ("models: [a, b]\nmodels: []\n", "defcheck.yaml:2:1: models: the key 'models' appears twice in this mapping"),
        ("", "defcheck.yaml:1:1: the file is empty; a project file is a YAML mapping"),
    ],
)
def test_schema_errors_are_located(project_dir, text, expected):
    found = errors_of(write(project_dir, text))
    assert any(line.startswith(expected) for line in found), found


def test_every_error_of_a_file_comes_in_one_pass(project_dir):
    text = """\
        models: [a.pt, {name: a, ref: b.pt}]
        definitions: [nowhere]
        expectations:
          - {unit: '1.4', concept: c, in: both, model: b}
          - {concept: c, metric: jaccard, threshold: nope}
        """
    found = errors_of(write(project_dir, text))
    assert found == [
        "defcheck.yaml:1:16: models[1]: two models are named 'a' (also models[0]); give one a different 'name:'",
        "defcheck.yaml:2:15: definitions[0]: 'nowhere' does not exist (relative to defcheck.yaml)",
        "defcheck.yaml:4:48: expectations[0].model: no model is named 'b' (models here: a)",
        "defcheck.yaml:5:46: expectations[1].threshold: 'nope' is not a threshold; use a comparison such as "
        "'>= 0.4', '> 0' or '< -0.2', or a rank rule such as {top_k: 3}",
    ]
    with pytest.raises(DiagnosticsError):
        read_project(project_dir / "defcheck.yaml")


def test_names_are_checked_against_the_registry(project_dir):
    text = """\
        concepts: [wide_heads, wide_head.large_outputs]
        expectations:
          - {unit: '1.4', concept: wide_haed, in: both}
          - {definition: wide_head.spreads, count: 1}
          - {definition: nope.spreads, count: 1}
        """
    project, diagnostics = load_project(write(project_dir, text))
    assert diagnostics == []
    registry = load_registry(
        [project_dir / "concepts"], load_plugins(modules=["fixture_plugin"]), include_builtin=False
    )
    found = [str(d) for d in check_project(project, registry)]
    assert found == [
        "defcheck.yaml:1:12: concepts[0]: no concept 'wide_heads' is loaded; did you mean 'wide_head'? "
        "(concepts: wide_head)",
        "defcheck.yaml:1:24: concepts[1]: no definition 'wide_head.large_outputs'; did you mean "
        "'wide_head.large_output'? (in wide_head: wide_head.large_output, wide_head.spreads_attention)",
        "defcheck.yaml:3:28: expectations[0].concept: no concept 'wide_haed' is loaded; did you mean 'wide_head'? "
        "(concepts: wide_head)",
        "defcheck.yaml:4:18: expectations[1].definition: no definition 'wide_head.spreads'; did you mean "
        "'wide_head.spreads_attention'? (in wide_head: "
        "wide_head.large_output, wide_head.spreads_attention)",
        "defcheck.yaml:5:18: expectations[2].definition: no concept 'nope' is loaded (concepts: wide_head)",
    ]


def test_discovery_walks_up_and_stops_at_the_repository_root(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    deep = repo / "a" / "b"
    deep.mkdir(parents=True)
    (repo / ".git").mkdir()
    write(tmp_path, "seed: 1\n")  # above the repository: never found
    assert find_project(deep) is None
    write(repo, "seed: 2\n", "defcheck.yml")
    assert find_project(deep) == (repo / "defcheck.yml").resolve()
    write(repo / "a", "seed: 3\n")
    assert find_project(deep) == (repo / "a" / "defcheck.yaml").resolve()
    monkeypatch.chdir(deep)
    assert resolve_project(None, False) == (repo / "a" / "defcheck.yaml").resolve()
    assert resolve_project(None, True) is None
    assert resolve_project(repo, False) == repo / "defcheck.yml"
    with pytest.raises(DefcheckError, match="does not exist"):
        resolve_project(repo / "missing.yaml", False)
    with pytest.raises(DefcheckError, match=r"folder without a defcheck\.yaml"):
        resolve_project(repo / "a" / "b", False)


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("builtin:toy-induction", "toy-induction"),
        ("tl:gpt2", "gpt2"),
        ("checkpoints/small.pt", "small"),
        ("checkpoint:/abs/m.pth", "m"),
        ("tl:EleutherAI/pythia-70m", "pythia-70m"),
        ("weird name!.pt", "weird-name"),
    ],
)
def test_model_names(reference, name):
    assert model_name(reference) == name


# --- what pre-commit hands `validate` ----------------------------------------------------------------------------

WORKFLOW = """\
name: ci
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
"""
OPENAPI = "swagger: '2.0'\ndefinitions:\n  Pet:\n    type: object\n    properties: {name: {type: string}}\n"


@pytest.mark.parametrize(
    ("text", "is_concept"),
    [
        ((FIXTURES / "concepts" / "wide_head.yaml").read_text(encoding="utf-8"), True),
        ("concep: x\ndefinitions:\n  a: {kind: behavioral, all: []}\n", True),  # concept: misspelled
        ("- concept: listed\n", True),
        ("", True),
        ("# concept: commented out\n", True),
        ("concept: [unclosed\n", True),
        (WORKFLOW, False),
        (OPENAPI, False),
        ("- id: hook\n  entry: x\n", False),  # .pre-commit-hooks.yaml
        ("a: 1\n---\nb: 2\n", False),  # a multi-document manifest
        ("{{ .Values.x }}: [\n", False),  # a Helm template: not YAML
        ("# just a comment\n", False),
    ],
)
def test_which_yaml_files_are_concept_files(tmp_path, text, is_concept):
    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8")
    assert looks_like_concept_file(path) is is_concept


@pytest.fixture
def precommit_repo(project_dir):
    """A repository with a project file, two concept files that refer to each other, and a workflow."""
    write(
        project_dir,
        "definitions: [concepts]\nbuiltin: false\nexpectations:\n  - {concept: wide_head, in: both, count: 1}\n",
    )
    write(project_dir / ".github" / "workflows", WORKFLOW, "ci.yml")
    write(
        project_dir / "concepts",
        """\
        concept: narrow_head
        unit: attention_head
        summary: Refers to a definition in another file.
        definitions:
          narrow:
            kind: mechanistic
            source: test
            all:
              - checker: head_norm_ratio
                with: wide_head.spreads_attention
                threshold: "> 1"
        """,
        "narrow_head.yaml",
    )
    return project_dir


def test_validate_as_a_pre_commit_hook(cli, precommit_repo):
    code, out, err = cli(
        "-p",
        "fixture_plugin",
        "validate",
        "--json",
        "defcheck.yaml",
        ".github/workflows/ci.yml",
        "concepts/narrow_head.yaml",
    )
    payload = json.loads(out)
    assert (code, payload["errors"]) == (0, 0), out + err
    (skipped,) = payload["diagnostics"]
    assert skipped["file"] == ".github/workflows/ci.yml" and skipped["severity"] == "warning"
    assert skipped["code"] == "not-a-concept-file"
    # narrow_head's with: resolves because the project's folder is loaded as context


def test_validate_reports_only_the_files_given(cli, precommit_repo):
    write(precommit_repo / "concepts", "concept: broken\nunit: attention_head\n", "broken.yaml")  # not changed
    code, out, _ = cli("-p", "fixture_plugin", "validate", "concepts/narrow_head.yaml")
    assert code == 0, out
    code, out, _ = cli("-p", "fixture_plugin", "validate")  # no files: the whole project
    assert code == 1 and "concepts/broken.yaml:1:1: summary: 'summary' is required" in out
    assert "project file defcheck.yaml" in out


def test_validate_fails_on_a_bad_changed_file_and_a_bad_project_file(cli, precommit_repo):
    write(
        precommit_repo,
        "definitions: [concepts]\nbuiltin: false\nexpectations:\n  - {concept: wide_haed, in: both, count: 1}\n",
    )
    write(
        precommit_repo / "concepts",
        (precommit_repo / "concepts" / "narrow_head.yaml").read_text().replace("kind: mechanistic", "kind: mechanic"),
        "narrow_head.yaml",
    )
    code, out, _ = cli("-p", "fixture_plugin", "validate", "defcheck.yaml", "concepts/narrow_head.yaml")
    assert code == 1
    assert "defcheck.yaml:4:15: expectations[0].concept: no concept 'wide_haed' is loaded" in out
    assert "concepts/narrow_head.yaml:6:11: definitions.narrow.kind: must be one of behavioral, mechanistic" in out
    assert "2 error(s)" in out


def test_validate_without_a_project_is_unchanged(cli, tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    write(tmp_path, WORKFLOW, "ci.yml")
    code, out, _ = cli("validate", "--no-builtin", "ci.yml")
    assert code == 0 and "ci.yml: warning: skipped: not a concept file" in out
    code, out, _ = cli("validate", "--no-config", "--no-builtin")
    assert code == 0 and "0 concept(s)" in out


def test_names_in_a_concept_file_with_errors_are_not_reported_again(project_dir):
    text = (FIXTURES / "concepts" / "wide_head.yaml").read_text(encoding="utf-8").replace("wide_head", "broken_head")
    assert "threshold:" in text
    broken = text.replace("threshold:", "threshold: bad  # was", 1)
    (project_dir / "concepts" / "broken_head.yaml").write_text(broken, encoding="utf-8")
    project, _ = load_project(
        write(project_dir, "concepts: [broken_head, wide_head.spreads_attention, broken_hed, broken_head.nope]\n")
    )
    registry = load_registry(
        [project_dir / "concepts"], load_plugins(modules=["fixture_plugin"]), include_builtin=False
    )
    assert [d.code for d in registry.errors] == ["schema"]  # the bad threshold, in broken_head.yaml
    assert "broken_head.spreads_attention" in registry.unloaded
    found = [(d.field, d.code) for d in check_project(project, registry)]
    assert found == [("concepts[2]", "unknown-concept")]  # a typo is still one; the broken file's names are not
