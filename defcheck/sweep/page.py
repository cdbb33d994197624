"""The HTML page of a sweep (``summary.html``): one self-contained file, nothing loaded from the network.

Per concept: the answer (at which step each kind of definition first admits a unit), the plot (the PNG
embedded as a data URI), the first step of every definition, and a table per checkpoint of the overlap, the
members of each definition and the recorded loss, with a link to the checkpoint's JSON report. It reads only
the summary document (docs/sweep.md).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from html import escape
from typing import Any

from defcheck.report.common import number
from defcheck.sweep.summary import first_step_text

__all__ = ["render_sweep_html"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;line-height:1.4;
  max-width:1100px;margin:0 auto;padding:0 12px}
h1{font-size:1.4em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:2px 7px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.answer{background:#f6f8fa;border-left:4px solid #0366d6;padding:8px 12px}
.failed{color:#b00020}.small{font-size:.85em;color:#555}
img.plot{max-width:100%;height:auto;border:1px solid #eee}
.behavioral{color:#b36b00}.mechanistic{color:#6a1b9a}
"""

JS = """
window.addEventListener('load',function(){
  var images=document.querySelectorAll('img.plot'),ok=0;
  for(var i=0;i<images.length;i++){if(images[i].complete&&images[i].naturalWidth>0){ok++;}}
  var root=document.querySelector('.dc-sweep');
  root.setAttribute('data-images-loaded',String(ok));
  root.setAttribute('data-dc-ready','1');
});
"""


def render_sweep_html(summary: Mapping[str, Any], images: Mapping[str, bytes] | None = None) -> str:
    """The page for ``summary``; ``images`` are the PNG bytes of each concept's plot (optional)."""
    images = images or {}
    source = escape(str(summary["source"]))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>defcheck sweep: {source}</title><style>{CSS}</style></head><body>",
        f'<div class="dc-sweep" data-steps="{len(summary["steps"])}">',
        f"<h1>defcheck sweep: {source}</h1>",
        f"<p class='small'>Seed {escape(str(summary.get('seed')))}; summary version {summary['summary_version']}; "
        f"one JSON report per checkpoint in <code>reports/</code>.</p>",
    ]
    parts += [f"<p>{escape(line)}</p>" for line in str(summary["summary"]).splitlines()]
    failed = [c for c in summary["checkpoints"] if c["status"] == "failed"]
    if failed:
        rows = "".join(f"<tr><td>{c['step']}</td><td>{escape(str(c['error']))}</td></tr>" for c in failed)
        parts.append(
            f'<h2 class="failed">Failed checkpoints</h2><table><tr><th>step</th><th>error</th></tr>{rows}</table>'
        )
    for name, entry in summary["concepts"].items():
        parts.append(_concept(summary, name, entry, images.get(name)))
    parts.append(f"</div><script>{JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _concept(summary: Mapping[str, Any], name: str, entry: Mapping[str, Any], image: bytes | None) -> str:
    unit = summary["step_unit"]
    parts = [f'<section class="dc-sweep-concept" id="concept-{escape(name)}">']
    parts.append(f"<h2>{escape(name)} <span class='small'>({escape(str(entry.get('unit')))})</span></h2>")
    parts.append(f'<p class="answer">{escape(entry["answer"])}</p>')
    if image is not None:
        encoded = base64.b64encode(image).decode("ascii")
        alt = escape(f"{name}: scores, overlap and loss against training {unit}")
        parts.append(f'<img class="plot" alt="{alt}" src="data:image/png;base64,{encoded}">')
    records = [(i, r) for i, r in summary["definitions"].items() if r["concept"] == name]
    rows = [
        f"<tr><th>definition</th><th>kind</th><th>score (primary)</th><th>first {unit} with a member</th>"
        "<th>its members</th><th>a member at every later checkpoint from</th></tr>"
    ]
    for _, record in records:
        rows.append(
            f"<tr><td>{escape(record['definition'])}</td><td class='{escape(str(record['kind']))}'>"
            f"{escape(str(record['kind']))}</td><td>{escape(str(record.get('score')))} "
            f"{escape(str(record.get('threshold')))}</td><td class='num'>{first_step_text(record)}</td>"
            f"<td>{escape(', '.join(record['first_members']) or '—')}</td>"
            f"<td class='num'>{_step(record['stable_from'])}</td></tr>"
        )
    parts.append("<table class='dc-firsts'>" + "".join(rows) + "</table>")
    parts.append(_steps_table(summary, name, entry, records))
    parts.append("</section>")
    return "\n".join(parts)


def _step(value: Any) -> str:
    return "never" if value is None else str(value)


def _steps_table(
    summary: Mapping[str, Any], name: str, entry: Mapping[str, Any], records: list[tuple[str, Mapping[str, Any]]]
) -> str:
    metrics = summary["metrics"]
    head = [summary["step_unit"], *metrics, "both", "behavioral only", "mechanistic only", "Jaccard"]
    head += [r["definition"] for _, r in records]
    rows = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "<th>report</th></tr>"]
    for position, checkpoint in enumerate(summary["checkpoints"]):
        cells = [f"<td class='num'>{checkpoint['step']}</td>"]
        cells += [f"<td class='num'>{number(values[position])}</td>" for values in metrics.values()]
        for key in ("both", "behavioral_only", "mechanistic_only", "jaccard"):
            cells.append(f"<td class='num'>{number(entry[key][position])}</td>")
        for _, record in records:
            members = record["members"][position]
            status = record["status"][position]
            text = escape(str(status or "—")) if members is None else escape(", ".join(members) or "—")
            reason = (record.get("no_score") or [None] * (position + 1))[position]
            if reason:  # why nothing could be admitted: say so rather than show an empty cell
                text += f" <span class='small' title='{escape(reason)}'>(no score)</span>"
            cells.append(f"<td>{text}</td>")
        if checkpoint["report"]:
            link = f"<a href='{escape(checkpoint['report'])}'>json</a>"
        else:
            link = f"<span class='failed'>failed: {escape(str(checkpoint['error']))}</span>"
        cells.append(f"<td>{link}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<h3>By checkpoint</h3><table class='dc-steps'>" + "".join(rows) + "</table>"
