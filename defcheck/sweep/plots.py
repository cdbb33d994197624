"""Plots of a sweep summary (matplotlib, Agg backend: no display needed).

One PNG per concept, panels sharing the step axis:

- one panel per definition: every unit's primary score against step (units the definition ever admits in
  color, with a dot where it admits them; the others in grey), and the threshold of the primary criterion;
  where the summary carries the score's sd (a sweep with ``--seeds K`` or ``--bootstrap B``), a translucent
  band of score ± 1 sd around each unit's line, which the legend names (sd across the seeds, or bootstrap
  standard error); without it the panel is as before;
- the overlap: how many units are in both kinds, behavioral only and mechanistic only (stacked), and the
  Jaccard index;
- the training loss, where the checkpoints carry it.

Two vertical lines run through every panel: the first step at which the behavioral definitions admit a
unit, and the first at which the mechanistic ones do. The figure's title says whether they coincide, which
is the question a sweep is for. Only the summary document is read (docs/sweep.md), so plots can be redrawn
from a saved ``summary.json``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from defcheck.sweep.store import atomic_write
from defcheck.sweep.summary import never_applicable

__all__ = ["band_label", "concept_figure", "matplotlib_missing", "plot_sweep"]

KIND_COLORS = {"behavioral": "#e08e00", "mechanistic": "#6a1b9a"}
CATEGORY_COLORS = {"both": "#2e7d32", "behavioral_only": "#f9a825", "mechanistic_only": "#6a1b9a"}
CATEGORY_LABELS = {"both": "both", "behavioral_only": "behavioral only", "mechanistic_only": "mechanistic only"}
# tab10 without its grey (grey is for the units never admitted), and a light blue for the tenth
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#aec7e8")
MAX_COLORED = len(PALETTE)  # units drawn in color per panel (the highest-scoring of those ever admitted); the rest grey
MAX_GREY = 300  # grey lines per panel at most (the highest-scoring), so a model with thousands of units still plots
BAND_ALPHA = 0.2  # the sd band of a unit drawn in color
GREY_BAND_ALPHA = 0.08  # and of a grey one, lighter: many overlap
GREY = "#bbbbbb"
PANEL_HEIGHT = 1.75
WIDTH = 8.0
DPI = 80


def matplotlib_missing() -> str | None:
    """None when matplotlib can be imported; else how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "plots need matplotlib: pip install 'defcheck[plot]'"
    return None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _threshold_value(threshold: Any) -> float | None:
    """The cut-off of a comparison threshold (``">= 0.4"`` -> 0.4); ``None`` for a rank rule."""
    if not isinstance(threshold, str):
        return None
    try:
        return float(threshold.split()[-1])
    except (ValueError, IndexError):
        return None


def _peak(values: list[float | None]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite) if finite else -math.inf


def _xscale(steps: list[int]) -> str:
    """Linear steps, unless they span more than three decades (log-spaced early checkpoints, as Pythia's)."""
    positive = [s for s in steps if s > 0]
    if len(positive) >= 2 and max(positive) / min(positive) > 1000:
        return "symlog"
    return "linear"


