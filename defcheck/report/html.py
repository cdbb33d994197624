"""The HTML format: one self-contained page (inline CSS and JS, no network).

Per concept: the summary, the overlap numbers, a grid per definition and a grid colored by overlap category. The
grid is the unit kind's, with labelled axes (``L0``.., ``H0``..); a grid wider than ``WRAP`` columns is cut into
lines of ``WRAP`` small cells without numbers. A definition's cells are colored by their signed margin to the
threshold on a fixed scale (members blue, others orange, pale at the threshold; see
:mod:`defcheck.report.heatmap`), members have a bold border and a corner mark, and a definition of several
criteria has a grid per criterion too. Units without a grid (layers, models) get one table instead: a row per
unit, a cell per definition, and the overlap category. Every cell's ``title`` gives the details (each criterion's
score, threshold and margin, the reason a unit is on one side only); hovering a cell highlights that unit
everywhere in the concept.
"""

from __future__ import annotations

from typing import Any

from defcheck.report.common import (
    CATEGORY_LABELS,
    Grid,
    categories,
    compared,
    concept_grid,
    concept_units,
    definition_criteria_text,
    model_line,
    number,
    overlap_details,
    skipped_text,
    table_units,
    unit_plural,
)
from defcheck.report.document import ConceptEntry, OverlapEntry, PairEntry, ReportDocument
from defcheck.report.escaping import html_text as escape
from defcheck.report.heatmap import concept_unstable, definition_figure, grid_table, score_cell
from defcheck.report.seeds import margin_lines, marked_members, overlap_line, stability_line

TABLE_ROWS = 200  # a table lists at most this many units (members and overlap units first)
CATEGORY_MARKS = {"both": "B+M", "behavioral_only": "B", "mechanistic_only": "M", "neither": ""}

CSS = """
.dc-report{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;line-height:1.4;
  max-width:1200px;margin:0 auto;padding:0 12px}
.dc-report h1{font-size:1.5em}.dc-report h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:4px}
.dc-report table.dc-table{border-collapse:collapse;margin:8px 0;font-size:.9em}
.dc-report table.dc-table th,.dc-report table.dc-table td{border:1px solid #ddd;padding:3px 8px;text-align:left;
  vertical-align:top}
.dc-report .dc-summary{background:#f6f8fa;border-left:4px solid #0366d6;padding:8px 12px}
.dc-report .dc-note{color:#8a6d00}.dc-report .dc-error{color:#b00020}
.dc-report .dc-grids{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.dc-report figure.dc-grid{margin:0}.dc-report figcaption{font-size:.85em;margin-bottom:4px;max-width:360px}
.dc-report table.dc-cells{border-collapse:separate;border-spacing:2px;font-size:.7em}
.dc-report table.dc-cells th{font-weight:normal;color:#666;padding:0 3px}
.dc-report table.dc-cells td{width:34px;height:22px;text-align:center;border-radius:3px;cursor:default;
  font-variant-numeric:tabular-nums}
.dc-report table.dc-wide td{width:11px;height:11px;padding:0;border-radius:2px;font-size:0}
.dc-report table.dc-wide th{font-size:.9em;text-align:right}
.dc-report table.dc-units td{width:auto;min-width:44px;padding:0 6px}
.dc-report table.dc-cells th.dc-axis{font-style:italic;white-space:nowrap}
.dc-report td.dc-member{box-shadow:0 0 0 2px #111,inset 0 0 0 2px #fff;font-weight:bold;
  background-image:linear-gradient(225deg,#fff 0,#fff 5px,#111 5px,#111 8px,transparent 8px)}
.dc-report table.dc-wide td.dc-member{box-shadow:0 0 0 1px #111,inset 0 0 0 1px #fff;
  background-image:linear-gradient(225deg,#111 0,#111 4px,transparent 4px)}
.dc-report td.dc-unstable{outline:2px dotted #d81b60;outline-offset:-2px}
.dc-report .dc-scale{margin:4px 0;max-width:300px;font-size:.8em}
.dc-report .dc-bar{position:relative;height:10px;border:1px solid #999}
.dc-report .dc-chance{position:absolute;top:-4px;bottom:-4px;width:0;border-left:2px solid #000}
.dc-report .dc-ticks{display:flex;justify-content:space-between;color:#555}
.dc-report .dc-chance-label{color:#333}
.dc-report details.dc-criteria{margin-top:6px;font-size:.9em}
.dc-report .dc-criterion{margin:6px 0}.dc-report .dc-ccap{font-size:.85em;max-width:360px}
.dc-report td.dc-na{background:#c8c8c8;color:#555}
.dc-report td.dc-undefined{background:repeating-linear-gradient(45deg,#d0d0d0,#d0d0d0 3px,#e8e8e8 3px,#e8e8e8 6px);
  color:#555}
.dc-report td.dc-both{background:#2e7d32;color:#fff}.dc-report td.dc-behavioral_only{background:#f9a825;color:#000}
.dc-report td.dc-mechanistic_only{background:#6a1b9a;color:#fff}.dc-report td.dc-neither{background:#f0f0f0}
.dc-report td.dc-open{outline:2px dashed #555;outline-offset:-3px}
.dc-report td.dc-hl{outline:3px solid #ff4081;outline-offset:-1px}
.dc-report .dc-legend span{display:inline-block;padding:1px 6px;margin-right:6px;border-radius:3px;font-size:.8em}
.dc-report .dc-small{font-size:.85em;color:#555}
"""

