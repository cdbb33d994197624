"""Stability across probe seeds and resamples in words, for every format (``--seeds K``, ``--bootstrap B``;
docs/report-format.md#several-probe-seeds).

A report of one seed without resamples has no ``seeds`` or ``bootstrap``: every function here then gives the
plain text (members unmarked, no lines), so such a report renders as before. An unstable unit (a member in some
seeds, not in others) is marked ``~`` with its share of seeds; a margin reads "1.3 passes by 14 sd" (its distance
from the threshold in seed-to-seed standard deviations, or, with one seed, in bootstrap standard errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNSTABLE_MARK = "~"
WEIGHTS_ONLY = "weights only"  # the same as defcheck.engine.bootstrap.WEIGHTS_ONLY (a test checks it)
CLOSEST = 4  # units per criterion whose margins a report names (those nearest their threshold)


def seed_count(data: Mapping[str, Any]) -> int:
    """How many probe seeds the report's run drew (1 for a plain run)."""
    return len(data.get("seeds") or []) or 1


def margin_scale(data: Mapping[str, Any]) -> str | None:
    """What the report's margins are measured in, in words; ``None`` where it has none."""
    if seed_count(data) >= 2:
        return "seed-to-seed standard deviations"
    if data.get("bootstrap"):
        return f"bootstrap standard errors over {data['bootstrap']} resamples of the probes' sequences"
    return None


def unstable_units(definition: Mapping[str, Any]) -> dict[str, float]:
    """The definition's unstable units with their share of seeds as a member (none without stability)."""
    stability = definition.get("stability") or {}
    share = stability.get("share") or {}
    return {unit: float(share.get(unit, 0.0)) for unit in stability.get("unstable") or []}


def marked_members(definition: Mapping[str, Any]) -> list[str]:
    """The members, each unstable one marked: ``1.3~ (70%)``."""
    unstable = unstable_units(definition)
    return [
        f"{unit}{UNSTABLE_MARK} ({unstable[unit]:.0%})" if unit in unstable else unit
        for unit in definition.get("members") or []
    ]


def stability_line(definition: Mapping[str, Any], seeds: int | None = None) -> str | None:
    """``unstable across 10 seeds (share of seeds as a member): 1.3 (70%)``, ``stable across 10 seeds``, or
    ``None`` for a report of one seed (``seeds``: the report's count, where the caller knows it)."""
    if (seeds is not None and seeds < 2) or "stability" not in definition:
        return None
    across = f"the {seeds} probe seeds" if seeds else "the probe seeds"
    if definition.get("stability") is None:
        return f"stability unknown (not evaluated in every one of {across})"
    unstable = unstable_units(definition)
    if not unstable:
        return f"stable across {across}"
    shown = ", ".join(f"{unit} ({share:.0%})" for unit, share in unstable.items())
    return f"unstable across {across} (share of seeds as a member): {shown}"


def margin_text(unit: str, margin: float) -> str:
    """``1.3 passes by 14 sd`` or ``0.0 fails by 0.3 sd``."""
    return f"{unit} {'passes' if margin > 0 else 'fails'} by {abs(margin):.2g} sd"


def margin_lines(definition: Mapping[str, Any]) -> list[str]:
    """Per criterion with margins, the units nearest their threshold: ``attention_pattern: 1.3 passes by 14 sd, ...``
    (members first where as near)."""
    lines = []
    for criterion in definition.get("criteria") or []:
        margins = criterion.get("margins")
        if not margins:
            continue
        known = [(unit, value) for unit, value in margins.items() if value is not None]
        if not known:
            lines.append(f"{criterion['checker']}: no margin (the score did not vary)")
            continue
        nearest = sorted(known, key=lambda item: (abs(item[1]), item[1] < 0))[:CLOSEST]
        lines.append(f"{criterion['checker']}: " + ", ".join(margin_text(unit, value) for unit, value in nearest))
    return lines


def overlap_line(overlap: Mapping[str, Any]) -> str | None:
    """``Jaccard across 10 seeds: min 0.8, median 0.9, max 1; unstable: 1.3`` and the bootstrap's interval
    (:func:`bootstrap_line`), or ``None`` with neither."""
    lines = [line for line in (_seeds_line(overlap), bootstrap_line(overlap)) if line]
    return " ".join(lines) or None


def bootstrap_line(overlap: Mapping[str, Any]) -> str | None:
    """``Jaccard 95% interval over 200 resamples of the probes' sequences: 0.75 to 1 (kept fixed: ...).``"""
    boot = overlap.get("bootstrap")
    if not boot:
        return None
    head = f"Jaccard {boot['level']:.0%} interval over {boot['replicates']} resamples of the probes' sequences"
    interval = boot.get("jaccard")
    text = f"{head}: {interval[0]:.3g} to {interval[1]:.3g}" if interval else f"{head}: undefined"
    fixed = [entry for entry in boot.get("fixed") or [] if not entry.endswith(f"({WEIGHTS_ONLY})")]
    return f"{text} (also kept as in the run: {'; '.join(fixed)})." if fixed else f"{text}."


def _seeds_line(overlap: Mapping[str, Any]) -> str | None:
    stability = overlap.get("stability")
    if not stability:
        return None
    spread = stability["jaccard"]
    values = ", ".join(
        f"{key} {'—' if spread.get(key) is None else format(spread[key], '.3g')}" for key in ("min", "median", "max")
    )
    unstable = stability.get("unstable") or []
    tail = f"; unstable: {', '.join(unstable)}" if unstable else "; every unit's category is the same in every seed"
    return f"Jaccard across {stability['seeds']} seeds: {values}{tail}"
