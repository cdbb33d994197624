"""The HTML heatmaps and the terminal summary (issue 18, item 7): cells colored by their signed margin to the
threshold (members blue, non-members orange, whatever the threshold's direction), a fixed scale, labelled axes,
members ringed, a grid per criterion, the chance level on the legend; checked on a screenshot of headless
Chromium."""

from __future__ import annotations

import copy
import io
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_report import _missing

import defcheck
from defcheck.models.loading import load_model
from defcheck.report import Report
from defcheck.report.heatmap import cell_number, color, criterion_cut, relative_margin
from defcheck.report.html import render_document

CONCEPTS = ["copy_suppression_head", "induction_head"]
WINDOW = "1200,2400"
PROBE = """
<script>
window.addEventListener('error', function (event) {
  document.documentElement.setAttribute('data-js-error', String(event.message));
});
</script>
"""
MEASURE = """
<script>
(function () {
  var cells = document.querySelectorAll('figure[data-definition="negative_ov"] > table td[data-unit]');
  for (var i = 0; i < cells.length; i++) {
    var r = cells[i].getBoundingClientRect();
    cells[i].setAttribute('data-rect', [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]
      .map(Math.round).join(','));
  }
})();
</script>
"""


@pytest.fixture(scope="module")
def report() -> Report:
    return defcheck.check(load_model("builtin:toy-induction"), CONCEPTS)


def _chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("chromium (Debian: apt-get install chromium)")
    assert chromium is not None
    return chromium


def _browse(page: Path, *flags: str) -> str:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--force-device-scale-factor=1", f"--window-size={WINDOW}", *flags, page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return result.stdout


class _Cells(HTMLParser):
    """Cells (with the figure and criterion grid they are in), header labels, and criterion grids per figure."""

    def __init__(self) -> None:
        super().__init__()
        self.figure: str | None = None
        self.criterion: str | None = None
        self.cells: list[dict[str, Any]] = []
        self.criteria: dict[str, int] = {}
        self.headers: list[str] = []
        self._header: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "figure":
            self.figure = attributes.get("data-definition") or attributes.get("data-grid")
            self.criterion = None
        if tag == "div" and attributes.get("data-criterion") is not None and self.figure:
            self.criterion = attributes["data-criterion"]
            self.criteria[self.figure] = self.criteria.get(self.figure, 0) + 1
        if tag == "td" and attributes.get("data-unit"):
            self.cells.append({**attributes, "figure": self.figure, "criterion": self.criterion})
        if tag == "th":
            self._header = []

    def handle_data(self, data: str) -> None:
        if self._header is not None:
            self._header.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._header is not None:
            self.headers.append("".join(self._header))
            self._header = None
        if tag == "figure":
            self.figure = None


