"""Tests of defcheck.sweep.plots and the sweep's HTML page (defcheck.sweep.page), from a real sweep summary.

The page is rendered in headless Chromium where one is installed (CI installs it: there a missing browser
fails the test), and the test checks that the embedded plots decode as images.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess

import pytest

from defcheck.session import RunConfig
from defcheck.sweep import Checkpoint, Series, SweepOptions, build_summary, find_checkpoints, run_sweep
from defcheck.sweep.page import render_sweep_html
from defcheck.sweep.plots import BAND_ALPHA, GREY_BAND_ALPHA, concept_figure, plot_sweep


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    series = find_checkpoints("builtin:toy-induction@*", steps="800,1000,1600,4000")
    return run_sweep(series, SweepOptions(RunConfig(selection=("induction_head",))), out)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_one_small_png_per_concept(swept):
    plots = swept.out / "plots"
    assert sorted(p.name for p in plots.iterdir()) == [f"{name}.png" for name in sorted(swept.summary["concepts"])]
    data = (plots / "induction_head.png").read_bytes()
    width, height = _png_size(data)
    assert 500 < width < 900 and 500 < height < 1200 and len(data) < 200_000


def test_the_figure_shows_each_definition_the_overlap_and_the_loss(swept):
    import matplotlib.pyplot as plt

    figure = concept_figure(swept.summary, "induction_head")
    try:
        titled = [axis for axis in figure.axes if axis.get_title(loc="left")]
        titles = [axis.get_title(loc="left") for axis in titled]
        assert [t.split(" ")[0] for t in titles] == [
            "prefix_matching_and_copying",
            "k_composition",
            "previous_token_path",
            "q_composition",
            "overlap",
            "training",
        ]
        assert figure._suptitle.get_text().startswith(
            "induction_head: behavioral first at 1000, mechanistic first at 800 (200 steps apart)"
        )
        for axis in titled:  # the two first steps cross every panel
            vertical = {line.get_xdata()[0] for line in axis.get_lines() if len(set(line.get_xdata())) == 1}
            assert {800, 1000} <= vertical, axis.get_title(loc="left")
        behavioral = titled[0]
        admitted = {line.get_label() for line in behavioral.get_lines() if not line.get_label().startswith("_")}
        first = swept.summary["definitions"]["induction_head.prefix_matching_and_copying"]["units"]
        assert admitted == {unit for unit, series in first.items() if any(series["member"])}
        threshold = [line for line in behavioral.get_lines() if list(line.get_ydata()) == [0.4, 0.4]]
        assert threshold, "the threshold line of the primary criterion"
        assert "no score at any checkpoint: undefined: " in " ".join(t.get_text() for t in titled[3].texts)
    finally:
        plt.close(figure)


def test_units_of_other_kinds_and_no_loss_still_plot(swept, tmp_path):
    summary = copy.deepcopy(swept.summary)
    summary["metrics"] = {}
    for record in summary["definitions"].values():
        record["units"] = {f"neuron {name}": series for name, series in record["units"].items()}
    paths = plot_sweep(summary, tmp_path)
    assert set(paths) == set(summary["concepts"]) and all(p.stat().st_size > 1000 for p in paths.values())


def test_the_page_is_self_contained_and_embeds_the_plots(swept):
    html = (swept.out / "summary.html").read_text()
    assert html.count('<img class="plot"') == len(swept.summary["concepts"])
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network
    assert swept.summary["concepts"]["induction_head"]["answer"] in html.replace("&#x27;", "'")
    assert "reports/step-001000.json" in html
    bare = render_sweep_html(swept.summary)
    assert "<img" not in bare and "By checkpoint" in bare


def _missing(tool: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is not installed, and CI must run this test")
    pytest.skip(f"{tool} is not installed")


def test_the_page_renders_in_headless_chromium_with_its_plots(swept, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("chromium (Debian: apt-get install chromium)")
    page = tmp_path / "summary.html"
    page.write_bytes((swept.out / "summary.html").read_bytes())
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = result.stdout
    assert 'data-dc-ready="1"' in dom, result.stderr[-2000:]
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert loaded and int(loaded.group(1)) == len(swept.summary["concepts"])


def test_plots_need_only_the_summary(swept, tmp_path):
    """A saved summary.json is enough to draw the same plots again (e.g. on another machine)."""
    summary = json.loads((swept.out / "summary.json").read_text())
    paths = plot_sweep(summary, tmp_path)
    assert paths["induction_head"].read_bytes() == (swept.out / "plots" / "induction_head.png").read_bytes()


def _report(scores: dict[str, float], members: list[str], sd: dict | None) -> dict:
    """A minimal three-seed report of one definition over two heads, with its primary criterion's ``sd``."""
    criterion = {"checker": "prefix_score", "threshold": ">= 0.5", "sd": sd}
    definition = {"kind": "behavioral", "status": "ok", "members": members, "scores": scores, "criteria": [criterion]}
    concept = {"unit": "head", "units": ["0.0", "1.1"], "definitions": {"acts": definition}, "overlap": None}
    return {"seed": 0, "seeds": [0, 1, 2], "concepts": {"c": concept}}