JS = """
(function(){
  var sections=document.querySelectorAll('.dc-concept');
  for(var i=0;i<sections.length;i++){(function(section){
    function clear(){
      var lit=section.querySelectorAll('td.dc-hl');
      for(var j=0;j<lit.length;j++){lit[j].classList.remove('dc-hl');}
    }
    section.addEventListener('mouseover',function(event){
      clear();
      var cell=event.target.closest?event.target.closest('td[data-unit]'):null;
      if(!cell){return;}
      var same=section.querySelectorAll('td[data-unit="'+cell.getAttribute('data-unit')+'"]');
      for(var j=0;j<same.length;j++){same[j].classList.add('dc-hl');}
    });
    section.addEventListener('mouseleave',clear);
  })(sections[i]);}
  var roots=document.querySelectorAll('.dc-report');
  for(var k=0;k<roots.length;k++){roots[k].setAttribute('data-dc-ready','1');}
})();
"""


def render(report: Any) -> str:
    """The ``html`` report format."""
    return report.to_html()


def render_document(data: ReportDocument) -> str:
    """The whole page."""
    title = escape(f"defcheck report: {data['model'].get('name', 'model')}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n<body>\n"
        f"{render_fragment(data)}\n</body>\n</html>\n"
    )


def render_fragment(data: ReportDocument, concepts: list[str] | None = None) -> str:
    """The report (or only ``concepts``) as one ``<div>`` with its own style and script, for Jupyter."""
    names = list(data["concepts"]) if concepts is None else concepts
    parts = [f'<div class="dc-report"><style>{CSS}</style>']
    if concepts is None:
        parts.append(f"<h1>defcheck report: {escape(str(data['model'].get('name', 'model')))}</h1>")
        parts.append(f"<p>Model {escape(model_line(data))}. Report version {data['report_version']}.</p>")
        skipped = skipped_text(data)
        if skipped:
            parts.append(f'<p class="dc-note dc-skipped">{escape(skipped)}</p>')
        parts.append(_index(data))
    for name in names:
        parts.append(_concept(data, name, data["concepts"][name]))
    parts.append(f"<script>{JS}</script></div>")
    return "\n".join(parts)


def _index(data: ReportDocument) -> str:
    """The concepts at a glance; an ``unstable`` column where the report has stability data (``--seeds``)."""
    if not data["concepts"]:
        return "<p>No definitions were evaluated.</p>"
    unstable = {name: concept_unstable(concept) for name, concept in data["concepts"].items()}
    seeded = any(units is not None for units in unstable.values())
    extra = "<th>unstable</th>" if seeded else ""
    rows = [
        "<tr><th>concept</th><th>both</th><th>behavioral only</th><th>mechanistic only</th><th>Jaccard</th>"
        f"{extra}</tr>"
    ]
    for name, concept in data["concepts"].items():
        link = f'<a href="#concept-{escape(name)}">{escape(name)}</a>'
        overlap = concept["overlap"]
        marked = unstable[name]
        units = "-" if marked is None else ", ".join(u for u in concept_units(concept) if u in marked) or "—"
        tail = f"<td>{escape(units)}</td>" if seeded else ""
        if not compared(concept):
            reason = escape(overlap["reason"] or "no overlap")
            rows.append(f'<tr><td>{link}</td><td colspan="4">{reason}</td>{tail}</tr>')
            continue
        cells = "".join(
            f"<td>{escape(', '.join(overlap[key]) or '—')}</td>"
            for key in ("both", "behavioral_only", "mechanistic_only")
        )
        rows.append(f"<tr><td>{link}</td>{cells}<td>{number(overlap['jaccard'])}</td>{tail}</tr>")
    return f'<table class="dc-table">{"".join(rows)}</table>'


def _metric(overlap: PairEntry, key: str) -> str:
    value = overlap.get(key)
    if value is None:
        reason = overlap.get("undefined", {}).get(key, "")
        return f'<span title="{escape(reason)}">— <span class="dc-small">({escape(reason)})</span></span>'
    return number(value)