def _parse(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def _mode(image: Any, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The most common color inside ``box`` (the cell's background, whatever its text)."""
    left, top, right, bottom = box
    pixels = [image.getpixel((x, y))[:3] for x in range(left, right) for y in range(top, bottom)]
    return Counter(pixels).most_common(1)[0][0]


def test_members_of_a_lower_is_better_definition_are_blue_and_ringed(report, tmp_path: Path):
    from PIL import Image

    definition = report.data["concepts"]["copy_suppression_head"]["definitions"]["negative_ov"]
    assert definition["criteria"][0]["threshold"].startswith("<=")
    members = set(definition["members"] or [])
    assert members and len(members) < 16  # the toy model has members and non-members of `<= -0.5`

    data = dict(report.data)
    data["concepts"] = {"copy_suppression_head": report.data["concepts"]["copy_suppression_head"]}
    html = render_document(data)
    page = tmp_path / "heatmaps.html"
    page.write_text(html.replace("<head>", "<head>" + PROBE).replace("</body>", MEASURE + "</body>"), "utf-8")
    dom = _browse(page, "--dump-dom")
    assert 'data-dc-ready="1"' in dom and 'data-js-error="' not in dom  # the scripts ran, without an error
    _browse(page, f"--screenshot={tmp_path / 'shot.png'}")
    image = Image.open(tmp_path / "shot.png").convert("RGB")

    cells = [c for c in _parse(dom).cells if c.get("data-rect")]
    assert len(cells) == 16
    for cell in cells:
        x, y, w, h = (int(v) for v in cell["data-rect"].split(","))
        red, _, blue = _mode(image, (x + 4, y + 4, x + w - 4, y + h - 4))
        outside = image.getpixel((x - 1, y + h // 2))
        if cell["data-unit"] in members:
            assert "dc-member" in cell["class"]
            assert blue > red + 40, (cell["data-unit"], red, blue)  # members: blue, though their scores are low
            assert max(outside) < 80, outside  # ringed in black
        else:
            assert red > blue + 40, (cell["data-unit"], red, blue)  # non-members: orange
            assert min(outside) > 200, outside  # no ring
        assert "<= -0.5" in cell["title"] and re.search(r"(passes|fails) by [\d.]+", cell["title"])


def test_axes_criteria_and_chance_are_in_the_dom(report, tmp_path: Path):
    dom = _browse_report(report, tmp_path)
    parsed = _parse(dom)
    assert {"L0", "L1", *(f"H{h}" for h in range(8))} <= set(parsed.headers)
    for concept in report.data["concepts"].values():
        for name, definition in concept["definitions"].items():
            count = len(definition["criteria"])
            if count < 2 or definition["status"] != "ok":
                assert name not in parsed.criteria
                continue
            assert parsed.criteria[name] == count  # every criterion has its grid
            for index in range(count):
                grid = [c for c in parsed.cells if c["figure"] == name and c["criterion"] == str(index)]
                assert len(grid) == 16
    chances = [
        c["chance"]
        for concept in report.data["concepts"].values()
        for d in concept["definitions"].values()
        if d["status"] == "ok"
        for c in d["criteria"]
        if isinstance(c.get("chance"), (int, float))
    ]
    if chances:  # reports with chance levels mark them on the legends
        assert dom.count('class="dc-chance"') >= 1 and "chance " in dom


def _browse_report(report: Report, tmp_path: Path) -> str:
    page = tmp_path / "report.html"
    page.write_text(report.to_html().replace("<head>", "<head>" + PROBE), encoding="utf-8")
    dom = _browse(page, "--dump-dom")
    assert 'data-dc-ready="1"' in dom and 'data-js-error="' not in dom
    return dom


def test_the_scale_is_fixed_and_follows_the_direction():
    """0.21-0.33 against ``>= 0.3`` stays pale; a ``<=`` member is blue however low its score."""
    near = {"threshold": ">= 0.3", "scores": {"a": 0.21, "b": 0.33}, "passed": ["b"]}
    cut = criterion_cut(near)
    margins = {u: relative_margin(near, cut, u, u == "b") for u in ("a", "b")}
    assert margins["a"] == pytest.approx(-0.3) and margins["b"] == pytest.approx(0.1)
    assert color(margins["b"])[0] == "rgb(179,202,226)" and color(margins["a"])[1] == "#000"  # pale, dark text
    low = {"threshold": "<= -0.5", "scores": {"a": -1.0, "b": 1.0}, "passed": ["a"]}
    cut = criterion_cut(low)
    assert color(relative_margin(low, cut, "a", True) or 0)[0] == "rgb(8,48,107)"  # dark blue
    assert color(relative_margin(low, cut, "b", False) or 0)[0] == "rgb(127,39,4)"  # dark orange
    at = {"threshold": ">= 0.5", "scores": {"a": 0.5}, "passed": ["a"]}
    assert color(relative_margin(at, criterion_cut(at), "a", True) or 0.0)[0] == "rgb(198,219,239)"  # pale blue
    ranked = {"threshold": {"top_k": 1}, "scores": {"a": 0.9, "b": 0.5}, "passed": ["a"]}
    assert criterion_cut(ranked).value == pytest.approx(0.7)
    assert [cell_number(v) for v in (8.1e-12, 1234.5, 0.456, None)] == ["≈0", "1234", "0.46", "—"]


def test_the_terminal_report_starts_with_a_summary_table(report):
    console = Console(record=True, width=160, color_system=None, file=io.StringIO())
    report.to_terminal(console)
    text = console.export_text()
    summary = text.split("╭─")[0]
    assert "summary" in summary and "B-only" in summary and "unstable" in summary
    rows = {line.split("│")[1].strip(): line for line in summary.splitlines() if line.startswith("│")}
    assert set(rows) == set(report.data["concepts"])
    overlap = report.data["concepts"]["induction_head"]["overlap"]
    cells = [cell.strip() for cell in rows["induction_head"].split("│")[2:-1]]
    assert cells[0].startswith(str(len(overlap["both"]))) and cells[3] == f"{overlap['jaccard']:.3g}"
    if all("unstable" not in str(c) for c in report.data["concepts"].values()):
        assert cells[4] == "-"  # a run without --seeds has no stability data
    assert text.index("summary") < text.index("╭─ copy_suppression_head")


def test_seeds_color_by_standard_deviations_and_mark_unstable_units(report):
    """With ``--seeds K`` data (``stability``, ``margins``): a cell's intensity is its margin in seed-to-seed sd
    (pale within noise), an unstable unit is marked in the grid and counted in the terminal summary."""
    data = copy.deepcopy(report.data)
    concept = data["concepts"]["copy_suppression_head"]
    definition = concept["definitions"]["negative_ov"]
    members = definition["members"] or []
    definition["criteria"][0]["margins"] = {u: (0.4 if u in members else -40.0) for u in concept["units"]}
    definition["stability"] = {"share": dict.fromkeys(members, 1.0) | {members[0]: 0.6}, "unstable": [members[0]]}
    concept["overlap"]["stability"] = None  # the kinds were not compared in every seed: the definitions say
    cells = {c["data-unit"]: c for c in _parse(render_document(data)).cells if c["figure"] == "negative_ov"}
    first = cells[members[0]]
    assert "dc-unstable" in first["class"] and "a member in 60% of them" in first["title"]
    assert "passes by 0.4 sd" in first["title"] and "rgb(179,202,226)" in first["style"]  # pale: within noise
    outside = next(c for u, c in cells.items() if u not in members)
    assert "rgb(127,39,4)" in outside["style"]  # 40 sd: full orange
    assert "passes by 4 sd" in render_document(data)
    console = Console(record=True, width=160, color_system=None, file=io.StringIO())
    Report(data).to_terminal(console)
    row = next(line for line in console.export_text().splitlines() if line.startswith("│ copy_suppression_head"))
    assert row.split("│")[-2].strip() == f"1 ({members[0]})"
