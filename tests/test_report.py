"""Tests of the reports (defcheck/report/): the JSON document, its stability, and every format."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from rich.console import Console
from test_overlap import NO_PARTNER, criterion, definition, head_units, induction_results, run_of

from defcheck import Checker, hookimpl
from defcheck.diagnostics import DefcheckError
from defcheck.engine.runner import evaluate
from defcheck.engine.scores import NotApplicable, Scores
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry
from defcheck.report import REPORT_VERSION, Report, builtin_formats
from defcheck.report.json import canonical, natural_key, round_float

CONCEPTS = {
    "previous_token_head.yaml": """
        concept: previous_token_head
        summary: Heads that attend from each token to the one before it.
        references: [Elhage et al. 2021]
        definitions:
          attends_previous:
            kind: behavioral
            source: test, behavior
            all:
              - checker: attention_pattern
                params: {pattern: previous_token}
                probe: {name: random_tokens, n: 4, length: 12}
                threshold: {top_k: 4}
          positional_qk:
            kind: mechanistic
            source: test, weights
            all:
              - checker: qk_positional
                params: {offset: 1, max_position: 12}
                threshold: {top_k: 4}
          broken:
            kind: mechanistic
            source: test, a failing third-party checker
            all:
              - checker: always_fails
                threshold: "> 0"
          needs_tokenizer:
            kind: mechanistic
            source: test, a checker that does not apply
            all:
              - checker: needs_tokenizer
                threshold: "> 0"
          half_defined:
            kind: mechanistic
            source: test, NaN scores
            all:
              - checker: half_defined
                threshold: ">= 0.5"
    """,
    "bos_head.yaml": """
        concept: bos_head
        summary: Heads that attend to the first position.
        definitions:
          attends_bos:
            kind: behavioral
            source: test
            all:
              - checker: attention_pattern
                params: {pattern: bos}
                probe: {name: repeated_random_tokens, n: 4, length: 6}
                threshold: {top_k: 3}
    """,
}


class ThirdParty:
    """Checkers that fail, do not apply, or leave half the scores undefined."""

    @hookimpl
    def defcheck_checkers(self):
        def fail(context):
            raise RuntimeError("boom")

        def inapplicable(context):
            raise NotApplicable("the model has no tokenizer")

        def half(context):
            values = torch.arange(context.model.n_layers * context.model.n_heads, dtype=torch.float32)
            scores = Scores((values / values.max()).reshape(context.model.n_layers, context.model.n_heads))
            mask = torch.zeros_like(scores.values, dtype=torch.bool)
            mask[0] = True
            scores.mark_undefined(mask, "undefined: 0/0, nothing to compare in layer 0", context.model.unit_names())
            scores.evidence["1.7"] = {"partner": "0.3", "value": torch.tensor(0.123456789)}
            return scores

        return [
            Checker("always_fails", "mechanism", fail),
            Checker("needs_tokenizer", "mechanism", inapplicable),
            Checker("half_defined", "mechanism", half),
        ]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from conftest import make_view

    folder = tmp_path_factory.mktemp("concepts")
    for name, text in CONCEPTS.items():
        (folder / name).write_text(textwrap.dedent(text))
    extensions = load_plugins(extra=[ThirdParty()])
    registry = load_registry([folder], extensions, include_builtin=False)
    assert not registry.errors, registry.errors
    view = make_view(0)
    return view, registry, extensions


@pytest.fixture(scope="module")
def report(evaluated):
    view, registry, extensions = evaluated
    return Report.build(evaluate(view, registry, extensions), registry, {"reference": "random:0"})


@pytest.fixture
def hand_report():
    prefix, kcomp = induction_results()
    return Report.build(run_of(prefix, kcomp))


# --- the JSON document -----------------------------------------------------------------------------------------


def test_json_is_byte_identical_across_runs(evaluated, report):
    view, registry, extensions = evaluated
    again = Report.build(evaluate(view, registry, extensions), registry, {"reference": "random:0"})
    assert again.to_json() == report.to_json()
    assert "seconds" not in report.to_json() and report.timings  # timings are kept apart


def test_json_shape(report):
    data = json.loads(report.to_json())
    assert data["report_version"] == REPORT_VERSION == 1
    assert data["seed"] == 0
    model = data["model"]
    assert model["name"] == "random-0" and model["n_layers"] == 2 and model["n_heads"] == 8
    assert model["reference"] == "random:0" and model["tokens"]["bos_token_id"] == 0
    assert sorted(data["concepts"]) == ["bos_head", "previous_token_head"]
    concept = data["concepts"]["previous_token_head"]
    assert concept["unit"] == "attention_head"
    assert concept["summary"] == "Heads that attend from each token to the one before it."
    assert (concept["unit_noun"], concept["unit_plural"]) == ("head", "heads")
    assert concept["references"] == ["Elhage et al. 2021"]
    behavioral = concept["definitions"]["attends_previous"]
    assert behavioral["kind"] == "behavioral" and behavioral["source"] == "test, behavior"
    assert behavioral["status"] == "ok" and behavioral["error"] is None
    assert len(behavioral["members"]) == 4 and all(re.fullmatch(r"\d+\.\d+", u) for u in behavioral["members"])
    assert len(behavioral["scores"]) == 16
    (first,) = behavioral["criteria"]
    assert first["checker"] == "attention_pattern" and first["threshold"] == {"top_k": 4}
    assert first["params"] == {"pattern": "previous_token"}
    assert first["probe"].startswith("random_tokens(")
    assert first["passed"] == behavioral["members"]
    assert set(first) >= {"scores", "undefined", "not_applicable", "evidence", "error", "with"}
    overlap = concept["overlap"]
    for key in ("both", "behavioral_only", "mechanistic_only", "neither_count", "jaccard", "pairs", "sensitivity"):
        assert key in overlap
    assert overlap["mechanistic"] == ["half_defined", "positional_qk"]
    assert [row["factor"] for row in overlap["sensitivity"]] == [0.75, 0.9, 1.0, 1.1, 1.25]
    assert len(overlap["pairs"]) == 2
    assert isinstance(overlap["narrative"], str) and overlap["narrative"] and overlap["reason"] is None
    assert data["probes"] and all("sequences" in p for p in data["probes"].values())


def test_errored_inapplicable_and_undefined_are_rendered(report):
    data = json.loads(report.to_json())
    concept = data["concepts"]["previous_token_head"]
    broken = concept["definitions"]["broken"]
    assert broken["status"] == "errored" and broken["members"] is None
    assert "boom" in broken["error"] and broken["criteria"][0]["scores"] is None
    inapplicable = concept["definitions"]["needs_tokenizer"]
    assert inapplicable["status"] == "not_applicable"
    assert inapplicable["not_applicable"] == "the model has no tokenizer"
    assert inapplicable["members"] == [] and inapplicable["scores"] is None
    assert inapplicable["criteria"][0]["not_applicable"] == "the model has no tokenizer"
    half = concept["definitions"]["half_defined"]
    assert [half["scores"][f"0.{h}"] for h in range(8)] == [None] * 8
    assert half["undefined"] == {f"0.{h}": "undefined: 0/0, nothing to compare in layer 0" for h in range(8)}
    assert half["scores"]["1.7"] == 1.0
    assert half["criteria"][0]["evidence"] == {"1.7": {"partner": "0.3", "value": 0.123457}}
    assert concept["overlap"]["excluded"] == {
        "broken": f"errored: {broken['error']}",
        "needs_tokenizer": "not applicable: the model has no tokenizer",
    }
    narrative = concept["overlap"]["narrative"]
    assert "broken is left out: errored: checker 'always_fails' failed: RuntimeError: boom" in narrative
    bos = data["concepts"]["bos_head"]
    assert bos["overlap"]["reason"] == bos["note"] == "No overlap: it has no mechanistic definition."
    assert bos["overlap"]["narrative"].startswith(bos["note"]) and bos["overlap"]["both"] == []


def test_hand_built_values(hand_report):
    data = json.loads(hand_report.to_json())
    concept = data["concepts"]["induction_head"]
    overlap = concept["overlap"]
    assert overlap["both"] == ["1.0"] and overlap["mechanistic_only"] == ["1.3"]
    assert overlap["jaccard"] == 0.2 and overlap["precision"] == 0.25 and overlap["recall"] == 0.5
    assert overlap["spearman"] == 0.4 and overlap["undefined"] == {}
    assert concept["definitions"]["kcomp"]["criteria"][0]["undefined"]["0.1"] == NO_PARTNER
    assert concept["definitions"]["kcomp"]["scores"]["1.1"] == 0.01
    assert concept["definitions"]["prefix"]["scores"]["0.1"] == 0.5
    assert overlap["narrative"].startswith("1 head is an induction head in both senses (1.0).")
    assert concept["summary"] is None  # no registry, so no concept file to take it from
    assert hand_report.model == {
        "attn_only": False,
        "info": {},
        "n_heads": 4,
        "n_layers": 2,
        "name": "hand",
        "normalization": None,
        "positional": "standard",
        "tokens": None,
    }


def test_null_metrics_have_reasons():
    zero = [[0.0] * 4, [0.0] * 4]
    run = run_of(
        definition("c.b", "behavioral", criterion("x", zero, "> 1")),
        definition("c.m", "mechanistic", criterion("y", zero, "> 1")),
    )
    overlap = json.loads(Report.build(run).to_json())["concepts"]["c"]["overlap"]
    assert overlap["jaccard"] is None and overlap["undefined"]["jaccard"] == "both sets are empty"
    assert overlap["sensitivity"][0]["jaccard"] is None
    assert overlap["sensitivity"][0]["undefined"]["jaccard"] == "both sets are empty"


def test_canonical_values():
    assert round_float(0.1234567891) == 0.123457
    assert round_float(-0.0) == 0.0 and round_float(float("nan")) is None and round_float(float("inf")) is None
    assert round_float(123456789.0) == 123457000.0
    assert list(canonical({"1.10": 0, "1.2": 0, "0.3": 0, "b": 0, "a": 0})) == ["0.3", "1.2", "1.10", "a", "b"]
    assert canonical({"t": torch.tensor([1.0, float("nan")]), "s": (1, 2)}) == {"s": [1, 2], "t": [1.0, None]}
    assert sorted(["head_10", "head_2"], key=natural_key) == ["head_2", "head_10"]


def test_unit_keys_are_in_natural_order():
    view_names = [f"{layer}.{head}" for layer in range(2) for head in range(12)]
    run = run_of(*induction_results())
    run.model.model.cfg.n_heads = 12
    run.units = {"induction_head": head_units(2, 12)}
    values = torch.arange(24, dtype=torch.float32).reshape(2, 12) / 24
    for result in run.definitions.values():
        for c in result.criteria:
            c.scores = Scores(values.clone())
            c.passed = c.threshold.select(values)
        result.members = torch.stack([c.passed for c in result.criteria]).all(0)
    data = json.loads(Report.build(run).to_json())
    assert list(data["concepts"]["induction_head"]["definitions"]["prefix"]["scores"]) == view_names


# --- reading a saved report back -------------------------------------------------------------------------------


def test_from_json_round_trip(report):
    text = report.to_json()
    again = Report.from_json(text)
    assert again.to_json() == text
    assert again.to_markdown() == report.to_markdown()
    assert again.to_html() == report.to_html()


def test_from_json_refuses_other_versions(report):
    data = json.loads(report.to_json())
    data["report_version"] = 2
    with pytest.raises(DefcheckError, match="report_version 2, but this defcheck reads report_version 1"):
        Report.from_json(json.dumps(data))
    with pytest.raises(DefcheckError, match="no 'report_version'"):
        Report.from_json("{}")
    with pytest.raises(DefcheckError, match="not JSON"):
        Report.from_json("<html>")


def test_python_accessors(report, hand_report):
    concept = hand_report.concepts["induction_head"]
    assert concept.overlap.both == ["1.0"] and concept.overlap["jaccard"] == 0.2
    assert concept.definitions["kcomp"].members == ["1.0", "1.3"]
    assert concept.definitions["kcomp"].id == "induction_head.kcomp"
    assert concept.unit == "attention_head" and concept.overlap.narrative.startswith("1 head")
    assert concept.overlap.compared and concept.overlap.reason is None
    assert "dc-grid" in concept._repr_html_() and 'data-concept="induction_head"' in concept._repr_html_()
    bos = report.concepts["bos_head"]
    assert bos.summary == "Heads that attend to the first position."
    assert not bos.overlap.compared and bos.overlap.both == [] and bos.overlap.jaccard is None
    assert bos.overlap.reason == "No overlap: it has no mechanistic definition."
    with pytest.raises(AttributeError):
        _ = concept.no_such_field
    assert "induction_head" in repr(hand_report)


# --- formats ---------------------------------------------------------------------------------------------------


def test_builtin_formats(report):
    formats = {f.name: f for f in builtin_formats()}
    assert sorted(formats) == ["html", "json", "markdown"]
    assert formats["json"].render(report) == report.to_json() and formats["json"].suffix == ".json"
    assert formats["markdown"].render(report) == report.to_markdown() and formats["markdown"].suffix == ".md"
    assert formats["html"].render(report) == report.to_html() and formats["html"].suffix == ".html"


def test_markdown(report, hand_report):
    text = hand_report.to_markdown()
    assert text.startswith("# defcheck report: hand\n")
    assert "## induction_head" in text
    assert "| both (1) | 1.0 |" in text and "| behavioral only (3) | 0.1, 0.3, 1.2 |" in text
    assert "| mechanistic only (1) | 1.3 |" in text and "| neither | 3 |" in text
    assert "Jaccard **0.2** · precision 0.25 · recall 0.5 · Spearman 0.4 over 4 heads" in text
    assert "| 0.75 | 0.4 | 0.4 | 0.2 | 5 | 2 | 2 |" in text
    assert "1.2 behaves like one but fails kcomp (ov_eigenvalue_copying -0.5, needs >= 0.5)" in text
    assert "<details>" in text and "| 1 | **0.45** | 0 | **0.6** | 0.3 |" in text
    full = report.to_markdown()
    assert "errored: checker 'always_fails' failed: RuntimeError: boom" in full
    assert "not applicable: the model has no tokenizer" in full
    assert "No overlap: it has no mechanistic definition." in full


class _Grids(HTMLParser):
    """Collects grids (figure data-grid) per concept section, cells, and external references."""

    def __init__(self):
        super().__init__()
        self.concept = None
        self.grids: dict[str, list[tuple[str, str | None]]] = {}
        self.external: list[str] = []
        self.cells: list[dict[str, str | None]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for key in ("src", "href"):
            value = attributes.get(key) or ""
            if value.startswith(("http", "//")) or "://" in value:
                self.external.append(value)
        if tag == "link":
            self.external.append(str(attributes))
        if tag == "script":
            self.scripts += 1
            if attributes.get("src"):
                self.external.append(attributes["src"])
        if tag == "section" and attributes.get("data-concept"):
            self.concept = attributes["data-concept"]
            self.grids[self.concept] = []
        if tag == "figure" and attributes.get("data-grid"):
            self.grids[self.concept].append((attributes["data-grid"], attributes.get("data-definition")))
        if tag == "td" and attributes.get("data-unit"):
            self.cells.append(attributes)


def _parse(html: str) -> _Grids:
    parser = _Grids()
    parser.feed(html)
    return parser


def test_html_has_a_grid_per_definition_and_an_overlap_grid(report):
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>")
    parser = _parse(html)
    assert parser.external == []
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert parser.grids["previous_token_head"] == [
        ("definition", "attends_previous"),
        ("definition", "broken"),
        ("definition", "half_defined"),
        ("definition", "needs_tokenizer"),
        ("definition", "positional_qk"),
        ("overlap", None),
    ]
    assert parser.grids["bos_head"] == [("definition", "attends_bos")]
    # 5 + 1 grids of 16 cells, and 1 grid for bos_head
    assert len(parser.cells) == 16 * 7
    grey = [c for c in parser.cells if "dc-na" in (c.get("class") or "")]
    assert len(grey) >= 32  # the errored and the inapplicable definitions
    assert any("not applicable: the model has no tokenizer" in (c["title"] or "") for c in grey)
    assert any("undefined: 0/0, nothing to compare in layer 0" in (c["title"] or "") for c in parser.cells)
    categories = [
        c
        for c in parser.cells
        if re.search(r"dc-(both|behavioral_only|mechanistic_only|neither)", c.get("class") or "")
    ]
    assert len(categories) == 16


def test_html_hover_details(hand_report):
    cells = _parse(hand_report.to_html()).cells
    overlap = {c["data-unit"]: c for c in cells if "dc-behavioral_only" in (c.get("class") or "")}
    assert "1.2 behaves like one" not in overlap["1.2"]["title"]
    assert "behaves like one but fails kcomp (ov_eigenvalue_copying -0.5, needs >= 0.5)" in overlap["1.2"]["title"]
    assert "dc-open" in overlap["0.1"]["class"]  # rests on an undefined composition score
    kcomp = [
        c for c in cells if c["data-unit"] == "1.1" and "kcomp" in c["title"] and "dc-" not in (c.get("class") or "x")
    ]
    assert kcomp and "composition (>= 0.05): 0.01 fail" in kcomp[0]["title"]


def _missing(tool: str) -> None:
    """CI installs the tool (.ci/run), so there a missing one fails; elsewhere the test is skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is not installed, and CI must run this test")
    pytest.skip(f"{tool} is not installed")