def _concept(data: ReportDocument, name: str, concept: ConceptEntry) -> str:
    overlap = concept["overlap"]
    parts = [f'<section class="dc-concept" id="concept-{escape(name)}" data-concept="{escape(name)}">']
    parts.append(f"<h2>{escape(name)} <span class='dc-small'>({escape(concept.get('unit', ''))})</span></h2>")
    if concept.get("summary"):
        parts.append(f"<p>{escape(concept['summary'] or '')}</p>")
    parts.append(f'<p class="dc-summary">{escape(overlap["narrative"])}</p>')
    spread = overlap_line(overlap)  # --seeds K / --bootstrap B: the Jaccard's spread
    if spread:
        parts.append(f'<p class="dc-note">{escape(spread)}</p>')
    reason = overlap["reason"]
    if reason and not overlap["narrative"].startswith(reason):
        parts.append(f'<p class="dc-note">{escape(reason)}</p>')
    plural = unit_plural(concept)
    if compared(concept):
        rows = [
            f"<tr><th>{CATEGORY_LABELS[key]} ({len(overlap[key])})</th>"
            f"<td>{escape(', '.join(overlap[key]) or '—')}</td></tr>"
            for key in ("both", "behavioral_only", "mechanistic_only")
        ]
        rows.append(f"<tr><th>neither</th><td>{overlap['neither_count']} {plural}</td></tr>")
        for key in ("jaccard", "precision", "recall", "spearman"):
            extra = (
                f" over {overlap['spearman_units']} {plural}" if key == "spearman" and overlap[key] is not None else ""
            )
            rows.append(f"<tr><th>{key.capitalize()}</th><td>{_metric(overlap, key)}{extra}</td></tr>")
        parts.append(f'<table class="dc-table dc-overlap">{"".join(rows)}</table>')
    parts.append(_definitions_table(concept))
    parts.append(_grids(data, concept))
    if compared(concept):
        parts.append(_sensitivity(overlap))
        if len(overlap["pairs"]) > 1:
            parts.append(_pairs(overlap))
    parts.append("</section>")
    return "\n".join(parts)


def _definitions_table(concept: ConceptEntry) -> str:
    rows = ["<tr><th>definition</th><th>kind</th><th>criteria</th><th>source</th><th>members</th><th>status</th></tr>"]
    for name, definition in concept["definitions"].items():
        status = escape(definition["status"].replace("_", " "))
        if definition["status"] == "errored":
            status = f'<span class="dc-error">errored: {escape(str(definition["error"]))}</span>'
        elif definition["status"] == "not_applicable":
            status = f'<span class="dc-note">not applicable: {escape(str(definition["not_applicable"]))}</span>'
        members = marked_members(definition)  # unstable ones marked ~ (--seeds K)
        seeds = [line for line in (stability_line(definition), *margin_lines(definition)) if line]
        noted = "".join(f'<br><span class="dc-note">{escape(line)}</span>' for line in seeds)
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{escape(definition['kind'])}</td>"
            f"<td>{escape(definition_criteria_text(definition))}</td><td>{escape(definition.get('source') or '')}</td>"
            f"<td>{escape(', '.join(members) if members else '—')}{noted}</td><td>{status}</td></tr>"
        )
    return f'<table class="dc-table dc-definitions">{"".join(rows)}</table>'


def _grids(data: ReportDocument, concept: ConceptEntry) -> str:
    grid = concept_grid(data, concept)
    if grid is None:
        return _units_table(concept)
    figures = [definition_figure(concept, name, d, grid) for name, d in concept["definitions"].items()]
    if compared(concept):
        figures.append(_overlap_grid(concept, grid))
    return f'<div class="dc-grids">{"".join(figures)}</div>'


def _category_cell(concept: ConceptEntry) -> Any:
    """``cell(unit) -> <td>`` colored by the unit's overlap category."""
    category = categories(concept, concept_units(concept))
    undetermined = concept["overlap"].get("undetermined", {})

    def cell(unit: str) -> str:
        kind = category.get(unit, "neither")
        classes = [f"dc-{kind}"] + (["dc-open"] if unit in undetermined else [])
        title = escape("\n".join(overlap_details(concept, unit, kind)))
        return f'<td data-unit="{escape(unit)}" class="{" ".join(classes)}" title="{title}">{CATEGORY_MARKS[kind]}</td>'

    return cell