def concept_figure(summary: Mapping[str, Any], concept: str) -> Any:
    """The matplotlib figure of one concept of ``summary`` (the caller saves and closes it)."""
    plt = _pyplot()
    steps = list(summary["steps"])
    entry = summary["concepts"][concept]
    unit_word = summary.get("step_unit", "step")
    records = [
        (definition_id, record)
        for definition_id, record in summary["definitions"].items()
        if record["concept"] == concept and not never_applicable(record)
    ]
    records.sort(key=lambda item: (item[1]["kind"] != "behavioral", item[1]["definition"]))
    metrics = {name: values for name, values in summary["metrics"].items() if any(v is not None for v in values)}
    has_overlap = any(v is not None for v in entry["both"])
    panels = len(records) + (1 if has_overlap else 0) + (1 if metrics else 0)
    figure, axes = plt.subplots(panels, 1, figsize=(WIDTH, 0.9 + PANEL_HEIGHT * panels), sharex=True, squeeze=False)
    axes = list(axes[:, 0])
    index = 0
    for _, record in records:
        _definition_panel(axes[index], steps, record)
        index += 1
    if has_overlap:
        _overlap_panel(axes[index], steps, entry)
        index += 1
    if metrics:
        axis = axes[index]
        for name, values in metrics.items():
            points = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None]
            axis.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=name)
        axis.set_ylabel("loss")
        axis.legend(loc="upper right", fontsize=7, frameon=False)
        axis.set_title("training loss (as the checkpoints record it)", fontsize=8, loc="left")
    firsts = entry.get("first_step", {})
    for kind in ("behavioral", "mechanistic"):
        step = firsts.get(kind)
        if step is None:
            continue
        for axis in axes:
            axis.axvline(step, color=KIND_COLORS[kind], linestyle="--", linewidth=1.2, alpha=0.9)
    for axis in axes:
        axis.grid(True, linewidth=0.3, alpha=0.5)
        axis.tick_params(labelsize=7)
        axis.set_xscale(_xscale(steps))
    axes[-1].set_xlabel(f"training {unit_word}", fontsize=8)
    figure.suptitle(_title(concept, entry, unit_word), fontsize=10, x=0.01, ha="left")
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    return figure


def _title(concept: str, entry: Mapping[str, Any], unit: str) -> str:
    firsts = entry.get("first_step", {})
    kinds = [kind for kind in ("behavioral", "mechanistic") if entry.get(kind)]
    parts = []
    for kind in kinds:
        step = firsts.get(kind)
        parts.append(f"{kind} first at {step}" if step is not None else f"{kind}: never")
    line = f"{concept}: " + ", ".join(parts)
    if len(kinds) == 2 and all(firsts.get(k) is not None for k in kinds):
        b, m = firsts["behavioral"], firsts["mechanistic"]
        line += " (the same checkpoint)" if b == m else f" ({abs(m - b)} {unit}s apart)"
    return line + "\ndashed lines: first behavioral (orange) and first mechanistic (purple) member"


def _definition_panel(axis: Any, steps: list[int], record: Mapping[str, Any]) -> None:
    units = record["units"]
    ever = [u for u, series in units.items() if any(series["member"])]
    ever.sort(key=lambda u: -_peak(units[u]["score"]))
    colored = ever[:MAX_COLORED]
    grey = [u for u in units if u not in colored]
    grey.sort(key=lambda u: -_peak(units[u]["score"]))
    for unit in grey[:MAX_GREY]:
        _band(axis, steps, units[unit], GREY, GREY_BAND_ALPHA, 0.5)
        axis.plot(steps, _floats(units[unit]["score"]), color=GREY, linewidth=0.6, zorder=1)
    for unit, color in zip(colored, PALETTE, strict=False):
        _band(axis, steps, units[unit], color, BAND_ALPHA, 2)
        values = _floats(units[unit]["score"])
        (line,) = axis.plot(steps, values, linewidth=1.3, label=unit, zorder=3, color=color)
        admitted = [(s, v) for s, v, m in zip(steps, values, units[unit]["member"], strict=True) if m]
        xs, ys = [p[0] for p in admitted], [p[1] for p in admitted]
        axis.plot(xs, ys, "o", markersize=3, color=line.get_color(), zorder=4)
    reasons = [reason for reason in record.get("no_score", []) if reason]
    if reasons and len(reasons) == len(steps):
        axis.text(
            0.5,
            0.75,
            f"no score at any checkpoint: {reasons[-1]}",
            transform=axis.transAxes,
            ha="center",
            va="center",
            fontsize=7,
            color="#444444",
            bbox={"facecolor": "white", "edgecolor": "#cccccc", "boxstyle": "round"},
        )
    cut = _threshold_value(record.get("threshold"))
    if cut is not None:
        axis.axhline(cut, color="black", linestyle=":", linewidth=0.9)
    more = f" (+{len(ever) - len(colored)} more admitted)" if len(ever) > len(colored) else ""
    axis.set_title(
        f"{record['definition']} ({record['kind']}): {record.get('score') or 'score'} per unit; dotted: "
        f"threshold {record.get('threshold')}; dots: admitted{more}",
        fontsize=8,
        loc="left",
        color=KIND_COLORS.get(record["kind"], "black"),
    )
    axis.set_ylabel("score", fontsize=8)
    _legend(axis, record)


