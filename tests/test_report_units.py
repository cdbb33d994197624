"""Reports of units other than heads: a wide neuron grid (256 neurons a layer, wrapped) and a table of models,
in every format, including the HTML in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from test_report import _parse, chromium_dom
from test_units import POLICY_CONCEPT, PolicyPlugin, PolicySet

import defcheck
from defcheck.models.loading import load_model
from defcheck.report import Report

CONCEPT = "token_detector_neuron"


@pytest.fixture(scope="module")
def neuron_report() -> Report:
    return defcheck.check(load_model("builtin:toy-mlp"), [CONCEPT, "previous_token_head"])


@pytest.fixture(scope="module")
def policy_report(tmp_path_factory) -> Report:
    folder = tmp_path_factory.mktemp("policies")
    (folder / "competent_policy.yaml").write_text(POLICY_CONCEPT, encoding="utf-8")
    return defcheck.check(PolicySet(), ["competent_policy"], paths=[folder], plugins=[PolicyPlugin()])


def test_the_json_carries_each_concepts_units_and_grid(neuron_report):
    neurons = neuron_report.concepts[CONCEPT]
    assert neurons.units[:2] == ["0.0", "0.1"] and neurons.units[256] == "1.0" and len(neurons.units) == 512
    assert neurons.grid == {"rows": ["0", "1"], "columns": [str(n) for n in range(256)]}
    heads = neuron_report.concepts["previous_token_head"]
    assert heads.grid == {"rows": ["0", "1"], "columns": [str(h) for h in range(8)]} and len(heads.units) == 16
    assert neuron_report.model["d_mlp"] == 256 and neuron_report.data["skipped"] == {}


def test_html_wraps_a_wide_grid_and_keeps_heads_as_they_were(neuron_report):
    html = neuron_report.to_html()
    parser = _parse(html)
    assert parser.grids[CONCEPT] == [
        ("definition", "fires_on_one_token"),
        ("definition", "reads_one_token"),
        ("definition", "selective_for_a_token"),
        ("overlap", None),
    ]
    neuron_cells = [c for c in parser.cells if c["data-unit"].count(".") == 1 and int(c["data-unit"].split(".")[1]) > 7]
    assert len(neuron_cells) == 4 * 2 * 248  # neurons 8..255 of both layers in four grids
    section = html.split(f'id="concept-{CONCEPT}"')[1]
    assert section.count('class="dc-cells dc-wide"') == 4
    assert "<th>0:0-31</th>" in section and "<th>1:224-255</th>" in section
    heads = html.split('id="concept-previous_token_head"')[1].split('id="concept-')[0]
    assert "dc-wide" not in heads and "<th>H7</th>" in heads and "<th>L1</th>" in heads  # labelled axes


def test_markdown_lists_the_neurons_that_matter_instead_of_a_256_column_grid(neuron_report):
    text = neuron_report.to_markdown()
    section = text.split(f"## {CONCEPT}")[1]
    members = neuron_report.concepts[CONCEPT].definitions["selective_for_a_token"].members
    assert f"the {len(members)} neurons some definition admits" in section
    assert "| unit | fires_on_one_token (behavioral) | reads_one_token (mechanistic) |" in section
    table = section.split("| unit | ")[1].split("\n\n")[0].splitlines()[2:]
    rows = [line for line in table if re.match(r"^\| [01]\.\d+ \|", line)]
    assert len(rows) == len(table)
    assert [row.split(" | ")[0][2:] for row in rows] == members
    assert all(row.endswith("| behavioral only |") for row in rows)
    assert f"{512 - len(members)} more neurons not shown" in section


def test_terminal_draws_a_wide_grid_in_lines_of_single_characters(neuron_report):
    console = Console(record=True, width=160, color_system=None)
    neuron_report.to_terminal(console)
    text = console.export_text()
    assert "layer x neuron (+: both, B: behavioral only, M: mechanistic only)" in text
    assert re.search(r"0:0-63 ?│[·BM+]{64}│", text) and re.search(r"1:192-255 ?│[·BM+]{64}│", text)


def test_a_table_of_models_in_every_format(policy_report):
    parser = _parse(policy_report.to_html())
    assert parser.grids["competent_policy"] == [("table", None)]
    assert sorted({c["data-unit"] for c in parser.cells}) == ["p0", "p10", "p50"]
    assert len(parser.cells) == 3 * 4  # three definitions and the overlap category per model
    assert "| p10 | n/a | **0.2** | **0.7** | both |" in policy_report.to_markdown()
    again = Report.from_json(policy_report.to_json())
    assert again.to_markdown() == policy_report.to_markdown()


@pytest.mark.parametrize("which", ["neuron_report", "policy_report"])
def test_html_of_other_units_renders_in_headless_chromium(which, request, tmp_path: Path):
    report = request.getfixturevalue(which)
    dom = chromium_dom(report.to_html(), tmp_path)
    assert 'data-dc-ready="1"' in dom  # the inline script ran to its end without an error
    expected = _parse(report.to_html())
    parser = _parse(dom)
    assert parser.grids == expected.grids and len(parser.cells) == len(expected.cells)


def test_a_report_written_before_unit_kinds_renders_as_it_did(neuron_report):
    """Reports without ``units``, ``grid`` and ``skipped`` (older ones) lay heads out from the model's shape."""
    data = json.loads(neuron_report.to_json())
    data.pop("skipped")
    del data["concepts"][CONCEPT]
    for concept in data["concepts"].values():
        del concept["units"], concept["grid"]
    old = Report.from_json(json.dumps(data))
    new = Report.from_json(neuron_report.to_json())
    del new.data["concepts"][CONCEPT]
    assert old.to_markdown() == new.to_markdown()
    assert _parse(old.to_html()).cells == _parse(new.to_html()).cells