def _overlap_grid(concept: ConceptEntry, grid: Grid) -> str:
    cell = _category_cell(concept)
    undetermined = concept["overlap"].get("undetermined", {})

    legend = "".join(
        f'<span class="dc-{key}" style="{_legend_style(key)}">{label}</span>' for key, label in CATEGORY_LABELS.items()
    )
    caption = f"<b>overlap</b> (union of each kind)<div class='dc-legend'>{legend}</div>"
    if undetermined:
        caption += "<span class='dc-small'>dashed: rests on an undefined score</span>"
    table = grid_table(concept, grid, cell)
    return f'<figure class="dc-grid" data-grid="overlap"><figcaption>{caption}</figcaption>{table}</figure>'


def _units_table(concept: ConceptEntry) -> str:
    """Units without a grid (layers, models): a row per unit in the unit kind's order, each definition's primary
    score (colored, members outlined), and the overlap category."""
    units, left_out = table_units(concept, TABLE_ROWS)
    definitions = concept["definitions"]
    cells = {name: score_cell(concept, name, d) for name, d in definitions.items()}
    overlap = compared(concept)
    category_cell = _category_cell(concept) if overlap else None
    header = "".join(
        f'<th title="{escape(definition_criteria_text(d) + scale)}">{escape(name)} ({escape(d["kind"])})</th>'
        for (name, d), (_, scale) in zip(definitions.items(), cells.values(), strict=True)
    )
    rows = [f"<tr><th>{escape(concept.get('unit', 'unit'))}</th>{header}{'<th>overlap</th>' if overlap else ''}</tr>"]
    for unit in units:
        scores = "".join(cell(unit) for cell, _ in cells.values())
        category = category_cell(unit) if category_cell is not None else ""
        rows.append(f"<tr><th>{escape(unit)}</th>{scores}{category}</tr>")
    more = (
        f'<p class="dc-small">and {left_out} more {unit_plural(concept)}; see the JSON report</p>' if left_out else ""
    )
    return (
        '<figure class="dc-grid" data-grid="table"><figcaption>each definition\'s deciding score, colored by its '
        "margin to the threshold (blue: member, orange: not; pale: near it); bold border: member"
        f'</figcaption><table class="dc-cells dc-units">{"".join(rows)}</table>{more}</figure>'
    )


def _legend_style(key: str) -> str:
    return {
        "both": "background:#2e7d32;color:#fff",
        "behavioral_only": "background:#f9a825",
        "mechanistic_only": "background:#6a1b9a;color:#fff",
        "neither": "background:#f0f0f0",
    }[key]


def _sensitivity(overlap: OverlapEntry) -> str:
    rows = [
        "<tr><th>factor</th><th>Jaccard, all scaled</th><th>behavioral scaled</th><th>mechanistic scaled</th>"
        "<th>behavioral</th><th>mechanistic</th><th>both</th><th>thresholds</th></tr>"
    ]
    for row in overlap["sensitivity"]:
        thresholds = "; ".join(f"{name}: {', '.join(values)}" for name, values in row["thresholds"].items())
        factor = f"<b>{row['factor']:g}</b>" if row["factor"] == 1 else f"{row['factor']:g}"
        rows.append(
            f"<tr><td>{factor}</td><td>{number(row['jaccard'])}</td><td>{number(row['jaccard_behavioral_scaled'])}</td>"
            f"<td>{number(row['jaccard_mechanistic_scaled'])}</td><td>{row['behavioral']}</td>"
            f"<td>{row['mechanistic']}</td><td>{row['both']}</td><td class='dc-small'>{escape(thresholds)}</td></tr>"
        )
    return (
        "<h3>Threshold sensitivity</h3><p class='dc-small'>Jaccard of the union sets with every threshold scaled by "
        "the factor (or only one kind's), members re-selected from the stored scores.</p>"
        f'<table class="dc-table dc-sensitivity">{"".join(rows)}</table>'
    )


def _pairs(overlap: OverlapEntry) -> str:
    rows = [
        "<tr><th>behavioral</th><th>mechanistic</th><th>both</th><th>behavioral only</th><th>mechanistic only</th>"
        "<th>Jaccard</th><th>precision</th><th>recall</th><th>Spearman</th></tr>"
    ]
    for pair in overlap["pairs"]:
        lists = "".join(
            f"<td>{escape(', '.join(pair[key]) or '—')}</td>" for key in ("both", "behavioral_only", "mechanistic_only")
        )
        rows.append(
            f"<tr><td>{escape(pair['behavioral'][0])}</td><td>{escape(pair['mechanistic'][0])}</td>{lists}"
            f"<td>{_metric(pair, 'jaccard')}</td><td>{_metric(pair, 'precision')}</td>"
            f"<td>{_metric(pair, 'recall')}</td><td>{_metric(pair, 'spearman')}</td></tr>"
        )
    return f'<h3>Pairs</h3><table class="dc-table dc-pairs">{"".join(rows)}</table>'