def _legend(axis: Any, record: Mapping[str, Any]) -> None:
    """The panel's legend: the colored units, and what the band is where the record has one (else as before)."""
    handles, labels = axis.get_legend_handles_labels()
    if _has_band(record):
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor=GREY, alpha=0.5, edgecolor="none"))
        labels.append(band_label(record))
    if handles:
        axis.legend(handles, labels, loc="upper left", fontsize=6, ncol=min(5, len(handles)), frameon=False)


def _has_band(record: Mapping[str, Any]) -> bool:
    """Whether some unit of the record has an sd at some checkpoint (older summaries have none)."""
    return any(v is not None for series in record["units"].values() for v in series.get("sd") or [])


def band_label(record: Mapping[str, Any]) -> str:
    """What the band of a definition panel is, from the summary's ``band`` (``--seeds K`` or ``--bootstrap B``)."""
    band = record.get("band") or {}
    count = band.get("count")
    if band.get("source") == "seeds":
        return f"band: ±1 sd across {count} seeds"
    if band.get("source") == "bootstrap":
        return f"band: ±1 bootstrap SE ({count} resamples)" if count else "band: ±1 bootstrap SE"
    return "band: ±1 sd"


def _band(axis: Any, steps: list[int], series: Mapping[str, Any], color: str, alpha: float, zorder: float) -> None:
    """Fill score ± sd of one unit where both are known (gaps elsewhere); nothing for a unit without ``sd``."""
    sd = series.get("sd")
    if not sd or all(v is None for v in sd):
        return
    low = [math.nan if v is None or e is None else v - e for v, e in zip(series["score"], sd, strict=True)]
    high = [math.nan if v is None or e is None else v + e for v, e in zip(series["score"], sd, strict=True)]
    axis.fill_between(steps, low, high, color=color, alpha=alpha, linewidth=0, zorder=zorder)


def _floats(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _overlap_panel(axis: Any, steps: list[int], entry: Mapping[str, Any]) -> None:
    bottom = [0.0] * len(steps)
    for key in ("both", "behavioral_only", "mechanistic_only"):
        counts = [0.0 if v is None else float(v) for v in entry[key]]
        top = [b + c for b, c in zip(bottom, counts, strict=True)]
        axis.fill_between(steps, bottom, top, color=CATEGORY_COLORS[key], alpha=0.85, label=CATEGORY_LABELS[key])
        bottom = top
    axis.set_ylabel("units", fontsize=8)
    twin = axis.twinx()
    twin.plot(steps, _floats(entry["jaccard"]), color="black", marker=".", linewidth=1.2, label="Jaccard")
    twin.set_ylim(-0.05, 1.05)
    twin.set_ylabel("Jaccard", fontsize=8)
    twin.tick_params(labelsize=7)
    handles, labels = axis.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    axis.legend(handles + more, labels + more_labels, loc="upper left", fontsize=6, ncol=4, frameon=False)
    axis.set_title("overlap of the behavioral and mechanistic members (union of each kind)", fontsize=8, loc="left")


def plot_sweep(summary: Mapping[str, Any], folder: Path) -> dict[str, Path]:
    """Write ``folder/CONCEPT.png`` for every concept of ``summary``; return them by concept."""
    plt = _pyplot()
    written = {}
    for concept in summary["concepts"]:
        figure = concept_figure(summary, concept)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
        plt.close(figure)
        path = folder / f"{concept}.png"
        atomic_write(path, buffer.getvalue())
        written[concept] = path
    return written