def _summary(banded: bool) -> dict:
    """Head 1.1 is admitted from step 20 (colored), head 0.0 never (grey); the sd only where ``banded``."""
    series = Series("synthetic", tuple(Checkpoint(step, f"x{step}.pt") for step in (10, 20, 30)))
    sds = [{"0.0": 0.01, "1.1": 0.1}, {"0.0": 0.02, "1.1": 0.05}, {"0.0": None, "1.1": 0.02}]
    scores = [{"0.0": 0.1, "1.1": 0.3}, {"0.0": 0.2, "1.1": 0.6}, {"0.0": 0.2, "1.1": 0.9}]
    members = [[], ["1.1"], ["1.1"]]
    reports = {step: _report(scores[i], members[i], sds[i] if banded else None) for i, step in enumerate((10, 20, 30))}
    return build_summary(series, reports, {})


def _panel_fills(banded: bool) -> tuple[list, list[str]]:
    """The filled areas of the definition's panel, and its legend's texts."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    figure = concept_figure(_summary(banded), "c")
    try:
        (panel,) = [axis for axis in figure.axes if axis.get_title(loc="left").startswith("acts ")]
        fills = [c for c in panel.collections if isinstance(c, PolyCollection)]
        legend = panel.get_legend()
        return fills, [t.get_text() for t in legend.get_texts()] if legend else []
    finally:
        plt.close(figure)


def test_a_summary_with_sd_draws_a_band_per_unit_and_names_it():
    from matplotlib.colors import to_rgba

    fills, legend = _panel_fills(banded=True)
    assert len(fills) == 2 and legend == ["1.1", "band: ±1 sd across 3 seeds"]
    grey, colored = fills  # grey bands are drawn first, under the colored ones
    at_20 = sorted({round(float(y), 9) for x, y in colored.get_paths()[0].vertices if x == 20})
    assert at_20 == [0.55, 0.65]  # score 0.6 +- sd 0.05
    assert colored.get_facecolor()[0][3] == pytest.approx(BAND_ALPHA)
    assert tuple(colored.get_facecolor()[0][:3]) == pytest.approx(to_rgba("#1f77b4")[:3])  # the unit's line color
    assert tuple(grey.get_facecolor()[0][:3]) == pytest.approx(to_rgba("#bbbbbb")[:3])
    assert grey.get_facecolor()[0][3] == pytest.approx(GREY_BAND_ALPHA) and GREY_BAND_ALPHA < BAND_ALPHA
    grey_steps = {vertex[0] for path in grey.get_paths() for vertex in path.vertices}
    assert grey_steps == {10.0, 20.0}  # no sd at 30: the band stops there


def test_a_summary_without_sd_draws_no_band():
    fills, legend = _panel_fills(banded=False)
    assert fills == [] and legend == ["1.1"]