def test_html_script_parses():
    node = shutil.which("node")
    if node is None:
        _missing("node")
    from defcheck.report.html import JS

    result = subprocess.run([node, "--check"], input=JS, text=True, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr


def chromium_dom(html: str, tmp_path: Path) -> str:
    """The DOM headless Chromium builds from ``html`` after its scripts ran (skips or fails without Chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("chromium (Debian: apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def test_html_renders_in_headless_chromium(report, tmp_path: Path):
    dom = chromium_dom(report.to_html(), tmp_path)
    assert 'data-dc-ready="1"' in dom  # the inline script ran to its end without an error
    parser = _parse(dom)
    assert [kind for kind, _ in parser.grids["previous_token_head"]].count("definition") == 5
    assert ("overlap", None) in parser.grids["previous_token_head"]
    assert len(parser.cells) == 16 * 7


def test_terminal(report, hand_report):
    console = Console(record=True, width=160, color_system=None)
    hand_report.to_terminal(console)
    text = console.export_text()
    assert "induction_head" in text and "mechanistic only (1)" in text and "behavioral only (3)" in text
    assert "1 head is an induction head in both senses (1.0)." in text
    assert "B+M" in text and "threshold sensitivity" in text
    console = Console(record=True, width=160)
    report.to_terminal(console)
    text = console.export_text()
    assert "errored: checker 'always_fails' failed" in text and "not applicable: the model has no tokenizer" in text
    assert "No overlap: it has no mechanistic definition." in text


def test_repr_html(report):
    fragment = report._repr_html_()
    assert fragment.startswith('<div class="dc-report">') and "<html" not in fragment
    assert fragment.count('data-grid="overlap"') == 1


def test_a_checker_used_on_two_probes_names_each_probe():
    from defcheck.report.common import definition_criteria_text

    reward = {"checker": "original_reward", "params": {}, "with": []}
    definition = {
        "combinator": "all",
        "criteria": [
            {"checker": "deployment_competence", "params": {}, "with": [], "threshold": ">= 0.8", "probe": "ep(a)"},
            {**reward, "threshold": "<= 0.5", "probe": "ep(deploy)"},
            {**reward, "threshold": ">= 0.8", "probe": "ep(train)"},
        ],
    }
    assert definition_criteria_text(definition) == (
        "deployment_competence >= 0.8 and original_reward <= 0.5 on ep(deploy) and original_reward >= 0.8 on ep(train)"
    )
