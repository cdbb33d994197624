"""Fuzzing with hypothesis: concept files, saved reports and baselines, and project files never make defcheck raise.

Every input must end in diagnostics or a :class:`DefcheckError`, never another exception, and the command line's
exit code must be one it documents (0 success, 1 findings, 2 an input error). Each fuzz runs twice:

- a short run in the normal suite (a few hundred examples each, seconds);
- a nightly-sized run (>= 10,000 concept files, >= 1,000 mutated reports, 2,000 project files), marked
  ``nightly`` and skipped unless ``DEFCHECK_NIGHTLY=1``: ``DEFCHECK_NIGHTLY=1 pytest -m nightly tests/test_fuzz.py``.

The in-process functions are fuzzed (``load_registry``, ``Report.from_json`` and every renderer, ``load_baseline``
and ``diff_reports``, ``load_project`` and ``check_project``); one example in ten also goes through the command line
(``run_cli``), in-process, for its exit code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import json_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from defcheck.ci.baseline import diff_reports, load_baseline
from defcheck.ci.project import check_project, load_project
from defcheck.cli import run_cli
from defcheck.cli.formats import render
from defcheck.diagnostics import DefcheckError
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry
from defcheck.report import Report

NIGHTLY = os.environ.get("DEFCHECK_NIGHTLY") == "1"
SKIP_NIGHTLY = pytest.mark.skipif(not NIGHTLY, reason="the nightly-sized fuzz: DEFCHECK_NIGHTLY=1 pytest -m nightly")
SHORT = {"validator": 250, "reports": 200, "project": 200}
LONG = {"validator": 10_000, "reports": 1_000, "project": 2_000}
DEFINITIONS = Path(__file__).parent.parent / "definitions"
SEEDS = sorted(path.read_text(encoding="utf-8") for path in DEFINITIONS.glob("*.yaml"))


def fuzz(examples: int, **strategies: Any) -> Callable[[Callable[..., None]], Any]:
    """``@given(**strategies)`` with ``examples`` examples, no deadline and no example database."""

    def wrap(body: Callable[..., None]) -> Any:
        return settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(**strategies)(body))

    return wrap


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _cli(*args: str) -> int:
    """The command line in-process; output is discarded. An exception other than a clean exit escapes."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return run_cli(list(args))


# --- concept files -----------------------------------------------------------------------------------------

HUGE = ["9" * 400, "1e999", "-1e999", ".nan", ".inf", "-.inf", str(2**64), "1.0e+32", "0x" + "f" * 40]
_KEYS = st.one_of(
    st.sampled_from(
        [
            "concept",
            "unit",
            "summary",
            "references",
            "definitions",
            "builtin",
            "kind",
            "source",
            "all",
            "any",
            "checker",
            "params",
            "probe",
            "threshold",
            "with",
            "name",
            "top_k",
            "min",
            "n",
            "length",
        ]
    ),
    st.text(max_size=8),
    st.none(),
    st.integers(-5, 5),
    st.booleans(),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "x\udfffy", "\x1b[31m", "[/bold]", "\u202e", "<img src=x>"]),
    st.sampled_from(
        [
            "behavioral",
            "mechanistic",
            "attention_head",
            "mlp_neuron",
            "policy",
            "attention_pattern",
            "composition",
            "head_norm",
            "ov_eigenvalue_copying",
            "repeated_random_tokens",
            "induction_head.k_composition",
            "token_detector_neuron.fires_on_one_token",
            ">= 0.4",
            "< -1e999",
            ">= 1e999",
            "extend",
            "replace",
        ]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=30,
)
_CRITERIA = st.fixed_dictionaries(
    {"checker": _SCALARS, "threshold": _VALUES},
    optional={"params": _VALUES, "probe": _VALUES, "with": _VALUES},
)
_DEFINITION = st.fixed_dictionaries(
    {"kind": st.sampled_from(["behavioral", "mechanistic"])},
    optional={"all": st.lists(_CRITERIA, max_size=3), "any": st.lists(_CRITERIA, max_size=3), "summary": _SCALARS},
)
_CONCEPTS = st.fixed_dictionaries(
    {"concept": st.sampled_from(["fuzz_concept", "induction_head", "Bad Name"]), "summary": _SCALARS},
    optional={
        "unit": _SCALARS,
        "builtin": _SCALARS,
        "references": _VALUES,
        "definitions": st.dictionaries(st.one_of(st.sampled_from(["d", "e"]), _KEYS), _DEFINITION, max_size=3),
    },
)
_TOKENS = ["[", "]", "{", "}", ": ", "- ", "\n", "\n  ", "'", '"', "&a ", "*a ", "!!python/object:os.system ", "<<: "]
_TOKENS += ["\t", '"\\ud800"', ">= ", "\x00", "null", "~", "? ", "|", *HUGE]


def _dump(document: Any) -> bytes:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")


@st.composite
def _mutated_seed(draw: st.DrawFn) -> bytes:
    """A shipped concept file with a few tokens inserted and spans deleted or copied."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "copy"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(_TOKENS)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        else:
            start = draw(st.integers(0, len(text)))
            text = text[:at] + text[start : start + draw(st.integers(1, 60))] + text[at:]
    return text.encode("utf-8", "surrogatepass")


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    """Nesting around the limit and far past it, in flow and block style."""
    depth = draw(st.sampled_from([1, 63, 64, 65, 66, 999, 1000, 1001, 5000, 100_000]))
    opening, closing = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", ""), ("[{a: ", "}]")]))
    unclosed = draw(st.booleans())
    return f"concept: x\nsummary: {opening * depth}{'' if unclosed else closing * depth}\n".encode()


@st.composite
def _numbers(draw: st.DrawFn) -> bytes:
    """A valid concept file whose threshold (or a parameter) holds a huge or non-finite number."""
    number = draw(st.sampled_from(HUGE))
    where = draw(st.sampled_from(["'>= {n}'", "{{top_k: 3, min: {n}}}", "{{top_k: {n}}}", "'< {n}'"]))
    params = draw(st.sampled_from(["", "\n        params: {{matrix: W_O, n: {n}}}"]))
    text = (
        "concept: fuzz_concept\nsummary: s\ndefinitions:\n  d:\n    kind: mechanistic\n    all:\n"
        f"      - checker: head_norm{params}\n        threshold: {where}\n"
    )
    return text.format(n=number).encode()


CONCEPT_INPUTS = st.one_of(
    _CONCEPTS.map(_dump),
    _VALUES.map(_dump),
    _mutated_seed(),
    _deep(),
    _numbers(),
    st.binary(max_size=300),
    st.text(alphabet="{}[]:-,&*!|>'\"#?\t\n %@`abc0.\\", max_size=120).map(lambda t: t.encode()),
)


def _validator_case(raw: bytes, via_cli: int, scratch: Path, extensions) -> None:
    path = scratch / "case.yaml"
    path.write_bytes(raw)
    registry = load_registry([path], extensions, include_builtin=False)
    for problem in registry.diagnostics:
        assert problem.message and (problem.line is None or problem.line >= 1)
        str(problem).encode("utf-8")  # printable: no lone surrogate reaches the output
    if via_cli == 0:
        assert _cli("validate", "--no-config", "--no-builtin", str(path)) in (0, 1)


@fuzz(SHORT["validator"], raw=CONCEPT_INPUTS, via_cli=st.integers(0, 9))
def test_concept_files_give_diagnostics_not_exceptions(raw, via_cli, scratch, extensions):
    _validator_case(raw, via_cli, scratch, extensions)


@pytest.mark.nightly
@SKIP_NIGHTLY
@fuzz(LONG["validator"], raw=CONCEPT_INPUTS, via_cli=st.integers(0, 9))
def test_concept_files_nightly(raw, via_cli, scratch, extensions):
    _validator_case(raw, via_cli, scratch, extensions)


# --- saved reports and baselines ---------------------------------------------------------------------------

PROJECT = """\
models: [builtin:toy-induction]
concepts: [previous_token_head]
expectations:
  - {concept: previous_token_head, metric: jaccard, threshold: ">= 0.1"}
  - {unit: "1.4", concept: previous_token_head, in: both}
  - {definition: previous_token_head.carries_previous, count: {min: 100}}
"""


@pytest.fixture(scope="module")
def valid_report(tmp_path_factory) -> dict[str, Any]:
    """A real report with a ``checks`` block holding expectations and baseline differences (the baseline is a
    hand-built report of another model, so every kind of difference is in it)."""
    from test_baseline import build

    folder = tmp_path_factory.mktemp("report")
    (folder / "defcheck.yaml").write_text(PROJECT, encoding="utf-8")
    baseline, report = folder / "baseline.json", folder / "report.json"
    baseline.write_text(Report(build()).to_baseline_json(), encoding="utf-8")
    args = ["run", "--config", str(folder / "defcheck.yaml"), "-f", "json", "-o", str(report)]
    assert _cli(*args, "--baseline", str(baseline)) == 1
    loaded = json.loads(report.read_text(encoding="utf-8"))
    assert loaded["checks"]["baseline"]["differences"] and loaded["checks"]["expectations"]
    return loaded


_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
        st.sampled_from(["\ud800", "0.0", "1.4", "ok", "errored", "behavioral", ">= 0.4", "\n::error::forged"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10,
)
_MUTATIONS = st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(["delete", "replace", "add", "nest"]), _JSON_VALUES),
    min_size=1,
    max_size=3,
)


def _mutate(document: dict[str, Any], mutations: list) -> dict[str, Any]:
    data = json.loads(json.dumps(document))
    for where, action, value in mutations:
        paths = [path for path in json_paths(data) if path]
        path = paths[int(where * len(paths))]
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = value
        elif action == "nest":
            parent[key] = json.loads("[" * 200 + json.dumps(parent[key]) + "]" * 200)
        elif isinstance(parent[key], dict):
            parent[key]["zz_added"] = value
        elif isinstance(parent[key], list):
            parent[key].append(value)
    return data


REPORT_FORMATS = ["terminal", "json", "markdown", "html", "sarif", "junit", "github"]


def _report_case(text: str, via_cli: int, fmt: str, scratch: Path, valid: dict[str, Any], extensions) -> None:
    path = scratch / "report.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        report = Report.from_json(path.read_bytes())
    except DefcheckError:
        report = None
    if report is not None:  # accepted: every format renders it, and it compares with a valid one
        report.to_json()
        report.to_markdown()
        report.to_html()
        report.to_terminal(Console(file=io.StringIO(), width=100))
        for name in ("sarif", "junit", "github"):
            render(name, [report], extensions)
        diff_reports(valid, report.data)
        diff_reports(report.data, valid)
    try:
        baseline = load_baseline(path)
    except DefcheckError:
        assert report is None
    else:
        diff_reports(baseline, valid)
    if via_cli == 0:
        assert _cli("report", str(path), "-f", fmt) == (0 if report is not None else 2)


_REPORT_TEXTS = st.one_of(
    st.tuples(st.just("mutate"), _MUTATIONS),
    st.tuples(st.just("raw"), st.sampled_from(["[" * 100_000, "{" * 5000, "", "null", "[]", '{"report_version": 1}'])),
)


def _report_text(case: tuple, valid: dict[str, Any]) -> str:
    kind, value = case
    return json.dumps(_mutate(valid, value)) if kind == "mutate" else value


@fuzz(SHORT["reports"], case=_REPORT_TEXTS, via_cli=st.integers(0, 9), fmt=st.sampled_from(REPORT_FORMATS))
def test_mutated_reports_are_refused_or_rendered(case, via_cli, fmt, scratch, valid_report, extensions):
    _report_case(_report_text(case, valid_report), via_cli, fmt, scratch, valid_report, extensions)


@pytest.mark.nightly
@SKIP_NIGHTLY
@fuzz(LONG["reports"], case=_REPORT_TEXTS, via_cli=st.integers(0, 9), fmt=st.sampled_from(REPORT_FORMATS))
def test_mutated_reports_nightly(case, via_cli, fmt, scratch, valid_report, extensions):
    _report_case(_report_text(case, valid_report), via_cli, fmt, scratch, valid_report, extensions)


# --- project files -----------------------------------------------------------------------------------------

PROJECT_SEED = """\
models:
  - builtin:toy-induction
  - {name: small, ref: ckpt/small.pt, config: ckpt/small.json, bos_token_id: 0, token_ids: [1, 64]}
builtin: true
seed: 3
tolerance: 0.01
concepts: [induction_head]
expectations:
  - {unit: "1.4", concept: induction_head, in: both}
  - {unit: [0.1, "1.2"], definition: induction_head.k_composition, member: false, model: small}
  - {concept: induction_head, metric: jaccard, threshold: ">= 0.5", name: heads agree}
  - {concept: induction_head, in: mechanistic_only, count: 0}
  - {definition: induction_head.k_composition, count: {min: 1, max: 3}}
  - {definition: induction_head.k_composition, count: ">=1"}
"""
_PROJECT_DATA = yaml.safe_load(PROJECT_SEED)
_PROJECT_INPUTS = st.one_of(
    st.tuples(st.just("replace"), st.floats(0, 1, exclude_max=True), _VALUES),
    st.tuples(st.just("text"), st.integers(0, len(PROJECT_SEED)), st.sampled_from(_TOKENS)),
    st.tuples(st.just("raw"), st.just(0), st.binary(max_size=200)),
)


def _project_text(case: tuple) -> bytes:
    kind, where, value = case
    if kind == "raw":
        return value
    if kind == "text":
        return (PROJECT_SEED[:where] + value + PROJECT_SEED[where:]).encode("utf-8", "surrogatepass")
    data = json.loads(json.dumps(_PROJECT_DATA))
    paths = [path for path in json_paths(data) if path]
    path = paths[int(where * len(paths))]
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return _dump(data)


@pytest.fixture(scope="module")
def builtin_registry(extensions):
    return load_registry([], extensions)


def _project_case(case: tuple, via_cli: int, scratch: Path, registry) -> None:
    folder = scratch / "project"
    folder.mkdir(exist_ok=True)
    path = folder / "defcheck.yaml"
    path.write_bytes(_project_text(case))
    project, problems = load_project(path)
    for problem in problems:
        str(problem).encode("utf-8")
    if project is not None:
        for problem in check_project(project, registry):
            str(problem).encode("utf-8")
    if via_cli == 0:
        assert _cli("validate", str(path)) in (0, 1, 2)


@fuzz(SHORT["project"], case=_PROJECT_INPUTS, via_cli=st.integers(0, 19))
def test_project_files_give_diagnostics_not_exceptions(case, via_cli, scratch, builtin_registry):
    _project_case(case, via_cli, scratch, builtin_registry)


@pytest.mark.nightly
@SKIP_NIGHTLY
@fuzz(LONG["project"], case=_PROJECT_INPUTS, via_cli=st.integers(0, 9))
def test_project_files_nightly(case, via_cli, scratch, builtin_registry):
    _project_case(case, via_cli, scratch, builtin_registry)
